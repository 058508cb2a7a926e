//! Tracked conflicts: listing and triage, the health counts, and the one piece of real
//! logic in the store, making the tracked conflicts agree with a batch of findings.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use mtgs_core::{
    Conflict, ConflictStatus, EnvironmentName, Finding, ServerName, Severity, SeverityCounts, StageId, ToolKey,
    ToolName,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{BULK_ROWS, CHUNK, Sql, count, enum_column, int, json_column, literal_list, name_column, real, text};
use crate::tools::{LIVE_TOOL_STATUSES, resolve_ids};
use crate::{ConflictFilter, ConflictSync, FindingScope, HealthCounts, Result, StoreError};

const SELECT_CONFLICT: &str = "SELECT c.id, e.name AS environment, \
     lo_server.name AS lo_server, lo.name AS lo_name, hi_server.name AS hi_server, hi.name AS hi_name, \
     c.stage, c.kind, c.severity, c.score, c.evidence, c.status, c.first_seen_at, c.last_seen_at, c.updated_at \
     FROM conflicts c \
     JOIN environments e ON e.id = c.environment_id \
     JOIN tools lo ON lo.id = c.tool_lo_id JOIN servers lo_server ON lo_server.id = lo.server_id \
     JOIN tools hi ON hi.id = c.tool_hi_id JOIN servers hi_server ON hi_server.id = hi.server_id";

/// `ORDER BY` most severe first, then by id: `severity_rank` is the rank migration 0007
/// gives each severity (critical 0 … low 3), indexed per environment.
const MOST_SEVERE_FIRST: &str = " ORDER BY c.severity_rank, c.id";

/// The statuses of [`ConflictStatus::is_live`], as SQL literals.
static LIVE_CONFLICT_STATUSES: LazyLock<String> = LazyLock::new(|| {
    literal_list(ConflictStatus::ALL.iter().filter(|status| status.is_live()).map(|status| status.as_str()))
});

fn tool_key(row: &AnyRow, server: &str, name: &str) -> Result<ToolKey> {
    Ok(ToolKey {
        server: name_column(row, server, "conflicts", ServerName::parse)?,
        name: name_column(row, name, "conflicts", ToolName::parse)?,
    })
}

