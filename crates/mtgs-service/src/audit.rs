//! What the service writes to the audit log, and reading it back: each state change's
//! entries are appended in the transaction that makes the change.

use mtgs_core::{
    AuditEntry, AuditEvent, ChainReport, Conflict, ConflictStatus, EnvironmentName, Finding, NewAuditEntry, Permission,
    ToolRecord, verify_chain,
};
use mtgs_store::AuditFilter;
use serde_json::{Value, json};

use crate::Result;
use crate::registry::Service;

pub(crate) fn entry(
    actor: &str,
    at: i64,
    event: AuditEvent,
    environment: Option<&EnvironmentName>,
    subject: String,
    before: Value,
    after: Value,
) -> NewAuditEntry {
    NewAuditEntry { at, actor: actor.to_owned(), event, environment: environment.cloned(), subject, before, after }
}

/// TOOL_REGISTERED for a tool created now, TOOL_UPDATED for one whose definition changed
/// (`previous_hash`: the live version's); nothing for a re-registration of the same
/// definition.
pub(crate) fn tool_entry(
    actor: &str,
    record: &ToolRecord,
    previous_hash: Option<&str>,
    now: i64,
) -> Option<NewAuditEntry> {
    let after = json!({"definition_hash": record.definition_hash, "status": record.status});
    let subject = format!("{}/{}", record.server, record.def.name);
    if record.created_at == now {
        return Some(entry(
            actor,
            now,
            AuditEvent::ToolRegistered,
            Some(&record.environment),
            subject,
            Value::Null,
            after,
        ));
    }
    let previous = previous_hash.filter(|hash| *hash != record.definition_hash)?;
    let before = json!({"definition_hash": previous});
    Some(entry(actor, now, AuditEvent::ToolUpdated, Some(&record.environment), subject, before, after))
}

/// CONFLICT_DETECTED for a conflict first seen now.
pub(crate) fn detected_entry(actor: &str, conflict: &Conflict, now: i64) -> Option<NewAuditEntry> {
    (conflict.first_seen_at == now)
        .then(|| opened_entry(actor, &conflict.environment, conflict.id, &conflict.finding, conflict.status, now))
}

/// CONFLICT_DETECTED for conflict `id`, opened now from `finding`.
pub(crate) fn opened_entry(
    actor: &str,
    environment: &EnvironmentName,
    id: i64,
    finding: &Finding,
    status: ConflictStatus,
    now: i64,
) -> NewAuditEntry {
    entry(
        actor,
        now,
        AuditEvent::ConflictDetected,
        Some(environment),
        format!("conflict {id}"),
        Value::Null,
        json!({
            "tool_a": finding.tool_a.to_string(),
            "tool_b": finding.tool_b.to_string(),
            "stage": finding.stage,
            "kind": finding.kind,
            "severity": finding.severity,
            "status": status,
        }),
    )
}

impl Service {
    /// Audit entries matching `filter`, in chain order.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.authorize(Permission::ReadAudit)?;
        Ok(self.store().audit(filter).await?)
    }

    /// Checks the whole chain: the first entry edited, deleted, inserted or reordered by
    /// hand, and the head hash to compare with a copy kept elsewhere.
    pub async fn verify_audit_log(&self) -> Result<ChainReport> {
        self.authorize(Permission::ReadAudit)?;
        Ok(verify_chain(&self.store().audit(&AuditFilter::default()).await?))
    }
}
