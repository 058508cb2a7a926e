-- The audit log: append-only and hash-chained. Each row holds the previous row's hash and
-- its own hash over its canonical form (mtgs_core::chain_hash), so `mtgs audit verify`
-- finds the first row edited, deleted, inserted or reordered by hand. The database itself
-- refuses UPDATE and DELETE.

CREATE TABLE audit_log (
    -- 1, 2, 3, ... with no gaps.
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    environment  TEXT,
    subject      TEXT    NOT NULL,
    -- JSON, or NULL when the event changes no state.
    before       TEXT,
    after        TEXT,
    prev_hash    TEXT    NOT NULL CHECK (length(prev_hash) = 64),
    hash         TEXT    NOT NULL CHECK (length(hash) = 64)
) STRICT;

CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_refuses_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_refuses_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused');
END;
