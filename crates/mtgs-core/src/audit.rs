//! The audit log's values: events, entries, the hash chain that makes them
//! tamper-evident, and their ArcSight CEF rendering for SIEMs.
//!
//! Each entry holds the hash of the previous one and its own hash over the canonical JSON
//! of its sequence number, the previous hash and its fields, so editing, deleting,
//! inserting or reordering a row breaks the chain at that row. (Rewriting the whole chain
//! from a point on is only caught against a head hash kept elsewhere, such as a SIEM that
//! received the export: `verify` reports the head for that comparison.)

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::conflict::named_enum;
use crate::{EnvironmentName, canonical_json, sha256_hex};

named_enum! {
    /// What happened.
    pub enum AuditEvent {
        ToolRegistered = "TOOL_REGISTERED",
        ToolUpdated = "TOOL_UPDATED",
        ToolDeleted = "TOOL_DELETED",
        ConflictDetected = "CONFLICT_DETECTED",
        ConflictStatusChanged = "CONFLICT_STATUS_CHANGED",
        ApprovalRequested = "APPROVAL_REQUESTED",
        ApprovalApproved = "APPROVAL_APPROVED",
        ApprovalRejected = "APPROVAL_REJECTED",
        ApprovalExpired = "APPROVAL_EXPIRED",
        AnalysisRunStarted = "ANALYSIS_RUN_STARTED",
        AnalysisRunCompleted = "ANALYSIS_RUN_COMPLETED",
        UserLogin = "USER_LOGIN",
        ApiKeyCreated = "API_KEY_CREATED",
        ApiKeyRevoked = "API_KEY_REVOKED",
        ServerRegistered = "SERVER_REGISTERED",
        ServerSynced = "SERVER_SYNCED",
    }
}

impl AuditEvent {
    /// A human name for CEF's `Name` field.
    pub fn title(self) -> &'static str {
        match self {
            AuditEvent::ToolRegistered => "Tool registered",
            AuditEvent::ToolUpdated => "Tool updated",
            AuditEvent::ToolDeleted => "Tool deleted",
            AuditEvent::ConflictDetected => "Conflict detected",
            AuditEvent::ConflictStatusChanged => "Conflict status changed",
            AuditEvent::ApprovalRequested => "Approval requested",
            AuditEvent::ApprovalApproved => "Approval approved",
            AuditEvent::ApprovalRejected => "Approval rejected",
            AuditEvent::ApprovalExpired => "Approval expired",
            AuditEvent::AnalysisRunStarted => "Analysis run started",
            AuditEvent::AnalysisRunCompleted => "Analysis run completed",
            AuditEvent::UserLogin => "User login",
            AuditEvent::ApiKeyCreated => "API key created",
            AuditEvent::ApiKeyRevoked => "API key revoked",
            AuditEvent::ServerRegistered => "MCP server registered",
            AuditEvent::ServerSynced => "MCP server synced",
        }
    }

    /// CEF severity, 0 (lowest) to 10.
    pub fn cef_severity(self) -> u8 {
        match self {
            AuditEvent::ConflictDetected | AuditEvent::ApprovalRequested | AuditEvent::ApprovalRejected => 6,
            AuditEvent::ToolDeleted | AuditEvent::ApprovalExpired | AuditEvent::ApiKeyRevoked => 5,
            AuditEvent::ApprovalApproved | AuditEvent::ApiKeyCreated | AuditEvent::ConflictStatusChanged => 4,
            _ => 3,
        }
    }
}

/// An entry to append: the store numbers and chains it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// Who acted (a principal's name; `local-operator` for the CLI's local mode).
    pub actor: String,
    pub event: AuditEvent,
    pub environment: Option<EnvironmentName>,
    /// What it happened to (`jira/create_task`, `conflict 12`, `analysis run 3`).
    pub subject: String,
    /// The state before and after, where the event changes one (`Null` otherwise).
    pub before: Value,
    pub after: Value,
}

/// A stored entry, numbered and chained.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// 1, 2, 3, … with no gaps.
    pub seq: i64,
    pub entry: NewAuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The previous hash of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of entry `seq` following `prev_hash`: SHA-256 of the canonical JSON of every
/// field.
pub fn chain_hash(seq: i64, prev_hash: &str, entry: &NewAuditEntry) -> String {
    sha256_hex(&canonical_json(&json!({
        "seq": seq,
        "prev_hash": prev_hash,
        "at": entry.at,
        "actor": entry.actor,
        "event": entry.event.as_str(),
        "environment": entry.environment.as_ref().map(EnvironmentName::as_str),
        "subject": entry.subject,
        "before": entry.before,
        "after": entry.after,
    })))
}

