-- One name per entity everywhere (service ai-<entity>, route /ai/<entity>, table ai_<entity>): deployments,
-- presets and rate limits were ai_models, ai_model_configurations and ai_rate_limit_configs.
ALTER TABLE ai_models RENAME TO ai_deployments;
ALTER TABLE ai_deployments RENAME CONSTRAINT ai_models_provider_fkey TO ai_deployments_provider_fkey;
ALTER TABLE ai_model_configurations RENAME TO ai_presets;
ALTER TABLE ai_rate_limit_configs RENAME TO ai_rate_limits;
