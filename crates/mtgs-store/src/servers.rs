//! Servers as live MCP servers: their connections and their last sync.

use mtgs_core::{Connection, EnvironmentName, McpServer, ServerName, SyncRecord, SyncStatus};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{Sql, enum_column, int, name_column, optional_int, optional_text, parse_json};
use crate::{Result, StoreError};

const SELECT_SERVER: &str = "SELECT s.id, e.name AS environment, s.name, s.connection, s.synced_at, s.sync_status, \
     s.sync_summary, s.sync_error, s.created_at FROM servers s JOIN environments e ON e.id = s.environment_id";

fn server_from_row(row: &AnyRow) -> Result<McpServer> {
    let connection = match optional_text(row, "connection")? {
        Some(raw) => Some(
            Connection::parse(&parse_json(&raw, "connection", "servers")?, "")
                .map_err(|error| StoreError::Corrupt { table: "servers", reason: format!("connection: {error}") })?,
        ),
        None => None,
    };
    let last_sync = match optional_int(row, "synced_at")? {
        Some(at) => Some(SyncRecord {
            at,
            status: enum_column::<SyncStatus>(row, "sync_status", "servers")?,
            summary: match optional_text(row, "sync_summary")? {
                Some(raw) => parse_json(&raw, "sync_summary", "servers")?,
                None => Value::Null,
            },
            error: optional_text(row, "sync_error")?,
        }),
        None => None,
    };
    Ok(McpServer {
        id: int(row, "id")?,
        environment: name_column(row, "environment", "servers", EnvironmentName::parse)?,
        name: name_column(row, "name", "servers", ServerName::parse)?,
        connection,
        last_sync,
        created_at: int(row, "created_at")?,
    })
}

/// Servers with a connection (live MCP servers), of one environment or all.
pub(crate) async fn connected(
    conn: &mut AnyConnection,
    environment: Option<&EnvironmentName>,
) -> Result<Vec<McpServer>> {
    let mut sql = Sql::new(SELECT_SERVER);
    sql.push(" WHERE s.connection IS NOT NULL");
    if let Some(environment) = environment {
        sql.push(" AND e.name = ").bind(environment.as_str());
    }
    sql.push(" ORDER BY e.name, s.name");
    sql.build().fetch_all(&mut *conn).await?.iter().map(server_from_row).collect()
}

pub(crate) async fn by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<McpServer>> {
    let mut sql = Sql::new(SELECT_SERVER);
    sql.push(" WHERE s.id = ").bind(id);
    sql.build().fetch_optional(&mut *conn).await?.as_ref().map(server_from_row).transpose()
}

/// Sets the connection of `name` in the environment (creating the server row).
pub(crate) async fn set_connection(
    conn: &mut AnyConnection,
    environment_id: i64,
    name: &ServerName,
    connection: &Connection,
    now: i64,
) -> Result<McpServer> {
    let id = crate::tools::ensure_server(conn, environment_id, name, now).await?;
    sqlx::query("UPDATE servers SET connection = $1 WHERE id = $2")
        .bind(connection.to_stored().to_string())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    by_id(conn, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt { table: "servers", reason: format!("server {id} vanished") })
}

/// Records how a sync ended.
pub(crate) async fn record_sync(conn: &mut AnyConnection, id: i64, record: &SyncRecord) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET synced_at = $1, sync_status = $2, sync_summary = $3, sync_error = $4 WHERE id = $5",
    )
    .bind(record.at)
    .bind(record.status.as_str())
    .bind((!record.summary.is_null()).then(|| record.summary.to_string()))
    .bind(record.error.as_deref())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
