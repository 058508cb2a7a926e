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

use crate::rows::{CHUNK, Sql, count, enum_column, int, json_column, literal_list, name_column, real};
use crate::tools::{LIVE_TOOL_STATUSES, resolve_ids};
use crate::{ConflictFilter, ConflictSync, FindingScope, HealthCounts, Result, StoreError};

const SELECT_CONFLICT: &str = "SELECT c.id, e.name AS environment, \
     lo_server.name AS lo_server, lo.name AS lo_name, hi_server.name AS hi_server, hi.name AS hi_name, \
     c.stage, c.kind, c.severity, c.score, c.evidence, c.status, c.first_seen_at, c.last_seen_at, c.updated_at \
     FROM conflicts c \
     JOIN environments e ON e.id = c.environment_id \
     JOIN tools lo ON lo.id = c.tool_lo_id JOIN servers lo_server ON lo_server.id = lo.server_id \
     JOIN tools hi ON hi.id = c.tool_hi_id JOIN servers hi_server ON hi_server.id = hi.server_id";

/// `ORDER BY` most severe first. Severity names do not sort by text, so each gets its rank
/// from mtgs-core's ordering of [`Severity`].
static MOST_SEVERE_FIRST: LazyLock<String> = LazyLock::new(|| {
    let mut severities = Severity::ALL.to_vec();
    severities.sort_by(|a, b| b.cmp(a));
    let ranks: String =
        severities.iter().enumerate().map(|(rank, severity)| format!(" WHEN '{severity}' THEN {rank}")).collect();
    format!(" ORDER BY CASE c.severity{ranks} END, c.id")
});

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
    let mut sql = Sql::new(SELECT_CONFLICT);
    sql.push(" WHERE c.environment_id = ").bind(environment_id);
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
    sql.push(&MOST_SEVERE_FIRST);
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
    // an agent, whatever its triage status.
    let mut sql = Sql::new(
        "SELECT c.severity, COUNT(*) AS conflicts FROM conflicts c \
         JOIN tools lo ON lo.id = c.tool_lo_id JOIN tools hi ON hi.id = c.tool_hi_id \
         WHERE c.environment_id = ",
    );
    sql.bind(environment_id).push(&format!(
        " AND c.status IN ({statuses}) AND lo.status IN ({live}) AND hi.status IN ({live}) GROUP BY c.severity",
        statuses = *LIVE_CONFLICT_STATUSES,
        live = *LIVE_TOOL_STATUSES,
    ));
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

