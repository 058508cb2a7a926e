-- Live MCP servers: how to reach a server (JSON, secrets included; the API and CLI mask
-- them), and how its last sync went.

ALTER TABLE servers ADD COLUMN connection TEXT;
ALTER TABLE servers ADD COLUMN synced_at INTEGER;
ALTER TABLE servers ADD COLUMN sync_status TEXT CHECK (sync_status IN ('succeeded', 'failed'));
-- JSON: what the sync found (added, changed, removed, …) or NULL.
ALTER TABLE servers ADD COLUMN sync_summary TEXT;
ALTER TABLE servers ADD COLUMN sync_error TEXT;
