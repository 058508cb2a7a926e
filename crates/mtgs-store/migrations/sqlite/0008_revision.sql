-- Each environment's revision: bumped in the same transaction as any write that can
-- change what its health counts (a tool added or changing status, findings recorded, a
-- conflict triaged). Equal revisions mean equal health, so a server answers the health
-- of an unchanged environment from memory instead of aggregating every conflict, and
-- sees another instance's writes because the counter lives in the shared database.
ALTER TABLE environments ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
