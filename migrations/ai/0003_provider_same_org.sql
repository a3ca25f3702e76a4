-- A deployment's provider belongs to the deployment's organization, enforced by the database as well as by the
-- service (which names the field): the foreign key now includes the organization. Rows that broke this could never
-- be served (the router only reads an organization's own providers) and are removed.
DELETE FROM ai_models m USING ai_providers p WHERE m.provider_id = p.id AND m.organization_id <> p.organization_id;
ALTER TABLE ai_providers ADD CONSTRAINT ai_providers_organization_id_id_key UNIQUE (organization_id, id);
ALTER TABLE ai_models
	DROP CONSTRAINT ai_models_provider_id_fkey,
	ADD CONSTRAINT ai_models_provider_fkey FOREIGN KEY (organization_id, provider_id)
		REFERENCES ai_providers (organization_id, id) ON DELETE CASCADE;