fn conflict_from_row(row: &AnyRow) -> Result<Conflict> {
    Ok(Conflict {
        id: int(row, "id")?,
        environment: name_column(row, "environment", "conflicts", EnvironmentName::parse)?,
        finding: Finding {
            tool_a: tool_key(row, "lo_server", "lo_name")?,
            tool_b: tool_key(row, "hi_server", "hi_name")?,
            stage: enum_column(row, "stage", "conflicts")?,
            kind: enum_column(row, "kind", "conflicts")?,
            severity: enum_column(row, "severity", "conflicts")?,
            score: real(row, "score")?,
            evidence: json_column(row, "evidence", "conflicts")?,
        },
        status: enum_column(row, "status", "conflicts")?,
        first_seen_at: int(row, "first_seen_at")?,
        last_seen_at: int(row, "last_seen_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

pub(crate) async fn list(
    conn: &mut AnyConnection,
    environment_id: i64,
    filter: &ConflictFilter,
) -> Result<Vec<Conflict>> {
    // The page's ids first, from the conflicts table alone (its most-severe-first index
    // holds them in order), then the page's rows with their joins: SQLite builds every
    // row an OFFSET skips, and a page deep in a large list would otherwise join them all.
    let mut sql = Sql::new(SELECT_CONFLICT);
    sql.push(" WHERE c.id IN (SELECT c.id FROM conflicts c WHERE c.environment_id = ").bind(environment_id);
    if let Some(severity) = filter.severity {
        sql.push(" AND c.severity = ").bind(severity.as_str());
    }
    if let Some(stage) = filter.stage {
        sql.push(" AND c.stage = ").bind(stage.as_str());
    }
    if let Some(status) = filter.status {
        sql.push(" AND c.status = ").bind(status.as_str());
    }
    if let Some(key) = &filter.tool {
        let Some(&tool_id) = resolve_ids(conn, environment_id, [key]).await?.get(key) else {
            return Ok(Vec::new());
        };
        sql.push(" AND (c.tool_lo_id = ").bind(tool_id).push(" OR c.tool_hi_id = ").bind(tool_id).push(")");
    }
    sql.push(MOST_SEVERE_FIRST);
    sql.page(filter.limit, filter.offset);
    sql.push(")").push(MOST_SEVERE_FIRST);
    sql.build().fetch_all(&mut *conn).await?.iter().map(conflict_from_row).collect()
}

pub(crate) async fn by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<Conflict>> {
    let mut sql = Sql::new(SELECT_CONFLICT);
    sql.push(" WHERE c.id = ").bind(id);
    sql.build().fetch_optional(&mut *conn).await?.as_ref().map(conflict_from_row).transpose()
}

/// Conflicts by id, in chunks.
async fn by_ids(conn: &mut AnyConnection, ids: &[i64]) -> Result<HashMap<i64, Conflict>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut sql = Sql::new(SELECT_CONFLICT);
        sql.push(" WHERE c.id IN (").bind_list(chunk.iter().copied()).push(")");
        for row in sql.build().fetch_all(&mut *conn).await? {
            let conflict = conflict_from_row(&row)?;
            found.insert(conflict.id, conflict);
        }
    }
    Ok(found)
}

pub(crate) async fn involving(
    conn: &mut AnyConnection,
    environment_id: i64,
    keys: &[ToolKey],
) -> Result<Vec<Conflict>> {
    let tool_ids: Vec<i64> = resolve_ids(conn, environment_id, keys).await?.into_values().collect();
    let mut found = HashMap::new();
    for chunk in tool_ids.chunks(CHUNK) {
        let mut sql = Sql::new(SELECT_CONFLICT);
        sql.push(" WHERE c.environment_id = ").bind(environment_id);
        push_either_side_in(&mut sql, chunk);
        for row in sql.build().fetch_all(&mut *conn).await? {
            let conflict = conflict_from_row(&row)?;
            found.insert(conflict.id, conflict);
        }
    }
    let mut conflicts: Vec<Conflict> = found.into_values().collect();
    conflicts.sort_by(|a, b| b.finding.severity.cmp(&a.finding.severity).then(a.id.cmp(&b.id)));
    Ok(conflicts)
}

/// ` AND (c.tool_lo_id IN (…) OR c.tool_hi_id IN (…))`, binding each id once.
fn push_either_side_in(sql: &mut Sql, tool_ids: &[i64]) {
    let list = sql.bind_values(tool_ids.iter().copied());
    sql.push(&format!(" AND (c.tool_lo_id IN ({list}) OR c.tool_hi_id IN ({list}))"));
}

pub(crate) async fn set_status(
    conn: &mut AnyConnection,
    id: i64,
    status: ConflictStatus,
    now: i64,
) -> Result<Option<Conflict>> {
    let done = sqlx::query("UPDATE conflicts SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    crate::environments::bump_revision(conn, crate::environments::Owner::Conflict(id)).await?;
    by_id(conn, id).await
}

pub(crate) async fn health(conn: &mut AnyConnection, environment_id: i64) -> Result<HealthCounts> {
    let mut sql = Sql::new("SELECT COUNT(*) AS live, COALESCE(SUM(CASE WHEN status = ");
    sql.bind(mtgs_core::ToolStatus::PendingApproval.as_str())
        .push(" THEN 1 ELSE 0 END), 0) AS pending FROM tools WHERE environment_id = ")
        .bind(environment_id)
        .push(&format!(" AND status IN ({})", *LIVE_TOOL_STATUSES));
    let row = sql.build().fetch_one(&mut *conn).await?;
    let mut counts = HealthCounts {
        live_tools: count(&row, "live", "tools")?,
        pending_approval: count(&row, "pending", "tools")?,
        conflicts: SeverityCounts::default(),
    };

    // A conflict with a tool that is no longer deployed (blocked, removed) cannot confuse
    // an agent, whatever its triage status. Those tools are few: testing each conflict
    // against their list beats joining both of its tools (70 ms instead of seconds for
    // 170k conflicts on SQLite).
    let mut sql = Sql::new("SELECT c.severity, COUNT(*) AS conflicts FROM conflicts c WHERE c.environment_id = ");
    sql.bind(environment_id);
    sql.push(&format!(" AND c.status IN ({}) ", *LIVE_CONFLICT_STATUSES));
    for side in ["c.tool_lo_id", "c.tool_hi_id"] {
        sql.push(&format!(" AND {side} NOT IN (SELECT id FROM tools WHERE environment_id = "));
        sql.bind(environment_id).push(&format!(" AND status NOT IN ({}))", *LIVE_TOOL_STATUSES));
    }
    sql.push(" GROUP BY c.severity");
    for row in sql.build().fetch_all(&mut *conn).await? {
        let severity: Severity = enum_column(&row, "severity", "conflicts")?;
        let number = count(&row, "conflicts", "conflicts")?;
        match severity {
            Severity::Critical => counts.conflicts.critical += number,
            Severity::High => counts.conflicts.high += number,
            Severity::Medium => counts.conflicts.medium += number,
            Severity::Low => counts.conflicts.low += number,
        }
    }
    Ok(counts)
}

/// The identity of a tracked conflict: environment aside, the canonical pair of tool ids
/// and the stage.
type Slot = (i64, i64, StageId);

/// Slots looked up per statement: three values each, under [`CHUNK`]-sized lists' cost
/// but well within both databases' parameter limits.
const SLOTS_PER_LOOKUP: usize = 1_000;

/// Findings recorded in batches within one transaction, so that an analysis of a whole
/// environment neither holds its millions of findings at once nor reads every tracked
/// conflict into memory: each batch looks up the conflicts of its own pairs, and
/// [`Recording::finish`] resolves the live conflicts of the scope no batch found again.
#[derive(Debug)]
pub struct Recording {
    environment_id: i64,
    scope: FindingScope,
    now: i64,
    /// Tool ids by key: the whole environment's for an analysis (read once), else filled
    /// as batches name tools.
    tool_ids: HashMap<ToolKey, i64>,
    /// Conflicts found by some batch.
    seen: HashSet<i64>,
    opened: u64,
    reopened: u64,
}

/// What one batch did to each of its findings, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The tracked conflict's id.
    pub id: i64,
    /// Whether this batch opened it (it was not tracked before).
    pub opened: bool,
}

impl Recording {
    pub(crate) async fn start(
        conn: &mut AnyConnection,
        environment_id: i64,
        scope: FindingScope,
        now: i64,
    ) -> Result<Self> {
        let tool_ids = match &scope {
            FindingScope::Environment => crate::tools::all_ids(conn, environment_id).await?,
            FindingScope::Tools(keys) => resolve_ids(conn, environment_id, keys).await?,
        };
        Ok(Self { environment_id, scope, now, tool_ids, seen: HashSet::new(), opened: 0, reopened: 0 })
    }

    /// Makes the tracked conflicts of `findings`' pairs agree with them: new pairs are
    /// opened, pairs found again updated (a resolved one reopens). Of two findings about
    /// one pair and stage, the later wins.
    pub(crate) async fn record(&mut self, conn: &mut AnyConnection, findings: &[Finding]) -> Result<Vec<Recorded>> {
        let missing: Vec<&ToolKey> = findings
            .iter()
            .flat_map(|finding| [&finding.tool_a, &finding.tool_b])
            .filter(|key| !self.tool_ids.contains_key(*key))
            .collect();
        if !missing.is_empty() {
            let found = resolve_ids(conn, self.environment_id, missing).await?;
            self.tool_ids.extend(found);
        }
        let id_of =
            |key: &ToolKey| self.tool_ids.get(key).copied().ok_or_else(|| StoreError::UnknownTool(key.to_string()));

        // The slot of each finding, and for each slot the last finding naming it (it wins).
        let mut slots: Vec<Slot> = Vec::with_capacity(findings.len());
        let mut winner: HashMap<Slot, &Finding> = HashMap::with_capacity(findings.len());
        for finding in findings {
            let (lo, hi) = finding.pair_key();
            let slot = (id_of(lo)?, id_of(hi)?, finding.stage);
            slots.push(slot);
            winner.insert(slot, finding);
        }
        let tracked = tracked_slots(conn, self.environment_id, &slots).await?;

        // Writes go in bulk: new conflicts in multi-row inserts, conflicts found again
        // unchanged in one `last_seen_at` update per chunk.
        let now = self.now;
        let mut conflict_ids: HashMap<Slot, i64> = HashMap::with_capacity(winner.len());
        let mut new: Vec<Write<'_>> = Vec::new();
        let mut changed: Vec<Write<'_>> = Vec::new();
        let mut seen_again: Vec<i64> = Vec::new();
        let mut queued: HashSet<Slot> = HashSet::with_capacity(winner.len());
        // In order of first appearance, so new conflicts get ids in the order of the findings.
        for slot in &slots {
            if !queued.insert(*slot) {
                continue;
            }
            let Some(finding) = winner.get(slot) else { continue };
            let Some(known) = tracked.get(slot) else {
                new.push(Write { slot: *slot, finding, status: ConflictStatus::Open, updated_at: now });
                continue;
            };
            let next = known.status.on_redetected(known.severity, finding.severity);
            // The stored evidence is the JSON text written from a finding's evidence.
            let evidence_text = finding.evidence.to_string();
            let unchanged = next == known.status
                && known.severity == finding.severity
                && known.kind == finding.kind.as_str()
                && known.score == finding.score
                && known.evidence == evidence_text;
            if unchanged {
                seen_again.push(known.id);
                conflict_ids.insert(*slot, known.id);
            } else {
                if next == ConflictStatus::Open
                    && matches!(known.status, ConflictStatus::Resolved | ConflictStatus::Suppressed)
                {
                    self.reopened += 1;
                }
                let updated_at = if next == known.status { known.updated_at } else { now };
                changed.push(Write { slot: *slot, finding, status: next, updated_at });
            }
        }
        self.opened += new.len() as u64;
        new.append(&mut changed);
        conflict_ids.extend(write_findings(conn, self.environment_id, &new, now).await?);
        for chunk in seen_again.chunks(BULK_ROWS) {
            let mut sql = Sql::new("UPDATE conflicts SET last_seen_at = ");
            sql.bind(now).push(" WHERE id IN (").bind_list(chunk.iter().copied()).push(")");
            sql.build().execute(&mut *conn).await?;
        }
        self.seen.extend(conflict_ids.values().copied());
        slots
            .iter()
            .map(|slot| {
                let id = conflict_ids.get(slot).copied().ok_or(sqlx::Error::RowNotFound)?;
                // Opened by this batch: it was not tracked before.
                Ok(Recorded { id, opened: !tracked.contains_key(slot) })
            })
            .collect()
    }

    /// Resolves the live conflicts of the scope that no batch found again (they are no
    /// longer true), and marks the environment changed.
    pub(crate) async fn finish(self, conn: &mut AnyConnection) -> Result<ConflictSync> {
        let mut gone: HashMap<ConflictStatus, Vec<i64>> = HashMap::new();
        for (id, status) in live_in_scope(conn, self.environment_id, &self.scope, &self.tool_ids).await? {
            if !self.seen.contains(&id) {
                let next = status.on_gone();
                if next != status {
                    gone.entry(next).or_default().push(id);
                }
            }
        }
        let mut resolved = 0;
        for (next, mut ids) in gone {
            ids.sort_unstable();
            resolved += ids.len() as u64;
            for chunk in ids.chunks(BULK_ROWS) {
                let mut sql = Sql::new("UPDATE conflicts SET status = ");
                sql.bind(next.as_str()).push(", updated_at = ").bind(self.now);
                sql.push(" WHERE id IN (").bind_list(chunk.iter().copied()).push(")");
                sql.build().execute(&mut *conn).await?;
            }
        }
        crate::environments::bump_revision(conn, crate::environments::Owner::Environment(self.environment_id)).await?;
        Ok(ConflictSync { conflicts: Vec::new(), opened: self.opened, reopened: self.reopened, resolved })
    }
}

/// Records one batch of findings for `scope` and resolves what it no longer finds: the
/// whole of a [`Recording`] at once, with the tracked conflict of each finding.
pub(crate) async fn record_findings(
    conn: &mut AnyConnection,
    environment_id: i64,
    scope: &FindingScope,
    findings: &[Finding],
    now: i64,
) -> Result<ConflictSync> {
    let mut recording = Recording::start(conn, environment_id, scope.clone(), now).await?;
    let recorded = recording.record(conn, findings).await?;
    let mut sync = recording.finish(conn).await?;
    let ids: Vec<i64> = recorded.iter().map(|recorded| recorded.id).collect();
    let tracked = by_ids(conn, &ids).await?;
    sync.conflicts = recorded
        .iter()
        .map(|recorded| tracked.get(&recorded.id).cloned().ok_or(sqlx::Error::RowNotFound.into()))
        .collect::<Result<_>>()?;
    Ok(sync)
}

/// A tracked conflict as [`Recording::record`] compares it with a finding.
struct Known {
    id: i64,
    status: ConflictStatus,
    severity: Severity,
    kind: String,
    score: f64,
    evidence: String,
    updated_at: i64,
}

/// The tracked conflicts of `slots`, by slot: the slots as a table joined through the
/// conflicts' unique (environment, pair, stage) index, one probe per slot (CROSS JOIN
/// keeps SQLite's planner to that order).
async fn tracked_slots(conn: &mut AnyConnection, environment_id: i64, slots: &[Slot]) -> Result<HashMap<Slot, Known>> {
    let mut unique: Vec<Slot> = slots.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut found = HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(SLOTS_PER_LOOKUP) {
        let mut sql = Sql::new(
            "SELECT c.id, c.tool_lo_id, c.tool_hi_id, c.stage, c.status, c.severity, c.kind, c.score, c.evidence, \
               c.updated_at FROM (VALUES ",
        );
        for (index, (lo, hi, stage)) in chunk.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(*lo).push(", ").bind(*hi).push(", ").bind(stage.as_str()).push(")");
        }
        sql.push(") AS k CROSS JOIN conflicts c WHERE c.environment_id = ").bind(environment_id);
        sql.push(" AND c.tool_lo_id = k.column1 AND c.tool_hi_id = k.column2 AND c.stage = k.column3");
        for row in sql.build().fetch_all(&mut *conn).await? {
            let slot = (int(&row, "tool_lo_id")?, int(&row, "tool_hi_id")?, enum_column(&row, "stage", "conflicts")?);
            found.insert(
                slot,
                Known {
                    id: int(&row, "id")?,
                    status: enum_column(&row, "status", "conflicts")?,
                    severity: enum_column(&row, "severity", "conflicts")?,
                    kind: text(&row, "kind")?,
                    score: real(&row, "score")?,
                    evidence: text(&row, "evidence")?,
                    updated_at: int(&row, "updated_at")?,
                },
            );
        }
    }
    Ok(found)
}

/// The live conflicts a scope speaks for, with their status: the environment's, or those
/// with a scope tool on either side.
async fn live_in_scope(
    conn: &mut AnyConnection,
    environment_id: i64,
    scope: &FindingScope,
    tool_ids: &HashMap<ToolKey, i64>,
) -> Result<Vec<(i64, ConflictStatus)>> {
    let columns = format!("SELECT id, status FROM conflicts WHERE status IN ({}) AND ", *LIVE_CONFLICT_STATUSES);
    let mut statements = Vec::new();
    match scope {
        FindingScope::Environment => {
            let mut sql = Sql::new(&columns);
            sql.push("environment_id = ").bind(environment_id);
            statements.push(sql);
        }
        FindingScope::Tools(keys) => {
            // A key that is not registered has no conflicts.
            let mut ids: Vec<i64> = keys.iter().filter_map(|key| tool_ids.get(key).copied()).collect();
            ids.sort_unstable();
            ids.dedup();
            // A tool id belongs to one environment, so each side's own index answers
            // (an OR of both sides would walk the environment's every conflict).
            for chunk in ids.chunks(CHUNK) {
                for side in ["tool_lo_id", "tool_hi_id"] {
                    let mut sql = Sql::new(&columns);
                    sql.push(&format!("{side} IN (")).bind_list(chunk.iter().copied()).push(")");
                    statements.push(sql);
                }
            }
        }
    }
    let mut found = Vec::new();
    for sql in statements {
        for row in sql.build().fetch_all(&mut *conn).await? {
            found.push((int(&row, "id")?, enum_column(&row, "status", "conflicts")?));
        }
    }
    found.sort_unstable_by_key(|(id, _)| *id);
    found.dedup_by_key(|(id, _)| *id);
    Ok(found)
}

/// A conflict to write: new (`open`), or tracked and found again with something changed.
struct Write<'a> {
    slot: Slot,
    finding: &'a Finding,
    status: ConflictStatus,
    updated_at: i64,
}

