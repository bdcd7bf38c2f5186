-- The node recording a take, so that when it dies another node can claim the take and recover
-- it from the chunks in shared storage. NULL in the single-process `serve`.
ALTER TABLE recording_sessions ADD COLUMN node_id BLOB;
