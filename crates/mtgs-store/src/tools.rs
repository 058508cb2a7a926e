//! Servers and tools: registering a definition, changing a tool's status, listing, and
//! mapping tool keys to row ids.

use std::collections::HashMap;
use std::sync::LazyLock;

use mtgs_core::{EnvironmentName, ServerName, ToolDef, ToolKey, ToolName, ToolRecord, ToolStatus};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{CHUNK, Sql, enum_column, int, literal_list, name_column, parse_json, text};
use crate::{Result, StoreError, ToolFilter};

const SELECT_TOOL: &str = "SELECT t.id, e.name AS environment, s.name AS server, t.definition, \
     t.definition_hash, t.status, t.created_at, t.updated_at \
     FROM tools t JOIN servers s ON s.id = t.server_id JOIN environments e ON e.id = t.environment_id";

/// The statuses of [`ToolStatus::is_live`], as SQL literals.
pub(crate) static LIVE_TOOL_STATUSES: LazyLock<String> = LazyLock::new(|| {
    literal_list(ToolStatus::ALL.iter().filter(|status| status.is_live()).map(|status| status.as_str()))
});

fn tool_from_row(row: &AnyRow) -> Result<ToolRecord> {
    let definition = parse_json(&text(row, "definition")?, "definition", "tools")?;
    let def = ToolDef::parse(&definition)
        .map_err(|error| StoreError::Corrupt { table: "tools", reason: format!("definition: {error}") })?
        .def;
    Ok(ToolRecord {
        id: int(row, "id")?,
        environment: name_column(row, "environment", "tools", EnvironmentName::parse)?,
        server: name_column(row, "server", "tools", ServerName::parse)?,
        def,
        definition_hash: text(row, "definition_hash")?,
        status: enum_column(row, "status", "tools")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

pub(crate) async fn list(conn: &mut AnyConnection, filter: &ToolFilter) -> Result<Vec<ToolRecord>> {
    let mut sql = Sql::new(SELECT_TOOL);
    sql.push(" WHERE 1 = 1");
    if let Some(environment) = &filter.environment {
        sql.push(" AND e.name = ").bind(environment.as_str());
    }
    if let Some(server) = &filter.server {
        sql.push(" AND s.name = ").bind(server.as_str());
        if filter.environment.is_some() {
            // Always true; it lets the planner find the one server first and then its
            // tools, rather than walk every tool of the environment.
            sql.push(" AND s.environment_id = e.id");
        }
    }
    if let Some(status) = filter.status {
        sql.push(" AND t.status = ").bind(status.as_str());
    }
    sql.push(" ORDER BY e.name, s.name, t.name");
    sql.page(filter.limit, filter.offset);
    sql.build().fetch_all(&mut *conn).await?.iter().map(tool_from_row).collect()
}

pub(crate) async fn live(conn: &mut AnyConnection, environment_id: i64) -> Result<Vec<ToolRecord>> {
    let mut sql = Sql::new(SELECT_TOOL);
    sql.push(" WHERE t.environment_id = ").bind(environment_id);
    sql.push(&format!(" AND t.status IN ({}) ORDER BY s.name, t.name", *LIVE_TOOL_STATUSES));
    sql.build().fetch_all(&mut *conn).await?.iter().map(tool_from_row).collect()
}

pub(crate) async fn ensure_server(
    conn: &mut AnyConnection,
    environment_id: i64,
    server: &ServerName,
    now: i64,
) -> Result<i64> {
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM servers WHERE environment_id = $1 AND name = $2")
        .bind(environment_id)
        .bind(server.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    Ok(sqlx::query_scalar("INSERT INTO servers (environment_id, name, created_at) VALUES ($1, $2, $3) RETURNING id")
        .bind(environment_id)
        .bind(server.as_str())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?)
}

pub(crate) async fn upsert(
    conn: &mut AnyConnection,
    environment_id: i64,
    server: &ServerName,
    def: &ToolDef,
    status: ToolStatus,
    now: i64,
) -> Result<ToolRecord> {
    let server_id = ensure_server(conn, environment_id, server, now).await?;
    let definition_hash = def.canonical_hash();
    // `updated_at` moves only when the definition's meaning or the status changed, so
    // re-registering an unchanged tool leaves it as it was.
    let row = sqlx::query(
        "INSERT INTO tools (environment_id, server_id, name, definition, definition_hash, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (environment_id, server_id, name) DO UPDATE SET \
           definition = excluded.definition, \
           definition_hash = excluded.definition_hash, \
           status = excluded.status, \
           updated_at = CASE WHEN tools.definition_hash = excluded.definition_hash AND tools.status = excluded.status \
                        THEN tools.updated_at ELSE excluded.updated_at END \
         RETURNING id, created_at, updated_at",
    )
    .bind(environment_id)
    .bind(server_id)
    .bind(def.name.as_str())
    .bind(def.to_json().to_string())
    .bind(definition_hash.as_str())
    .bind(status.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    crate::environments::bump_revision(conn, crate::environments::Owner::Environment(environment_id)).await?;
    let environment: String = sqlx::query_scalar("SELECT name FROM environments WHERE id = $1")
        .bind(environment_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(ToolRecord {
        id: int(&row, "id")?,
        environment: EnvironmentName::parse(&environment).map_err(|error| StoreError::Corrupt {
            table: "environments",
            reason: format!("name '{environment}': {error}"),
        })?,
        server: server.clone(),
        def: def.clone(),
        definition_hash,
        status,
        created_at: int(&row, "created_at")?,
        updated_at: int(&row, "updated_at")?,
    })
}

/// Fails with `RowNotFound` when there is no such tool.
pub(crate) async fn set_status(conn: &mut AnyConnection, tool_id: i64, status: ToolStatus, now: i64) -> Result<()> {
    let done = sqlx::query("UPDATE tools SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(tool_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(sqlx::Error::RowNotFound.into());
    }
    crate::environments::bump_revision(conn, crate::environments::Owner::Tool(tool_id)).await?;
    Ok(())
}

/// The status and definition hash of each registered tool of one server, by name: what
/// a check compares a definition with, without reading and parsing the definitions.
pub(crate) async fn definition_hashes(
    conn: &mut AnyConnection,
    environment_id: i64,
    server: &ServerName,
) -> Result<HashMap<ToolName, (ToolStatus, String)>> {
    let mut sql = Sql::new(
        "SELECT t.name, t.status, t.definition_hash FROM servers s JOIN tools t ON t.server_id = s.id \
         WHERE s.environment_id = ",
    );
    sql.bind(environment_id);
    sql.push(" AND s.name = ").bind(server.as_str());
    let mut found = HashMap::new();
    for row in sql.build().fetch_all(&mut *conn).await? {
        found.insert(
            name_column(&row, "name", "tools", ToolName::parse)?,
            (enum_column(&row, "status", "tools")?, text(&row, "definition_hash")?),
        );
    }
    Ok(found)
}

/// Every tool id of an environment, by key (whatever the tool's status).
pub(crate) async fn all_ids(conn: &mut AnyConnection, environment_id: i64) -> Result<HashMap<ToolKey, i64>> {
    let mut sql = Sql::new(
        "SELECT t.id, s.name AS server, t.name FROM tools t JOIN servers s ON s.id = t.server_id \
         WHERE t.environment_id = ",
    );
    sql.bind(environment_id);
    let mut found = HashMap::new();
    for row in sql.build().fetch_all(&mut *conn).await? {
        let key = ToolKey {
            server: name_column(&row, "server", "tools", ServerName::parse)?,
            name: name_column(&row, "name", "tools", ToolName::parse)?,
        };
        found.insert(key, int(&row, "id")?);
    }
    Ok(found)
}

/// Row ids of those of `keys` registered in the environment; unregistered keys are absent.
pub(crate) async fn resolve_ids<'k>(
    conn: &mut AnyConnection,
    environment_id: i64,
    keys: impl IntoIterator<Item = &'k ToolKey>,
) -> Result<HashMap<ToolKey, i64>> {
    let mut wanted: Vec<&ToolKey> = keys.into_iter().collect();
    wanted.sort();
    wanted.dedup();
    if wanted.len() > CHUNK {
        // Most of a large environment (an analysis): one pass over its tools beats many
        // lookups of a few hundred keys each.
        let all = all_ids(conn, environment_id).await?;
        return Ok(wanted.into_iter().filter_map(|key| all.get(key).map(|id| (key.clone(), *id))).collect());
    }
    let mut found: HashMap<(String, String), i64> = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(CHUNK / 2) {
        // The keys as a table, joined through the unique (environment, name) and
        // (environment, server, name) indexes: one index probe per key. CROSS JOIN fixes
        // that order for SQLite, whose planner (3.51) otherwise scans the environment's
        // tools and the keys for each (136 ms instead of 0.8 ms for 200 keys at 20k tools).
        let mut sql = Sql::new("SELECT t.id, s.name AS server, t.name FROM (VALUES ");
        for (index, key) in chunk.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(key.server.as_str()).push(", ").bind(key.name.as_str()).push(")");
        }
        sql.push(") AS k CROSS JOIN servers s CROSS JOIN tools t WHERE s.environment_id = ").bind(environment_id);
        sql.push(" AND s.name = k.column1 AND t.environment_id = s.environment_id");
        sql.push(" AND t.server_id = s.id AND t.name = k.column2");
        for row in sql.build().fetch_all(&mut *conn).await? {
            found.insert((text(&row, "server")?, text(&row, "name")?), int(&row, "id")?);
        }
    }
    Ok(wanted
        .into_iter()
        .filter_map(|key| {
            found.get(&(key.server.as_str().to_owned(), key.name.as_str().to_owned())).map(|id| (key.clone(), *id))
        })
        .collect())
}
