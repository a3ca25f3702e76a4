-- The audit chain's head (last sequence number and hash per organization) moves out of the vault's row into a table
-- of the audit's own (mixins/audit.mixin.ts), so any module can keep a chain without a vault.
CREATE TABLE secret_audit_heads (
	organization_id uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
	seq bigint NOT NULL DEFAULT 0,
	hash text NOT NULL DEFAULT ''
);
INSERT INTO secret_audit_heads (organization_id, seq, hash)
	SELECT organization_id, audit_seq, audit_hash FROM vault_configurations;
ALTER TABLE vault_configurations DROP COLUMN audit_seq, DROP COLUMN audit_hash;
