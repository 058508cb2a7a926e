//! API keys and approval requests.

use mtgs_core::{ApiKey, Approval, ApprovalStatus, EnvironmentName, Role, ServerName, ToolKey, ToolName};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::Result;
use crate::rows::{Sql, enum_column, int, name_column, optional_int, optional_text, parse_json, text};

const SELECT_KEY: &str = "SELECT id, prefix, name, role, created_by, created_at, last_used_at, revoked_at, revoked_by \
     FROM api_keys";

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: int(row, "id")?,
        prefix: text(row, "prefix")?,
        name: text(row, "name")?,
        role: enum_column(row, "role", "api_keys")?,
        created_by: text(row, "created_by")?,
        created_at: int(row, "created_at")?,
        last_used_at: optional_int(row, "last_used_at")?,
        revoked_at: optional_int(row, "revoked_at")?,
        revoked_by: optional_text(row, "revoked_by")?,
    })
}

/// A key to create: its prefix and hash, never the key.
#[derive(Debug, Clone)]
pub struct NewKeyRow<'a> {
    pub prefix: &'a str,
    pub hash: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub created_by: &'a str,
    pub created_at: i64,
}

pub(crate) async fn insert_key(conn: &mut AnyConnection, key: &NewKeyRow<'_>) -> Result<ApiKey> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_keys (prefix, hash, name, role, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(key.prefix)
    .bind(key.hash)
    .bind(key.name)
    .bind(key.role.as_str())
    .bind(key.created_by)
    .bind(key.created_at)
    .fetch_one(&mut *conn)
    .await?;
    key_by_id(conn, id).await?.ok_or_else(|| crate::StoreError::Corrupt {
        table: "api_keys",
        reason: format!("key {id} vanished after insert"),
    })
}

pub(crate) async fn key_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<ApiKey>> {
    let mut sql = Sql::new(SELECT_KEY);
    sql.push(" WHERE id = ").bind(id);
    sql.build().fetch_optional(&mut *conn).await?.as_ref().map(key_from_row).transpose()
}

pub(crate) async fn key_by_hash(conn: &mut AnyConnection, hash: &str) -> Result<Option<ApiKey>> {
    let mut sql = Sql::new(SELECT_KEY);
    sql.push(" WHERE hash = ").bind(hash);
    sql.build().fetch_optional(&mut *conn).await?.as_ref().map(key_from_row).transpose()
}

pub(crate) async fn keys(conn: &mut AnyConnection) -> Result<Vec<ApiKey>> {
    let mut sql = Sql::new(SELECT_KEY);
    sql.push(" ORDER BY id");
    sql.build().fetch_all(&mut *conn).await?.iter().map(key_from_row).collect()
}

/// Revokes a key not yet revoked; `None` when there is no such key. A key already
/// revoked is returned as it is.
pub(crate) async fn revoke_key(conn: &mut AnyConnection, id: i64, by: &str, now: i64) -> Result<Option<ApiKey>> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    key_by_id(conn, id).await
}

pub(crate) async fn touch_key(conn: &mut AnyConnection, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2").bind(now).bind(id).execute(&mut *conn).await?;
    Ok(())
}

const SELECT_APPROVAL: &str = "SELECT a.id, e.name AS environment, s.name AS server, t.name AS tool, \
     a.definition_hash, a.status, a.reason, a.diff, a.requested_by, a.requested_at, a.expires_at, \
     a.decided_by, a.decided_at, a.comment \
     FROM approvals a JOIN tools t ON t.id = a.tool_id JOIN servers s ON s.id = t.server_id \
     JOIN environments e ON e.id = a.environment_id";

fn approval_from_row(row: &AnyRow) -> Result<Approval> {
    let json = |column: &str| -> Result<Value> {
        match optional_text(row, column)? {
            Some(raw) => parse_json(&raw, column, "approvals"),
            None => Ok(Value::Null),
        }
    };
    Ok(Approval {
        id: int(row, "id")?,
        environment: name_column(row, "environment", "approvals", EnvironmentName::parse)?,
        tool: ToolKey {
            server: name_column(row, "server", "approvals", ServerName::parse)?,
            name: name_column(row, "tool", "approvals", ToolName::parse)?,
        },
        definition_hash: text(row, "definition_hash")?,
        status: enum_column(row, "status", "approvals")?,
        reason: json("reason")?,
        diff: json("diff")?,
        requested_by: text(row, "requested_by")?,
        requested_at: int(row, "requested_at")?,
        expires_at: int(row, "expires_at")?,
        decided_by: optional_text(row, "decided_by")?,
        decided_at: optional_int(row, "decided_at")?,
        comment: optional_text(row, "comment")?,
    })
}

