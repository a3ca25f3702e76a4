-- Secret Management: organization-scoped credentials under envelope encryption, versioned, granted, audited.

-- Per organization: its data key (DEK) wrapped by the master key (KEK) named by kek_id, the environments it uses,
-- how many versions a secret keeps, and the head of its audit hash chain (so removing the last entry shows too).
CREATE TABLE vault_configurations (
	organization_id uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
	key_version integer NOT NULL DEFAULT 1,
	wrapped_key bytea NOT NULL,
	kek_id text NOT NULL,
	environments text[] NOT NULL DEFAULT ARRAY['development', 'staging', 'production'],
	max_versions integer NOT NULL DEFAULT 50 CHECK (max_versions BETWEEN 1 AND 1000),
	audit_seq bigint NOT NULL DEFAULT 0,
	audit_hash text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	rotated_at timestamptz
);

CREATE TABLE secrets (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	-- Projects arrive with the planning module; until then a free identifier.
	project_id uuid,
	environment text NOT NULL,
	name text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_./-]{0,199}$'),
	description text NOT NULL DEFAULT '',
	tags text[] NOT NULL DEFAULT '{}',
	current_version integer NOT NULL DEFAULT 0,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
CREATE UNIQUE INDEX secrets_scope_name_idx
	ON secrets (organization_id, COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid), environment, name);

CREATE TABLE secret_versions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	secret_id uuid NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	version integer NOT NULL,
	-- NULL once destroyed: the value is gone for good.
	ciphertext bytea,
	iv bytea,
	auth_tag bytea,
	key_version integer NOT NULL,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	destroyed_at timestamptz,
	UNIQUE (secret_id, version)
);
CREATE INDEX secret_versions_key_idx ON secret_versions (organization_id, key_version);

CREATE TABLE secret_access_grants (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	-- Either one secret, or every secret whose name starts with name_prefix in environment.
	secret_id uuid REFERENCES secrets (id) ON DELETE CASCADE,
	environment text,
	name_prefix text,
	permission text NOT NULL CHECK (permission IN ('read', 'write')),
	grantee_type text NOT NULL CHECK (grantee_type IN ('user', 'team', 'service')),
	grantee_id text NOT NULL,
	expires_at timestamptz,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((secret_id IS NOT NULL) <> (name_prefix IS NOT NULL AND environment IS NOT NULL))
);
CREATE INDEX secret_access_grants_grantee_idx ON secret_access_grants (organization_id, grantee_type, grantee_id);

-- Append-only audit trail, hash-chained per organization (seq 1, 2, 3… each hash covers the previous one).
CREATE TABLE secret_audit_logs (
	id bigserial PRIMARY KEY,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	seq bigint NOT NULL,
	actor_type text NOT NULL,
	actor_id text,
	action text NOT NULL,
	target text,
	outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
	request_id text,
	details jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT now(),
	prev_hash text NOT NULL,
	hash text NOT NULL,
	UNIQUE (organization_id, seq)
);
