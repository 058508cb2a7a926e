-- Impact simulations run as jobs, and a job now carries its request. SQLite cannot widen
-- a CHECK constraint in place, so the jobs table is rebuilt with the same rows.

CREATE TABLE jobs_new (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('analysis', 'simulation')),
    environment_id  INTEGER NOT NULL REFERENCES environments (id),
    status          TEXT    NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    -- JSON: what the job was asked to do (a simulation's candidates and probes); NULL
    -- when the kind needs nothing beyond the environment (an analysis).
    payload         TEXT,
    progress_done   INTEGER NOT NULL DEFAULT 0,
    progress_total  INTEGER NOT NULL DEFAULT 0,
    -- JSON; NULL until the job succeeds.
    result          TEXT,
    error           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- While running: the worker holds the job until then; past it, another may claim it.
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
) STRICT;

INSERT INTO jobs_new (id, kind, environment_id, status, payload, progress_done, progress_total, result, error,
                      attempts, lease_until, created_at, started_at, finished_at)
SELECT id, kind, environment_id, status, NULL, progress_done, progress_total, result, error,
       attempts, lease_until, created_at, started_at, finished_at
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_claimable ON jobs (status, created_at, id);
