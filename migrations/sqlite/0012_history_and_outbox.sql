-- Project history (§13): every change to a project is one revisioned entry. The project row
-- counts its revisions; each entry keeps the rows it changed (before and after), which is
-- what listing, announcing, undoing and redoing it need.
--
-- The outbox: what must follow a committed change (an announcement to engines and clients, a
-- job pushed to the queue), written in the change's transaction and delivered at least once
-- by a dispatcher in every process.

ALTER TABLE projects ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TABLE project_history (
    project_id     BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    revision       INTEGER NOT NULL,
    actor_id       BLOB,
    actor_username TEXT,
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    summary        TEXT NOT NULL,
    changes        TEXT NOT NULL,
    undoable       INTEGER NOT NULL,
    undoes         INTEGER,
    redoes         INTEGER,
    undone_by      INTEGER,
    PRIMARY KEY (project_id, revision)
);
CREATE INDEX project_history_actor ON project_history (project_id, actor_id, revision);

CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    BLOB,
    message       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    due_ms        INTEGER NOT NULL,
    last_error    TEXT
);
CREATE INDEX outbox_due ON outbox (due_ms, id);
