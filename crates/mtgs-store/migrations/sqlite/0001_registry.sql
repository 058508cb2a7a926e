-- The registry: environments, servers, tools, tracked conflicts and the job queue.
-- Times are INTEGER milliseconds since the Unix epoch; JSON is TEXT; enums are their
-- mtgs-core `as_str()` spelling, held to it by CHECK constraints (a test in
-- crates/mtgs-store/tests/store.rs writes every variant, so the two cannot drift).
-- STRICT makes SQLite refuse a value of the wrong type instead of storing it.

CREATE TABLE environments (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    -- Bumped by every write that changes the set of live tools.
    generation  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE servers (
    id              INTEGER PRIMARY KEY,
    environment_id  INTEGER NOT NULL REFERENCES environments (id),
    name            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (environment_id, name)
) STRICT;

CREATE TABLE tools (
    id               INTEGER PRIMARY KEY,
    environment_id   INTEGER NOT NULL REFERENCES environments (id),
    server_id        INTEGER NOT NULL REFERENCES servers (id),
    name             TEXT    NOT NULL,
    -- The MCP Tool object as JSON, unknown fields included.
    definition       TEXT    NOT NULL,
    definition_hash  TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('active', 'pending_approval', 'blocked', 'deprecated', 'removed')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (environment_id, server_id, name)
) STRICT;

CREATE INDEX tools_by_environment_status ON tools (environment_id, status);

-- One row per (environment, unordered pair, stage): the pair is stored in the canonical
-- order of mtgs-core's `Finding::pair_key` (by server name, then tool name).
CREATE TABLE conflicts (
    id              INTEGER PRIMARY KEY,
    environment_id  INTEGER NOT NULL REFERENCES environments (id),
    tool_lo_id      INTEGER NOT NULL REFERENCES tools (id),
    tool_hi_id      INTEGER NOT NULL REFERENCES tools (id),
    stage           TEXT    NOT NULL
        CHECK (stage IN ('lexical', 'schema', 'semantic', 'behavioural')),
    kind            TEXT    NOT NULL
        CHECK (kind IN ('exact_name', 'normalized_name', 'confusable_name', 'near_name', 'token_overlap',
                        'parameter_type', 'parameter_required', 'parameter_enum',
                        'semantic_similarity', 'routing_confusion')),
    severity        TEXT    NOT NULL
        CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    score           REAL    NOT NULL,
    evidence        TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('open', 'acknowledged', 'resolved', 'suppressed')),
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CHECK (tool_lo_id <> tool_hi_id),
    UNIQUE (environment_id, tool_lo_id, tool_hi_id, stage)
) STRICT;

CREATE INDEX conflicts_by_environment ON conflicts (environment_id, severity, status);
CREATE INDEX conflicts_by_tool_lo ON conflicts (tool_lo_id);
CREATE INDEX conflicts_by_tool_hi ON conflicts (tool_hi_id);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('analysis')),
    environment_id  INTEGER NOT NULL REFERENCES environments (id),
    status          TEXT    NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
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

CREATE INDEX jobs_claimable ON jobs (status, created_at, id);
