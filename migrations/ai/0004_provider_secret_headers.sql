-- Provider headers that carry credentials come from secrets now ({"secret": "NAME"} in `headers`), never typed in.
-- A value typed in before cannot be moved into the vault from SQL (it is encrypted by the secrets service), and
-- kept here it stays readable by everyone who may read the organization's AI set-up: it is removed, and the
-- header stays as {"secret": null}, so that the provider says which header needs a secret (in its error and in the
-- provider form) instead of calling the upstream without it. The name test is lib/redact.ts isCredentialHeader.
UPDATE ai_providers
SET headers = (
		SELECT jsonb_object_agg(
			h.key,
			CASE WHEN jsonb_typeof(h.value) = 'string' AND h.key ~* '^cookie$|auth|api[-_]?key|token|secret|passw|credential'
				THEN '{"secret": null}'::jsonb ELSE h.value END
		)
		FROM jsonb_each(headers) AS h
	),
	updated_at = now()
WHERE EXISTS (
	SELECT 1 FROM jsonb_each(headers) AS h
	WHERE jsonb_typeof(h.value) = 'string' AND h.key ~* '^cookie$|auth|api[-_]?key|token|secret|passw|credential'
);
