//! The audit log table: entries appended in the transaction of the change they record,
//! numbered and chained here; read back in order for export and verification.

use mtgs_core::{AuditEntry, AuditEvent, EnvironmentName, GENESIS_HASH, NewAuditEntry, chain_hash};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::Result;
use crate::rows::{BULK_ROWS, Sql, enum_column, int, optional_text, parse_json, text};

/// Which entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Milliseconds since the epoch, inclusive.
    pub from: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    pub to: Option<i64>,
    pub event: Option<AuditEvent>,
    /// Only entries after this sequence number (a cursor for reading page by page).
    pub after: Option<i64>,
    /// At most this many entries.
    pub limit: Option<u32>,
}

/// Appends `entries` after the last one, chaining each to the one before.
pub(crate) async fn append(conn: &mut AnyConnection, entries: &[NewAuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    let (mut seq, mut previous) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
    // The chain is computed here, in order; the rows go in multi-row inserts.
    for chunk in entries.chunks(BULK_ROWS) {
        let mut sql = Sql::new(
            "INSERT INTO audit_log (seq, at, actor, event, environment, subject, before, after, prev_hash, hash) VALUES ",
        );
        for (index, entry) in chunk.iter().enumerate() {
            seq += 1;
            let hash = chain_hash(seq, &previous, entry);
            let json = |value: &Value| (!value.is_null()).then(|| value.to_string());
            if index > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(seq).push(", ").bind(entry.at).push(", ").bind(entry.actor.as_str());
            sql.push(", ").bind(entry.event.as_str());
            sql.push(", ").bind(entry.environment.as_ref().map(|name| name.as_str().to_owned()));
            sql.push(", ").bind(entry.subject.as_str()).push(", ").bind(json(&entry.before));
            sql.push(", ").bind(json(&entry.after)).push(", ").bind(previous.as_str());
            sql.push(", ").bind(hash.as_str()).push(")");
            previous = hash;
        }
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry> {
    let json = |column: &str| -> Result<Value> {
        match optional_text(row, column)? {
            Some(raw) => parse_json(&raw, column, "audit_log"),
            None => Ok(Value::Null),
        }
    };
    let environment = match optional_text(row, "environment")? {
        Some(name) => EnvironmentName::parse(&name).ok(),
        None => None,
    };
    Ok(AuditEntry {
        seq: int(row, "seq")?,
        entry: NewAuditEntry {
            at: int(row, "at")?,
            actor: text(row, "actor")?,
            event: enum_column(row, "event", "audit_log")?,
            environment,
            subject: text(row, "subject")?,
            before: json("before")?,
            after: json("after")?,
        },
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

/// Entries matching `filter`, in chain order.
pub(crate) async fn read(conn: &mut AnyConnection, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
    let mut sql = Sql::new(
        "SELECT seq, at, actor, event, environment, subject, before, after, prev_hash, hash FROM audit_log WHERE 1 = 1",
    );
    if let Some(from) = filter.from {
        sql.push(" AND at >= ").bind(from);
    }
    if let Some(to) = filter.to {
        sql.push(" AND at < ").bind(to);
    }
    if let Some(event) = filter.event {
        sql.push(" AND event = ").bind(event.as_str());
    }
    if let Some(after) = filter.after {
        sql.push(" AND seq > ").bind(after);
    }
    sql.push(" ORDER BY seq");
    if let Some(limit) = filter.limit {
        sql.push(" LIMIT ").bind(i64::from(limit));
    }
    sql.build().fetch_all(&mut *conn).await?.iter().map(entry_from_row).collect()
}