/// Writes conflicts in multi-row upserts (new rows are inserted in the order given, so
/// ids follow it; tracked ones keep their id and first sighting); returns each id by slot.
async fn write_findings(
    conn: &mut AnyConnection,
    environment_id: i64,
    writes: &[Write<'_>],
    now: i64,
) -> Result<HashMap<Slot, i64>> {
    let mut ids = HashMap::with_capacity(writes.len());
    for chunk in writes.chunks(BULK_ROWS) {
        let mut sql = Sql::new(
            "INSERT INTO conflicts (environment_id, tool_lo_id, tool_hi_id, stage, kind, severity, score, evidence, \
               status, first_seen_at, last_seen_at, updated_at) VALUES ",
        );
        for (index, write) in chunk.iter().enumerate() {
            let (lo, hi, stage) = write.slot;
            if index > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(environment_id).push(", ").bind(lo).push(", ").bind(hi);
            sql.push(", ").bind(stage.as_str()).push(", ").bind(write.finding.kind.as_str());
            sql.push(", ").bind(write.finding.severity.as_str()).push(", ").bind(write.finding.score);
            sql.push(", ").bind(write.finding.evidence.to_string()).push(", ").bind(write.status.as_str());
            sql.push(", ").bind(now).push(", ").bind(now).push(", ").bind(write.updated_at).push(")");
        }
        sql.push(
            " ON CONFLICT (environment_id, tool_lo_id, tool_hi_id, stage) DO UPDATE SET kind = excluded.kind, \
               severity = excluded.severity, score = excluded.score, evidence = excluded.evidence, \
               status = excluded.status, last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at",
        );
        // RETURNING gives no order guarantee: each row names its slot.
        sql.push(" RETURNING id, tool_lo_id, tool_hi_id, stage");
        for row in sql.build().fetch_all(&mut *conn).await? {
            let slot = (int(&row, "tool_lo_id")?, int(&row, "tool_hi_id")?, enum_column(&row, "stage", "conflicts")?);
            ids.insert(slot, int(&row, "id")?);
        }
    }
    Ok(ids)
}
