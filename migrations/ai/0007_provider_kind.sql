-- The API a provider speaks: 'openai' (any OpenAI-compatible endpoint, as every provider so far) or 'anthropic'
-- (the Messages API; requests are translated both ways, services/ai/anthropic.ts).
ALTER TABLE ai_providers ADD COLUMN kind text NOT NULL DEFAULT 'openai' CHECK (kind IN ('openai', 'anthropic'));
