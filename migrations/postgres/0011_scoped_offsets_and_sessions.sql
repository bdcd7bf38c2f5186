-- Settings that move audio are scoped (§8): a virtual or sound-card device's manual offset
-- belongs to a project, a client device's to its user (beside its round trip). The old
-- deployment-wide offsets could be set by any signed-in user, so they are not trusted with
-- anyone's takes: they are dropped, and every project starts from 0.
--
-- Sessions (§8): each token remembers when and from where it was last used, and the client
-- it was issued to, so its owner can tell their sessions apart and end one.

CREATE TABLE project_device_offsets (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    device_id  text NOT NULL,
    offset_us  bigint NOT NULL CHECK (offset_us BETWEEN -1000000 AND 1000000),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, device_id)
);

DROP TABLE device_offsets;

ALTER TABLE client_latencies
    ADD COLUMN offset_us bigint NOT NULL DEFAULT 0 CHECK (offset_us BETWEEN -1000000 AND 1000000);

ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN address text;
ALTER TABLE api_tokens ADD COLUMN user_agent text;
