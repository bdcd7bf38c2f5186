-- Project history (§13): every change to a project is one revisioned entry. The project row
-- counts its revisions; each entry keeps the rows it changed (before and after), which is
-- what listing, announcing, undoing and redoing it need.
--
-- The outbox: what must follow a committed change (an announcement to engines and clients, a
-- job pushed to the queue), written in the change's transaction and delivered at least once
-- by a dispatcher in every process.

ALTER TABLE projects ADD COLUMN revision bigint NOT NULL DEFAULT 0;

CREATE TABLE project_history (
    project_id     uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    revision       bigint NOT NULL,
    actor_id       uuid,
    actor_username text,
    at             timestamptz NOT NULL,
    kind           text NOT NULL,
    summary        text NOT NULL,
    changes        text NOT NULL,
    undoable       boolean NOT NULL,
    undoes         bigint,
    redoes         bigint,
    undone_by      bigint,
    PRIMARY KEY (project_id, revision)
);
CREATE INDEX project_history_actor ON project_history (project_id, actor_id, revision);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    project_id    uuid,
    message       text NOT NULL,
    created_at    timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    due_ms        bigint NOT NULL,
    last_error    text
);
CREATE INDEX outbox_due ON outbox (due_ms, id);
