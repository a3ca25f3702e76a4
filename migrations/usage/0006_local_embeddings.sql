-- usage: what the built-in (local) embedder embedded, from embedding.events, is metered as usage events of kind
-- 'embedding'. Such an event is no model request; it counts the texts (chunks) it embedded. NULL: a model request,
-- which counts as one request (and, of kind 'embedding', one embedding) as before.
ALTER TABLE usage_events ADD COLUMN texts_embedded integer CHECK (texts_embedded >= 0);
