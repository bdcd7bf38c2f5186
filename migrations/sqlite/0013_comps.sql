-- What each track plays of its takes (§14): {"segments": [{start, end, take_id}], "crossfade_ms"}.
ALTER TABLE tracks ADD COLUMN comp TEXT NOT NULL DEFAULT '{"segments":[],"crossfade_ms":10}';
