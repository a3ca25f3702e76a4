-- What a deployment charges per million tokens written to the provider's prompt cache (Anthropic bills them above
-- the input price); NULL: the input price, as before.
ALTER TABLE ai_deployments ADD COLUMN cache_write_price numeric CHECK (cache_write_price >= 0);
