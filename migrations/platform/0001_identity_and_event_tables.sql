-- Core platform tables: identity (users, organizations, memberships, teams, API keys, refresh tokens)
-- and the event plumbing every module shares (outbox, processed_events).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE users (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	email text NOT NULL UNIQUE CHECK (email = lower(email)),
	name text NOT NULL,
	password_hash text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organizations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL,
	slug text NOT NULL UNIQUE,
	personal boolean NOT NULL DEFAULT false,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organization_members (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user_idx ON organization_members (user_id);

CREATE TABLE teams (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	description text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);

CREATE TABLE team_members (
	team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	role text NOT NULL DEFAULT 'member' CHECK (role IN ('lead', 'member')),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, user_id)
);

CREATE TABLE api_keys (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name text NOT NULL,
	prefix text NOT NULL,
	key_hash text NOT NULL UNIQUE,
	role text CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
	expires_at timestamptz,
	last_used_at timestamptz,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org_idx ON api_keys (organization_id);

CREATE TABLE refresh_tokens (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	family_id uuid NOT NULL,
	token_hash text NOT NULL UNIQUE,
	organization_id uuid REFERENCES organizations (id) ON DELETE SET NULL,
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Transactional outbox: events are written with the change they describe and relayed to the channels afterwards.
CREATE TABLE outbox (
	id uuid PRIMARY KEY,
	channel text NOT NULL,
	payload jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_error text,
	published_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE published_at IS NULL;

-- Consumers are idempotent: an event id is processed once per consumer group.
CREATE TABLE processed_events (
	consumer_group text NOT NULL,
	event_id uuid NOT NULL,
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer_group, event_id)
);

-- Embedded mode has no broker-side dead-letter queue: events whose handler kept failing are parked here.
CREATE TABLE dead_letter_events (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	consumer_group text NOT NULL,
	channel text NOT NULL,
	event_id uuid,
	payload jsonb NOT NULL,
	error text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
