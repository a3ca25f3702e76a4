-- Invitations: a link to join an organization with a role, for an email that may have no account yet. Only the
-- token's digest is kept. One pending invitation per organization and email: inviting again replaces it.
CREATE TABLE invitations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	email text NOT NULL CHECK (email = lower(email)),
	role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
	token_hash text NOT NULL UNIQUE,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	expires_at timestamptz NOT NULL,
	accepted_at timestamptz,
	accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX invitations_pending_idx ON invitations (organization_id, email)
	WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Password reset links: single use, short-lived, only the token's digest kept.
CREATE TABLE password_resets (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash text NOT NULL UNIQUE,
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
