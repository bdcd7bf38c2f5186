-- Audio nodes announce themselves here; each loaded project is assigned to one live node.

CREATE TABLE audio_nodes (
    id           uuid PRIMARY KEY,
    url          text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

CREATE TABLE project_assignments (
    project_id  uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    node_id     uuid NOT NULL REFERENCES audio_nodes (id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL
);
CREATE INDEX project_assignments_node ON project_assignments (node_id);
