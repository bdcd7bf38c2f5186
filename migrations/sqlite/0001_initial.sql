-- AudioLab schema, SQLite flavour (uuids are 16-byte blobs, timestamps RFC 3339 text). Timeline quantities are frames (INTEGER) at the project rate.

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT
);

CREATE TABLE projects (
    id             BLOB PRIMARY KEY,
    owner_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    sample_rate    INTEGER NOT NULL CHECK (sample_rate IN (44100, 48000, 88200, 96000, 192000)),
    bit_depth      INTEGER NOT NULL CHECK (bit_depth IN (16, 24, 32)),
    tempo          REAL NOT NULL CHECK (tempo BETWEEN 20 AND 999),
    time_signature TEXT NOT NULL,
    version        INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX projects_owner ON projects (owner_id, created_at);

CREATE TABLE tracks (
    id              BLOB PRIMARY KEY,
    project_id      BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    track_index     INTEGER NOT NULL CHECK (track_index BETWEEN 0 AND 31),
    volume          REAL NOT NULL CHECK (volume BETWEEN 0 AND 2),
    pan             REAL NOT NULL CHECK (pan BETWEEN -1 AND 1),
    muted           INTEGER NOT NULL,
    soloed          INTEGER NOT NULL,
    color           TEXT,
    record_enabled  INTEGER NOT NULL,
    input_device_id TEXT,
    monitoring      INTEGER NOT NULL,
    version         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT tracks_project_index_unique UNIQUE (project_id, track_index)
);

CREATE TABLE recording_sessions (
    id                   BLOB PRIMARY KEY,
    project_id           BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    track_id             BLOB NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    device_id            TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('recording', 'stopped', 'finalizing', 'saved', 'failed', 'recovered')),
    start_frame          INTEGER NOT NULL,
    applied_offset_frames INTEGER NOT NULL,
    capture_key          TEXT NOT NULL,
    error                TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX recording_sessions_status ON recording_sessions (status);

CREATE TABLE takes (
    id                   BLOB PRIMARY KEY,
    session_id           BLOB NOT NULL REFERENCES recording_sessions (id) ON DELETE CASCADE,
    track_id             BLOB NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    clip_id              BLOB NOT NULL,
    pass_index           INTEGER NOT NULL CHECK (pass_index >= 0),
    capture_offset_frames INTEGER NOT NULL,
    length_frames        INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    CONSTRAINT takes_session_pass_unique UNIQUE (session_id, pass_index)
);

CREATE TABLE clips (
    id                  BLOB PRIMARY KEY,
    project_id          BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    track_id            BLOB NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    take_id             BLOB REFERENCES takes (id) ON DELETE SET NULL,
    name                TEXT NOT NULL,
    audio_key           TEXT,
    start_frame         INTEGER NOT NULL CHECK (start_frame >= 0),
    source_offset_frames INTEGER NOT NULL CHECK (source_offset_frames >= 0),
    length_frames       INTEGER NOT NULL CHECK (length_frames >= 0),
    source_length_frames INTEGER NOT NULL CHECK (source_length_frames >= 0),
    gain_db             REAL NOT NULL CHECK (gain_db BETWEEN -60 AND 20),
    fade_in_frames      INTEGER NOT NULL CHECK (fade_in_frames >= 0),
    fade_out_frames     INTEGER NOT NULL CHECK (fade_out_frames >= 0),
    source_sample_rate  INTEGER NOT NULL,
    channels            INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    error               TEXT,
    peaks_key           TEXT,
    loudness_lufs       REAL,
    active              INTEGER NOT NULL,
    version             INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX clips_track ON clips (track_id, start_frame);
CREATE INDEX clips_project ON clips (project_id);

CREATE TABLE loop_regions (
    id                BLOB PRIMARY KEY,
    project_id        BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    start_frame       INTEGER NOT NULL CHECK (start_frame >= 0),
    end_frame         INTEGER NOT NULL,
    enabled           INTEGER NOT NULL,
    repeat_count      INTEGER CHECK (repeat_count >= 0),
    auto_punch_record INTEGER NOT NULL,
    version           INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CHECK (start_frame < end_frame)
);
CREATE INDEX loop_regions_project ON loop_regions (project_id, start_frame);

CREATE TABLE jobs (
    id         BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    project_id BLOB REFERENCES projects (id) ON DELETE SET NULL,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress   REAL NOT NULL CHECK (progress BETWEEN 0 AND 1),
    payload    TEXT NOT NULL,
    result     TEXT,
    error      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX jobs_project ON jobs (project_id, created_at);
