-- An API key made with another API key inherits that key's ceiling: at most its role, never past its expiry, and
-- revoked with it (parent_id lets a revocation reach every key made from the revoked one).
ALTER TABLE api_keys ADD COLUMN parent_id uuid REFERENCES api_keys (id) ON DELETE CASCADE;
CREATE INDEX api_keys_parent_idx ON api_keys (parent_id) WHERE parent_id IS NOT NULL;