/// Where a chain stops holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first entry (by position read) that does not follow from the one before.
    pub seq: i64,
    pub reason: String,
}

/// The outcome of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: u64,
    /// The last entry's hash: compare it with a copy kept elsewhere.
    pub head: String,
    pub broken: Option<ChainBreak>,
}

/// Checks entries read in `seq` order: numbering without gaps from 1, each previous hash
/// equal to the hash before it, each hash recomputed from the entry.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> ChainReport {
    let mut previous = GENESIS_HASH.to_owned();
    let mut count = 0;
    for (expected_seq, entry) in (1_i64..).zip(entries) {
        count += 1;
        let broken = |reason: String| ChainReport {
            entries: count,
            head: previous.clone(),
            broken: Some(ChainBreak { seq: entry.seq, reason }),
        };
        if entry.seq != expected_seq {
            return broken(format!(
                "expected entry {expected_seq} here, found {} (deleted, inserted or reordered)",
                entry.seq
            ));
        }
        if entry.prev_hash != previous {
            return broken("its previous-hash does not match the entry before it".to_owned());
        }
        if chain_hash(entry.seq, &entry.prev_hash, &entry.entry) != entry.hash {
            return broken("its contents do not match its hash (edited)".to_owned());
        }
        previous = entry.hash.clone();
    }
    ChainReport { entries: count, head: previous, broken: None }
}

/// The entry as one JSON object (the JSON-lines export).
pub fn audit_json(entry: &AuditEntry) -> Value {
    let e = &entry.entry;
    json!({
        "seq": entry.seq,
        "at": e.at,
        "actor": e.actor,
        "event": e.event.as_str(),
        "environment": e.environment.as_ref().map(EnvironmentName::as_str),
        "subject": e.subject,
        "before": e.before,
        "after": e.after,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    })
}

/// One ArcSight CEF line:
/// `CEF:0|MTGS|MCPToolGovernance|VERSION|EVENT|NAME|SEVERITY|EXTENSIONS`, header fields
/// with `\` and `|` escaped, extension values with `\`, `=` and line breaks escaped.
pub fn audit_cef(entry: &AuditEntry, version: &str) -> String {
    let e = &entry.entry;
    let mut extensions: Vec<(&str, String)> = vec![
        ("rt", e.at.to_string()),
        ("externalId", entry.seq.to_string()),
        ("suser", e.actor.clone()),
        ("cs1Label", "environment".to_owned()),
        ("cs1", e.environment.as_ref().map(|name| name.as_str().to_owned()).unwrap_or_default()),
        ("cs2Label", "subject".to_owned()),
        ("cs2", e.subject.clone()),
        ("cs3Label", "hash".to_owned()),
        ("cs3", entry.hash.clone()),
    ];
    if !e.before.is_null() {
        extensions.push(("cs4Label", "before".to_owned()));
        extensions.push(("cs4", e.before.to_string()));
    }
    if !e.after.is_null() {
        extensions.push(("cs5Label", "after".to_owned()));
        extensions.push(("cs5", e.after.to_string()));
    }
    let extensions: Vec<String> =
        extensions.into_iter().map(|(key, value)| format!("{key}={}", cef_extension_value(&value))).collect();
    format!(
        "CEF:0|MTGS|MCPToolGovernance|{}|{}|{}|{}|{}",
        cef_header(version),
        cef_header(e.event.as_str()),
        cef_header(e.event.title()),
        e.event.cef_severity(),
        extensions.join(" ")
    )
}

fn cef_header(value: &str) -> String {
    value.replace('\\', "\\\\").replace('|', "\\|")
}

fn cef_extension_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('=', "\\=").replace("\r\n", "\\n").replace('\n', "\\n").replace('\r', "\\r")
}

/// A parsed CEF line: the seven header fields after `CEF:0`, and the extensions, with
/// escapes undone. For checking exports, and for tools that read them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CefRecord {
    pub header: Vec<String>,
    pub extensions: Vec<(String, String)>,
}

