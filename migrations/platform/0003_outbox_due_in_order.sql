-- The relay reads the oldest due rows: `WHERE published_at IS NULL AND next_attempt_at <= now() ORDER BY created_at
-- LIMIT n`. On next_attempt_at the index could not give that order, so every pass read and sorted every pending row:
-- 10 ms a pass with 30,000 waiting (a node behind under load, or RabbitMQ back after an outage), against 1.4 ms
-- reading them in order from this one (bench/README.md, "The outbox relay behind").
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_due_idx ON outbox (created_at) WHERE published_at IS NULL;
