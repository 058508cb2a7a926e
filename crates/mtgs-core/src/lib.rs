//! Domain values of mtgs: what a tool, a conflict and an environment are, and the rules that
//! make an invalid one unrepresentable. Pure: no I/O, no async, no database or HTTP types.

mod audit;
mod conflict;
mod connection;
mod error;
mod governance;
mod health;
mod lint;
mod names;
mod probe;
mod recommendation;
mod records;
mod secret;
mod tool;

pub use audit::{
    AuditEntry, AuditEvent, CefRecord, ChainBreak, ChainReport, GENESIS_HASH, NewAuditEntry, audit_cef, audit_json,
    chain_hash, parse_cef, verify_chain,
};
pub use conflict::{Conflict, ConflictKind, ConflictStatus, Finding, Severity, StageId, Verdict};
pub use connection::{
    Connection, MASK, McpServer, RefusedTool, SyncRecord, SyncReport, SyncStatus, Transport, parse_host_config,
};
pub use error::InputError;
pub use governance::{
    API_KEY_PREFIX, API_KEY_RANDOM_BYTES, ApiKey, Approval, ApprovalStatus, AuthMethod, NewApiKey, Permission,
    Principal, Role, SYSTEM_ACTOR, api_key_hash, is_api_key,
};
pub use health::{HealthReport, SeverityCounts};
pub use lint::{Lint, LintLevel};
pub use names::{EnvironmentName, ServerName, ToolKey, ToolName};
pub use probe::{MAX_PROBE_CHARS, MAX_PROBES, MAX_TRIALS, Probe, check_trials, parse_probes};
pub use recommendation::{FixKind, NewConflict, Recommendation, RoutingShift, Verification};
pub use records::{Job, JobKind, JobStatus, ToolRecord, ToolStatus};
pub use secret::Secret;
pub use tool::{
    ParsedTool, ToolDef, canonical_json, fnv1a, json_type, limits, parse_tool_list, parse_tools, sha256_hex,
};