/// Filters for [`crate::Store::approvals`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub environment: Option<EnvironmentName>,
}

/// An approval request to open.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    pub environment_id: i64,
    pub tool_id: i64,
    pub definition_hash: &'a str,
    pub reason: &'a Value,
    pub diff: Option<&'a Value>,
    pub requested_by: &'a str,
    pub requested_at: i64,
    pub expires_at: i64,
}

/// A decision (or expiry, or supersession) of a pending request.
#[derive(Debug, Clone)]
pub struct ApprovalDecision<'a> {
    pub status: ApprovalStatus,
    pub decided_by: &'a str,
    pub decided_at: i64,
    pub comment: Option<&'a str>,
}

pub(crate) async fn insert_approval(conn: &mut AnyConnection, approval: &NewApproval<'_>) -> Result<Approval> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO approvals (environment_id, tool_id, definition_hash, status, reason, diff, requested_by, \
         requested_at, expires_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(approval.environment_id)
    .bind(approval.tool_id)
    .bind(approval.definition_hash)
    .bind(approval.reason.to_string())
    .bind(approval.diff.map(Value::to_string))
    .bind(approval.requested_by)
    .bind(approval.requested_at)
    .bind(approval.expires_at)
    .fetch_one(&mut *conn)
    .await?;
    approval_by_id(conn, id).await?.ok_or_else(|| crate::StoreError::Corrupt {
        table: "approvals",
        reason: format!("approval {id} vanished after insert"),
    })
}

pub(crate) async fn approval_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<Approval>> {
    let mut sql = Sql::new(SELECT_APPROVAL);
    sql.push(" WHERE a.id = ").bind(id);
    sql.build().fetch_optional(&mut *conn).await?.as_ref().map(approval_from_row).transpose()
}

/// The newest request about a tool, whatever its status.
pub(crate) async fn latest_approval(conn: &mut AnyConnection, tool_id: i64) -> Result<Option<Approval>> {
    let mut sql = Sql::new(SELECT_APPROVAL);
    sql.push(" WHERE a.tool_id = ").bind(tool_id).push(" ORDER BY a.id DESC LIMIT 1");
    sql.build().fetch_optional(&mut *conn).await?.as_ref().map(approval_from_row).transpose()
}

pub(crate) async fn approvals(conn: &mut AnyConnection, filter: &ApprovalFilter) -> Result<Vec<Approval>> {
    let mut sql = Sql::new(SELECT_APPROVAL);
    sql.push(" WHERE 1 = 1");
    if let Some(status) = filter.status {
        sql.push(" AND a.status = ").bind(status.as_str());
    }
    if let Some(environment) = &filter.environment {
        sql.push(" AND e.name = ").bind(environment.as_str());
    }
    sql.push(" ORDER BY a.id");
    sql.build().fetch_all(&mut *conn).await?.iter().map(approval_from_row).collect()
}

/// Pending requests whose time ran out at `now`, with their tool's row id.
pub(crate) async fn due_approvals(conn: &mut AnyConnection, now: i64) -> Result<Vec<(Approval, i64)>> {
    let mut sql = Sql::new(&SELECT_APPROVAL.replace("SELECT a.id,", "SELECT a.tool_id, a.id,"));
    sql.push(" WHERE a.status = 'pending' AND a.expires_at <= ").bind(now).push(" ORDER BY a.id");
    sql.build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok((approval_from_row(row)?, int(row, "tool_id")?)))
        .collect()
}

pub(crate) async fn has_due(conn: &mut AnyConnection, now: i64) -> Result<bool> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= $1 LIMIT 1")
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(due.is_some())
}

/// The tool row a request is about.
pub(crate) async fn approval_tool_id(conn: &mut AnyConnection, id: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT tool_id FROM approvals WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?)
}

/// Closes a pending request; `false` when it was not pending (someone else decided first).
pub(crate) async fn decide(conn: &mut AnyConnection, id: i64, decision: &ApprovalDecision<'_>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, comment = $4 \
         WHERE id = $5 AND status = 'pending'",
    )
    .bind(decision.status.as_str())
    .bind(decision.decided_by)
    .bind(decision.decided_at)
    .bind(decision.comment)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
