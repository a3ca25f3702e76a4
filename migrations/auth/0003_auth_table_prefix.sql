-- The auth module's own tables carry its prefix, like every module's (auth_<entity>). The identity tables (users,
-- organizations, organization_members, teams, team_members, api_keys, refresh_tokens) are the platform's, shared by
-- every module (migrations/platform), and keep their names.
ALTER TABLE invitations RENAME TO auth_invitations;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_pkey TO auth_invitations_pkey;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_token_hash_key TO auth_invitations_token_hash_key;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_organization_id_fkey TO auth_invitations_organization_id_fkey;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_created_by_fkey TO auth_invitations_created_by_fkey;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_accepted_by_fkey TO auth_invitations_accepted_by_fkey;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_email_check TO auth_invitations_email_check;
ALTER TABLE auth_invitations RENAME CONSTRAINT invitations_role_check TO auth_invitations_role_check;
ALTER INDEX invitations_pending_idx RENAME TO auth_invitations_pending_idx;

ALTER TABLE password_resets RENAME TO auth_password_resets;
ALTER TABLE auth_password_resets RENAME CONSTRAINT password_resets_pkey TO auth_password_resets_pkey;
ALTER TABLE auth_password_resets RENAME CONSTRAINT password_resets_token_hash_key TO auth_password_resets_token_hash_key;
ALTER TABLE auth_password_resets RENAME CONSTRAINT password_resets_user_id_fkey TO auth_password_resets_user_id_fkey;
ALTER INDEX password_resets_user_idx RENAME TO auth_password_resets_user_idx;
