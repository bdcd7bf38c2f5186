-- Mixdown reuse decided by the database: at most one queued, running or succeeded mixdown per
-- fingerprint (options + project state), so two identical requests at once get one job.
ALTER TABLE jobs ADD COLUMN fingerprint TEXT;

UPDATE jobs SET fingerprint = json_extract(payload, '$.fingerprint')
WHERE kind = 'mixdown' AND status IN ('queued', 'running', 'succeeded')
  AND NOT EXISTS (
      SELECT 1 FROM jobs AS k
      WHERE k.kind = 'mixdown' AND k.status IN ('queued', 'running', 'succeeded')
        AND json_extract(k.payload, '$.fingerprint') = json_extract(jobs.payload, '$.fingerprint')
        AND k.id > jobs.id
  );

CREATE UNIQUE INDEX jobs_live_fingerprint ON jobs (fingerprint)
    WHERE status IN ('queued', 'running', 'succeeded');
