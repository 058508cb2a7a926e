//! The use cases of mtgs — check, register, list, triage, analyse, health — and the job
//! runner. The REST API, the CLI's local mode and (later) the MCP server all call this
//! layer, so a rule enforced here holds on every surface. No HTTP here.

mod analysis;
mod audit;
mod batch;
pub mod eval;
mod fresh;
mod governance;
mod recommend;
mod registry;
mod semantic;
mod simulation;
mod sync;

use std::time::Duration;

pub use governance::{MAX_COMMENT_CHARS, MAX_KEY_NAME_CHARS};
use mtgs_core::{
    ConflictStatus, EnvironmentName, Finding, InputError, Lint, ParsedTool, ServerName, ToolName, ToolStatus, Verdict,
};
pub use mtgs_store::{ApprovalFilter, AuditFilter, ConflictFilter, Store, StoreError, ToolFilter, database_url_in};

pub use registry::Service;
pub use semantic::SemanticSettings;
pub use simulation::{BehaviouralSettings, SimulationRequest};
pub use sync::{ListedTools, ToolSource};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The caller sent something invalid; names the field.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A read named something that does not exist (`environment 'prod'`).
    #[error("{what} '{name}' does not exist")]
    NotFound { what: Resource, name: String },
    /// No principal, or a credential that proves none.
    #[error("{0}")]
    Unauthenticated(String),
    /// The principal's role does not hold the permission the use case needs.
    #[error("role '{role}' may not {}; that takes {}", permission.describe(), roles_holding(*permission))]
    Forbidden { role: mtgs_core::Role, permission: mtgs_core::Permission },
    /// The requester of an approval tried to decide it.
    #[error("approval {id} was requested by {actor}, who cannot decide it; another reviewer must")]
    SelfApproval { id: i64, actor: String },
    /// The approval request was already decided (or expired, or superseded).
    #[error("approval {id} is {status}, not pending: it can no longer be decided")]
    NotPending { id: i64, status: mtgs_core::ApprovalStatus },
    #[error(transparent)]
    Store(#[from] mtgs_store::StoreError),
    /// Stage 3's model failed (a remote provider down, a model that cannot load).
    #[error(transparent)]
    Embedding(#[from] mtgs_detect::semantic::EmbedError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// Whether the database did not answer (or its file cannot be opened): the same
    /// request may succeed later. Other store errors are bugs or corruption.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ServiceError::Store(mtgs_store::StoreError::Database(_) | mtgs_store::StoreError::DataDir { .. })
        )
    }
}

fn roles_holding(permission: mtgs_core::Permission) -> String {
    let roles: Vec<&str> = permission.roles().into_iter().map(mtgs_core::Role::as_str).collect();
    match roles.as_slice() {
        [only] => format!("role {only}"),
        [rest @ .., last] => format!("role {} or {last}", rest.join(", ")),
        [] => "a role that does not exist".to_owned(),
    }
}

/// What a `NotFound` did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Environment,
    Conflict,
    Job,
    Approval,
    ApiKey,
    Server,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Environment => "environment",
            Resource::Conflict => "conflict",
            Resource::Job => "job",
            Resource::Approval => "approval",
            Resource::ApiKey => "API key",
            Resource::Server => "MCP server",
        })
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Resolved settings the service needs.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// `sqlite://PATH`.
    pub database_url: String,
    /// How often an idle job runner looks for work.
    pub job_poll_interval: Duration,
    /// How long a claimed job stays leased without a progress report before another
    /// runner may take it over.
    pub job_lease: Duration,
    /// Stage 3; `None` runs stages 1 and 2 only.
    pub semantic: Option<SemanticSettings>,
    /// Stage 4 and impact simulation; `None` turns both off.
    pub behavioural: Option<BehaviouralSettings>,
    /// How long an approval request stays pending before it expires.
    pub approval_ttl: Duration,
    /// Reaches live MCP servers for sync; `None`: this process does not sync.
    pub tool_source: Option<std::sync::Arc<dyn ToolSource>>,
    /// How often the job runner syncs each live server; `None`: only on request.
    pub sync_interval: Option<Duration>,
}

/// Approval requests expire after a week unless configured otherwise.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Tools one server publishes, to check or register in one environment.
#[derive(Debug, Clone)]
pub struct ToolBatch {
    pub environment: EnvironmentName,
    pub server: ServerName,
    pub tools: Vec<ParsedTool>,
}

/// A finding as the caller sees it: with the id and status of the tracked conflict when
/// there is one (always after a registration; after a check only for pairs already tracked).
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictView {
    pub id: Option<i64>,
    pub status: ConflictStatus,
    pub finding: Finding,
}

/// What happened to one tool of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub name: ToolName,
    /// The status it was registered with; `None` for a check.
    pub status: Option<ToolStatus>,
    pub lints: Vec<Lint>,
    pub conflicts: Vec<ConflictView>,
    /// The approval request that speaks for the tool (one was opened, or an earlier one
    /// decided it); `None` when the tool needs no approval, and for a check.
    pub approval: Option<i64>,
    /// Whether the tool's conflicts were accepted: it needs no approval decision (its
    /// definition was approved, or is active as it is). Such a tool does not block.
    pub accepted: bool,
}

/// The outcome of a check or a registration.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// `block` when a live CRITICAL or HIGH conflict involves a tool of the batch.
    pub verdict: Verdict,
    pub tools: Vec<ToolOutcome>,
    /// What a stage could not do (stage 3 without a model, say), once each.
    pub diagnostics: Vec<mtgs_detect::Diagnostic>,
    /// Time each detection stage took over the whole batch.
    pub timings: mtgs_detect::StageTimings,
}

/// Progress of a long operation: `done` of `total` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}
