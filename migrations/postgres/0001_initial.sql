-- AudioLab schema, PostgreSQL flavour. Timeline quantities are frames (bigint) at the project rate.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text,
    created_at    timestamptz NOT NULL
);

CREATE TABLE api_tokens (
    token_hash text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz
);

CREATE TABLE projects (
    id             uuid PRIMARY KEY,
    owner_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    sample_rate    integer NOT NULL CHECK (sample_rate IN (44100, 48000, 88200, 96000, 192000)),
    bit_depth      smallint NOT NULL CHECK (bit_depth IN (16, 24, 32)),
    tempo          double precision NOT NULL CHECK (tempo BETWEEN 20 AND 999),
    time_signature text NOT NULL,
    version        bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX projects_owner ON projects (owner_id, created_at);

CREATE TABLE tracks (
    id              uuid PRIMARY KEY,
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    track_index     smallint NOT NULL CHECK (track_index BETWEEN 0 AND 31),
    volume          double precision NOT NULL CHECK (volume BETWEEN 0 AND 2),
    pan             double precision NOT NULL CHECK (pan BETWEEN -1 AND 1),
    muted           boolean NOT NULL,
    soloed          boolean NOT NULL,
    color           text,
    record_enabled  boolean NOT NULL,
    input_device_id text,
    monitoring      boolean NOT NULL,
    version         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT tracks_project_index_unique UNIQUE (project_id, track_index)
);

CREATE TABLE recording_sessions (
    id                   uuid PRIMARY KEY,
    project_id           uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    track_id             uuid NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    device_id            text NOT NULL,
    status               text NOT NULL CHECK (status IN ('recording', 'stopped', 'finalizing', 'saved', 'failed', 'recovered')),
    start_frame          bigint NOT NULL,
    applied_offset_frames bigint NOT NULL,
    capture_key          text NOT NULL,
    error                text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX recording_sessions_status ON recording_sessions (status);

CREATE TABLE takes (
    id                   uuid PRIMARY KEY,
    session_id           uuid NOT NULL REFERENCES recording_sessions (id) ON DELETE CASCADE,
    track_id             uuid NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    clip_id              uuid NOT NULL,
    pass_index           integer NOT NULL CHECK (pass_index >= 0),
    capture_offset_frames bigint NOT NULL,
    length_frames        bigint NOT NULL,
    created_at           timestamptz NOT NULL,
    CONSTRAINT takes_session_pass_unique UNIQUE (session_id, pass_index)
);

CREATE TABLE clips (
    id                  uuid PRIMARY KEY,
    project_id          uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    track_id            uuid NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    take_id             uuid REFERENCES takes (id) ON DELETE SET NULL,
    name                text NOT NULL,
    audio_key           text,
    start_frame         bigint NOT NULL CHECK (start_frame >= 0),
    source_offset_frames bigint NOT NULL CHECK (source_offset_frames >= 0),
    length_frames       bigint NOT NULL CHECK (length_frames >= 0),
    source_length_frames bigint NOT NULL CHECK (source_length_frames >= 0),
    gain_db             double precision NOT NULL CHECK (gain_db BETWEEN -60 AND 20),
    fade_in_frames      bigint NOT NULL CHECK (fade_in_frames >= 0),
    fade_out_frames     bigint NOT NULL CHECK (fade_out_frames >= 0),
    source_sample_rate  integer NOT NULL,
    channels            smallint NOT NULL,
    status              text NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    error               text,
    peaks_key           text,
    loudness_lufs       double precision,
    active              boolean NOT NULL,
    version             bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX clips_track ON clips (track_id, start_frame);
CREATE INDEX clips_project ON clips (project_id);

CREATE TABLE loop_regions (
    id                uuid PRIMARY KEY,
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name              text NOT NULL,
    start_frame       bigint NOT NULL CHECK (start_frame >= 0),
    end_frame         bigint NOT NULL,
    enabled           boolean NOT NULL,
    repeat_count      integer CHECK (repeat_count >= 0),
    auto_punch_record boolean NOT NULL,
    version           bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CHECK (start_frame < end_frame)
);
CREATE INDEX loop_regions_project ON loop_regions (project_id, start_frame);

CREATE TABLE jobs (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    status     text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress   double precision NOT NULL CHECK (progress BETWEEN 0 AND 1),
    payload    jsonb NOT NULL,
    result     jsonb,
    error      text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX jobs_project ON jobs (project_id, created_at);