pub(crate) async fn record_findings(
    conn: &mut AnyConnection,
    environment_id: i64,
    scope: &FindingScope,
    findings: &[Finding],
    now: i64,
) -> Result<ConflictSync> {
    let scope_keys: &[ToolKey] = match scope {
        FindingScope::Tools(keys) => keys,
        FindingScope::Environment => &[],
    };
    let tool_ids = resolve_ids(
        conn,
        environment_id,
        findings.iter().flat_map(|finding| [&finding.tool_a, &finding.tool_b]).chain(scope_keys),
    )
    .await?;
    let id_of = |key: &ToolKey| tool_ids.get(key).copied().ok_or_else(|| StoreError::UnknownTool(key.to_string()));

    // The slot of each finding, and for each slot the last finding naming it (it wins).
    let mut slots: Vec<Slot> = Vec::with_capacity(findings.len());
    let mut winner: HashMap<Slot, &Finding> = HashMap::with_capacity(findings.len());
    for finding in findings {
        let (lo, hi) = finding.pair_key();
        let slot = (id_of(lo)?, id_of(hi)?, finding.stage);
        slots.push(slot);
        winner.insert(slot, finding);
    }

    let mut sync = ConflictSync::default();
    let mut conflict_ids: HashMap<Slot, i64> = HashMap::with_capacity(winner.len());
    // In order of first appearance, so new conflicts get ids in the order of the findings.
    for slot in &slots {
        if conflict_ids.contains_key(slot) {
            continue;
        }
        let Some(finding) = winner.get(slot) else { continue };
        let id = upsert_finding(conn, environment_id, *slot, finding, now, &mut sync).await?;
        conflict_ids.insert(*slot, id);
    }

    let seen: HashSet<i64> = conflict_ids.values().copied().collect();
    for (id, status) in live_in_scope(conn, environment_id, scope, &tool_ids).await? {
        if seen.contains(&id) {
            continue;
        }
        let next = status.on_gone();
        if next != status {
            sqlx::query("UPDATE conflicts SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(next.as_str())
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sync.resolved += 1;
        }
    }

    let ids: Vec<i64> = seen.into_iter().collect();
    let tracked = by_ids(conn, &ids).await?;
    sync.conflicts = slots
        .iter()
        .map(|slot| {
            conflict_ids.get(slot).and_then(|id| tracked.get(id)).cloned().ok_or(sqlx::Error::RowNotFound.into())
        })
        .collect::<Result<_>>()?;
    Ok(sync)
}

/// Inserts or updates the conflict of one slot; returns its id.
async fn upsert_finding(
    conn: &mut AnyConnection,
    environment_id: i64,
    (lo_id, hi_id, stage): Slot,
    finding: &Finding,
    now: i64,
    sync: &mut ConflictSync,
) -> Result<i64> {
    let existing = sqlx::query(
        "SELECT id, status, severity, updated_at FROM conflicts \
         WHERE environment_id = $1 AND tool_lo_id = $2 AND tool_hi_id = $3 AND stage = $4",
    )
    .bind(environment_id)
    .bind(lo_id)
    .bind(hi_id)
    .bind(stage.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let evidence = finding.evidence.to_string();

    let Some(row) = existing else {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO conflicts (environment_id, tool_lo_id, tool_hi_id, stage, kind, severity, score, evidence, \
               status, first_seen_at, last_seen_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10) RETURNING id",
        )
        .bind(environment_id)
        .bind(lo_id)
        .bind(hi_id)
        .bind(stage.as_str())
        .bind(finding.kind.as_str())
        .bind(finding.severity.as_str())
        .bind(finding.score)
        .bind(evidence)
        .bind(ConflictStatus::Open.as_str())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        sync.opened += 1;
        return Ok(id);
    };

    let id = int(&row, "id")?;
    let status: ConflictStatus = enum_column(&row, "status", "conflicts")?;
    let severity: Severity = enum_column(&row, "severity", "conflicts")?;
    let next = status.on_redetected(severity, finding.severity);
    if next == ConflictStatus::Open && matches!(status, ConflictStatus::Resolved | ConflictStatus::Suppressed) {
        sync.reopened += 1;
    }
    let updated_at = if next == status { int(&row, "updated_at")? } else { now };
    sqlx::query(
        "UPDATE conflicts SET kind = $1, severity = $2, score = $3, evidence = $4, status = $5, \
           last_seen_at = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(finding.kind.as_str())
    .bind(finding.severity.as_str())
    .bind(finding.score)
    .bind(evidence)
    .bind(next.as_str())
    .bind(now)
    .bind(updated_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Live conflicts the scope speaks for, as (id, status). Only live ones can be gone
/// ([`ConflictStatus::on_gone`] leaves the others as they are).
async fn live_in_scope(
    conn: &mut AnyConnection,
    environment_id: i64,
    scope: &FindingScope,
    tool_ids: &HashMap<ToolKey, i64>,
) -> Result<Vec<(i64, ConflictStatus)>> {
    let select = |sql: &mut Sql| {
        sql.push(" WHERE environment_id = ")
            .bind(environment_id)
            .push(&format!(" AND status IN ({})", *LIVE_CONFLICT_STATUSES));
    };
    let mut statements = Vec::new();
    match scope {
        FindingScope::Environment => {
            let mut sql = Sql::new("SELECT id, status FROM conflicts c");
            select(&mut sql);
            statements.push(sql);
        }
        FindingScope::Tools(keys) => {
            // A key that is not registered has no conflicts to lose.
            let mut ids: Vec<i64> = keys.iter().filter_map(|key| tool_ids.get(key).copied()).collect();
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(CHUNK) {
                let mut sql = Sql::new("SELECT id, status FROM conflicts c");
                select(&mut sql);
                push_either_side_in(&mut sql, chunk);
                statements.push(sql);
            }
        }
    }
    let mut found = HashMap::new();
    for sql in statements {
        for row in sql.build().fetch_all(&mut *conn).await? {
            found.insert(int(&row, "id")?, enum_column(&row, "status", "conflicts")?);
        }
    }
    let mut found: Vec<(i64, ConflictStatus)> = found.into_iter().collect();
    found.sort_unstable_by_key(|(id, _)| *id);
    Ok(found)
}
