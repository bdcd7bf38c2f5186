-- Mixdown reuse decided by the database: at most one queued, running or succeeded mixdown per
-- fingerprint (options + project state), so two identical requests at once get one job.
ALTER TABLE jobs ADD COLUMN fingerprint text;

UPDATE jobs AS j SET fingerprint = j.payload->>'fingerprint'
WHERE j.kind = 'mixdown' AND j.status IN ('queued', 'running', 'succeeded')
  AND NOT EXISTS (
      SELECT 1 FROM jobs AS k
      WHERE k.kind = 'mixdown' AND k.status IN ('queued', 'running', 'succeeded')
        AND k.payload->>'fingerprint' = j.payload->>'fingerprint' AND k.id > j.id
  );

CREATE UNIQUE INDEX jobs_live_fingerprint ON jobs (fingerprint)
    WHERE status IN ('queued', 'running', 'succeeded');
