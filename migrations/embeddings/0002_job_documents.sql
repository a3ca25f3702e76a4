-- An ingest job's documents (up to 10,000), staged beside the job instead of in emb_jobs.payload: the job row stays
-- small (it is read and returned on every claim, heartbeat, list and cancel), and each step deletes the documents it
-- wrote in the transaction that records its progress, so the staged rows are only what is left to do. A failed or
-- cancelled job's rows are deleted when it ends; all go with the job.
CREATE TABLE emb_job_documents (
	job_id uuid NOT NULL REFERENCES emb_jobs (id) ON DELETE CASCADE,
	position integer NOT NULL,
	document jsonb NOT NULL,
	PRIMARY KEY (job_id, position)
);

-- Ingest jobs not finished yet keep their remaining documents; finished ones need none.
INSERT INTO emb_job_documents (job_id, position, document)
SELECT j.id, d.n - 1, d.value FROM emb_jobs j, jsonb_array_elements(j.payload -> 'documents') WITH ORDINALITY AS d(value, n)
WHERE j.kind = 'ingest' AND j.status IN ('queued', 'running') AND d.n - 1 >= j.done;
UPDATE emb_jobs SET payload = payload - 'documents' WHERE kind = 'ingest';
