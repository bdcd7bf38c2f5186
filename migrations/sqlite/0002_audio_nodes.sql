-- Audio nodes announce themselves here; each loaded project is assigned to one live node.

CREATE TABLE audio_nodes (
    id           BLOB PRIMARY KEY,
    url          TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

CREATE TABLE project_assignments (
    project_id  BLOB PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    node_id     BLOB NOT NULL REFERENCES audio_nodes (id) ON DELETE CASCADE,
    assigned_at TEXT NOT NULL
);
CREATE INDEX project_assignments_node ON project_assignments (node_id);
