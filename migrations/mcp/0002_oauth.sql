-- OAuth for HTTP MCP servers that ask for it. Tokens, refresh tokens, a registered client's secret and the PKCE
-- verifier live only in the secrets service (secret `mcp/oauth/<server id>` in the server's secret environment);
-- `oauth` keeps what is not secret: the pending authorization's state (its SHA-256, its expiry, who started it).
ALTER TABLE mcp_servers
	ADD COLUMN oauth_status text NOT NULL DEFAULT 'none' CHECK (oauth_status IN ('none', 'required', 'authorized')),
	-- a client registered by hand with the authorization server (when it offers no dynamic registration)
	ADD COLUMN oauth_client_id text,
	-- its secret, as a reference: { "secret": NAME }
	ADD COLUMN oauth_client_secret jsonb;

COMMENT ON COLUMN mcp_servers.oauth IS 'non-secret OAuth state: { pending: { state_hash, expires_at, user_id } }';

-- The callback finds its server by the state's hash.
CREATE INDEX mcp_servers_oauth_state_idx ON mcp_servers ((oauth -> 'pending' ->> 'state_hash'))
	WHERE oauth ? 'pending';
