-- Which managed prompt produced a completion: { templateId, versionId, variantId? } (the prompts module), or NULL.
ALTER TABLE ai_completion_logs ADD COLUMN prompt jsonb;
