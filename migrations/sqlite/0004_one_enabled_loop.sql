-- At most one enabled loop region per project, decided by the database. Earlier rows that
-- broke the rule keep only their most recently changed enabled region.
UPDATE loop_regions SET enabled = FALSE
WHERE enabled AND id <> (
    SELECT newest.id FROM loop_regions AS newest
    WHERE newest.project_id = loop_regions.project_id AND newest.enabled
    ORDER BY newest.updated_at DESC, newest.id DESC
    LIMIT 1
);

CREATE UNIQUE INDEX loop_regions_one_enabled ON loop_regions (project_id) WHERE enabled;
