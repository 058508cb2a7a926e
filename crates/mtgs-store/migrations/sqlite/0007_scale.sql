-- Indexes for registries of tens of thousands of tools (see docs/benchmarks.md).
--
-- Conflicts list most severe first, a page at a time. Severity names do not sort by text,
-- so each row carries its rank (critical 0 … low 3, mtgs-core's order of Severity,
-- checked by the store tests) and the index hands a page over without sorting the
-- environment's every conflict.
ALTER TABLE conflicts ADD COLUMN severity_rank INTEGER
    GENERATED ALWAYS AS (CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1
                                       WHEN 'medium' THEN 2 WHEN 'low' THEN 3 END) VIRTUAL;
CREATE INDEX conflicts_most_severe_first ON conflicts (environment_id, severity_rank, id);

-- One server's tools (a CI gate's check, a sync) without walking the environment's.
CREATE INDEX tools_by_server ON tools (server_id, status);