/// Parses one CEF line as [`audit_cef`] writes it; `None` when it is not one.
pub fn parse_cef(line: &str) -> Option<CefRecord> {
    let rest = line.strip_prefix("CEF:0|")?;
    let mut header = Vec::new();
    let mut current = String::new();
    let mut chars = rest.chars();
    while header.len() < 6 {
        match chars.next()? {
            '\\' => current.push(chars.next()?),
            '|' => header.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    let extensions_text: String = chars.collect();
    // Keys are `\w+` followed by an unescaped `=`; a value runs to the next key.
    let mut extensions = Vec::new();
    let mut key: Option<String> = None;
    let mut value = String::new();
    let mut token = String::new();
    let mut iter = extensions_text.chars().peekable();
    while let Some(c) = iter.next() {
        match c {
            '\\' => {
                let escaped = iter.next()?;
                token.push(match escaped {
                    'n' => '\n',
                    'r' => '\r',
                    other => other,
                });
            }
            '=' => {
                // `token` holds "<previous value words> key": split off the key.
                let (before, new_key) = match token.rfind(' ') {
                    Some(space) => (token[..space].to_owned(), token[space + 1..].to_owned()),
                    None => (String::new(), token.clone()),
                };
                if let Some(previous) = key.take() {
                    value.push_str(&before);
                    extensions.push((previous, std::mem::take(&mut value)));
                }
                key = Some(new_key);
                token.clear();
            }
            c => token.push(c),
        }
    }
    if let Some(previous) = key {
        value.push_str(&token);
        extensions.push((previous, value));
    }
    Some(CefRecord { header, extensions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, prev: &str, subject: &str) -> AuditEntry {
        let entry = NewAuditEntry {
            at: 1_700_000_000_000 + seq,
            actor: "alice".to_owned(),
            event: AuditEvent::ToolRegistered,
            environment: EnvironmentName::parse("prod").ok(),
            subject: subject.to_owned(),
            before: Value::Null,
            after: json!({"status": "active"}),
        };
        let hash = chain_hash(seq, prev, &entry);
        AuditEntry { seq, entry, prev_hash: prev.to_owned(), hash }
    }

    fn chain(length: i64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for seq in 1..=length {
            let prev = entries.last().map_or(GENESIS_HASH.to_owned(), |last| last.hash.clone());
            entries.push(entry(seq, &prev, &format!("jira/tool_{seq}")));
        }
        entries
    }

    #[test]
    fn an_intact_chain_verifies_and_reports_its_head() {
        let entries = chain(4);
        let report = verify_chain(&entries);
        assert_eq!(report, ChainReport { entries: 4, head: entries[3].hash.clone(), broken: None });
    }

    #[test]
    fn edits_deletions_insertions_and_reorderings_break_the_chain_where_they_happen() {
        let mut edited = chain(4);
        edited[2].entry.subject = "jira/something_else".to_owned();
        assert_eq!(verify_chain(&edited).broken.map(|b| b.seq), Some(3));

        let mut deleted = chain(4);
        deleted.remove(1);
        assert_eq!(verify_chain(&deleted).broken.map(|b| b.seq), Some(3));

        let mut reordered = chain(4);
        reordered.swap(1, 2);
        assert_eq!(verify_chain(&reordered).broken.map(|b| b.seq), Some(3));

        // An inserted row renumbered and re-hashed by itself still breaks the next link.
        let mut inserted = chain(4);
        let forged = entry(3, &inserted[1].hash, "jira/forged");
        inserted.insert(2, forged);
        for (position, entry) in inserted.iter_mut().enumerate().skip(3) {
            entry.seq = position as i64 + 1;
        }
        assert_eq!(verify_chain(&inserted).broken.map(|b| b.seq), Some(4));
    }

    #[test]
    fn cef_lines_escape_and_parse_back_to_the_same_fields() {
        let mut tricky = entry(1, GENESIS_HASH, "team|a=b\\c\nsecond line");
        tricky.entry.actor = "ci|bot=1".to_owned();
        tricky.hash = chain_hash(1, GENESIS_HASH, &tricky.entry);
        let line = audit_cef(&tricky, "0.1.0|beta");
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("CEF:0|MTGS|MCPToolGovernance|0.1.0\\|beta|TOOL_REGISTERED|Tool registered|3|"),
            "{line}"
        );
        let parsed = parse_cef(&line).expect("parses");
        assert_eq!(
            parsed.header,
            ["MTGS", "MCPToolGovernance", "0.1.0|beta", "TOOL_REGISTERED", "Tool registered", "3"]
        );
        let field = |key: &str| parsed.extensions.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(field("cs2"), Some("team|a=b\\c\nsecond line"));
        assert_eq!(field("suser"), Some("ci|bot=1"));
        assert_eq!(field("cs1"), Some("prod"));
        assert_eq!(field("externalId"), Some("1"));
        assert_eq!(field("cs3"), Some(tricky.hash.as_str()));
        assert_eq!(field("cs5"), Some(r#"{"status":"active"}"#));
    }
}
