-- Governance: API keys (stored only as SHA-256 of the key, with a visible prefix) and
-- approval requests for tools with CRITICAL or HIGH conflicts.

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    -- The key's first characters, shown in lists and logs.
    prefix       TEXT    NOT NULL UNIQUE,
    hash         TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64),
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL
        CHECK (role IN ('viewer', 'ci-agent', 'developer', 'reviewer', 'admin')),
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    revoked_by   TEXT
) STRICT;

CREATE TABLE approvals (
    id               INTEGER PRIMARY KEY,
    environment_id   INTEGER NOT NULL REFERENCES environments (id),
    tool_id          INTEGER NOT NULL REFERENCES tools (id),
    -- The definition the decision is about.
    definition_hash  TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'superseded')),
    -- JSON: the blocking conflicts when requested.
    reason           TEXT    NOT NULL,
    -- JSON {before, after} for a definition that changed after approval; NULL otherwise.
    diff             TEXT,
    requested_by     TEXT    NOT NULL,
    requested_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    decided_by       TEXT,
    decided_at       INTEGER,
    comment          TEXT
) STRICT;

CREATE INDEX approvals_by_status ON approvals (status, expires_at);
CREATE INDEX approvals_by_tool ON approvals (tool_id, id);
-- At most one open request per tool.
CREATE UNIQUE INDEX approvals_one_pending ON approvals (tool_id) WHERE status = 'pending';
