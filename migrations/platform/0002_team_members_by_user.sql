-- A user's teams are looked up by user on hot paths (usage attribution per batch, team quotas per request, sockets'
-- membership checks); the primary key (team_id, user_id) cannot serve that.
CREATE INDEX team_members_user_idx ON team_members (user_id, organization_id);
