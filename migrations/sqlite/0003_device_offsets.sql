-- A manual latency correction per input device, added to every take recorded from it.

CREATE TABLE device_offsets (
    device_id  TEXT PRIMARY KEY,
    offset_us  INTEGER NOT NULL CHECK (offset_us BETWEEN -1000000 AND 1000000),
    updated_at TEXT NOT NULL
);
