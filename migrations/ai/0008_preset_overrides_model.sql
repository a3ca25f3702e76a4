-- A preset named like a deployment takes that model's requests over only when marked so: an explicit choice the
-- UI shows. Existing presets are not marked: one that collided stops taking over until an admin marks it.
ALTER TABLE ai_presets ADD COLUMN overrides_model boolean NOT NULL DEFAULT false;
