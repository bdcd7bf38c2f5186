-- Each node's heartbeat carries how many engines it has loaded and how many it may load, so
-- projects are assigned to nodes with room, and moved off a full one.
ALTER TABLE audio_nodes ADD COLUMN engines BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audio_nodes ADD COLUMN max_engines BIGINT NOT NULL DEFAULT 0;
