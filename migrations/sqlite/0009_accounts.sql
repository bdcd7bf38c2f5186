-- Accounts (§8): bearer tokens stored only as a hash, with an expiry; project members with roles.
-- The unused token table of the first schema is replaced. Every existing project's owner
-- becomes its `owner` member, so access is decided by membership alone.

DROP TABLE api_tokens;

CREATE TABLE api_tokens (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('session', 'api_key')),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, id);

CREATE TABLE project_members (
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
-- A user's projects are listed by keyset on (user_id, project_id).
CREATE INDEX project_members_user ON project_members (user_id, project_id);
-- One owner per project.
CREATE UNIQUE INDEX project_members_one_owner ON project_members (project_id) WHERE role = 'owner';

INSERT INTO project_members (project_id, user_id, role, created_at)
SELECT id, owner_id, 'owner', created_at FROM projects;
