-- The round trip (output + input latency) of each user's client devices (§10): measured by a
-- loopback test, estimated from what the browser reports (headphones), or set by hand. Every
-- take from the device is placed with it.

CREATE TABLE client_latencies (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    latency_us INTEGER NOT NULL CHECK (latency_us BETWEEN 0 AND 1000000),
    source     TEXT NOT NULL CHECK (source IN ('measured', 'estimated', 'manual')),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
