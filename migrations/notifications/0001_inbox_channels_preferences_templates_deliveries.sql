-- notifications: what reaches people about the platform's events. The seed's tables under the module's prefix:
-- notifications -> notifications_inbox, notification_channels -> notifications_channels,
-- notification_preferences -> notifications_preferences (+ notifications_quiet_hours),
-- notification_templates -> notifications_templates; notifications_deliveries is the status per notification and
-- channel. No column holds a credential: channels name secrets of the secrets module.

-- One notification for one user (the in-app inbox). Coalesced events of one kind and subject raise `count`.
CREATE TABLE notifications_inbox (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	event_id uuid NOT NULL, -- the first event; later coalesced ones only raise count
	event_type text NOT NULL,
	critical boolean NOT NULL DEFAULT false,
	title text NOT NULL,
	body text NOT NULL DEFAULT '',
	data jsonb NOT NULL DEFAULT '{}', -- the latest event
	coalesce_key text,
	count integer NOT NULL DEFAULT 1 CHECK (count > 0),
	read_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (user_id, event_id)
);
CREATE INDEX notifications_inbox_user ON notifications_inbox (organization_id, user_id, updated_at DESC);
CREATE INDEX notifications_inbox_unread ON notifications_inbox (organization_id, user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_inbox_coalesce ON notifications_inbox (organization_id, user_id, coalesce_key, created_at DESC)
	WHERE coalesce_key IS NOT NULL;

-- An organization's outbound channels: an SMTP server (email to members) or a webhook endpoint. `config` holds
-- addresses and names of secrets, never their values.
CREATE TABLE notifications_channels (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	kind text NOT NULL CHECK (kind IN ('email', 'webhook')),
	config jsonb NOT NULL DEFAULT '{}',
	-- Event types it carries; empty: e-mail carries every type (users' preferences decide), a webhook every type
	-- that notifies by default.
	event_types text[] NOT NULL DEFAULT '{}',
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);

-- A user's choice for one event type on one channel kind; absent: the type's default.
CREATE TABLE notifications_preferences (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	event_type text NOT NULL,
	channel text NOT NULL CHECK (channel IN ('in_app', 'email')),
	enabled boolean NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, user_id, event_type, channel)
);

-- A user's quiet hours in their time zone: e-mail waits until they end (critical types excepted).
CREATE TABLE notifications_quiet_hours (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	time_zone text NOT NULL DEFAULT 'UTC',
	start_minute integer NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
	end_minute integer NOT NULL CHECK (end_minute BETWEEN 0 AND 1439),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, user_id)
);

-- An organization's own wording for one event type on one channel (liquid, the prompts module's sandbox).
CREATE TABLE notifications_templates (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	event_type text NOT NULL,
	channel text NOT NULL CHECK (channel IN ('in_app', 'email', 'webhook')),
	subject text NOT NULL DEFAULT '',
	body text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, event_type, channel)
);

-- One notification on one channel: in-app (sent when stored and pushed), e-mail to its user, or one event to a
-- webhook (notification_id NULL: a webhook carries the organization's event, not a user's notification).
-- Replicas claim due rows with FOR UPDATE SKIP LOCKED and a lease (claimed_until), so a replica that dies mid-send
-- leaves them to another.
CREATE TABLE notifications_deliveries (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	notification_id uuid REFERENCES notifications_inbox (id) ON DELETE CASCADE,
	channel_id uuid REFERENCES notifications_channels (id) ON DELETE CASCADE,
	channel text NOT NULL CHECK (channel IN ('in_app', 'email', 'webhook')),
	user_id uuid REFERENCES users (id) ON DELETE CASCADE,
	event_id uuid NOT NULL,
	event_type text NOT NULL,
	event jsonb NOT NULL, -- the latest event it carries
	coalesce_key text,
	count integer NOT NULL DEFAULT 1 CHECK (count > 0),
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'sent', 'failed')),
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	claimed_until timestamptz,
	last_error text,
	sent_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_deliveries_due ON notifications_deliveries (next_attempt_at)
	WHERE status IN ('pending', 'retrying');
CREATE INDEX notifications_deliveries_org ON notifications_deliveries (organization_id, created_at DESC);
CREATE INDEX notifications_deliveries_notification ON notifications_deliveries (notification_id);
CREATE INDEX notifications_deliveries_coalesce ON notifications_deliveries (organization_id, channel_id, coalesce_key)
	WHERE coalesce_key IS NOT NULL AND status = 'pending';
