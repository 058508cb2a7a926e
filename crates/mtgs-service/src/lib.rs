//! The use cases of mtgs — check, register, list, triage, analyse, health — and the job
//! runner. The REST API, the CLI's local mode and (later) the MCP server all call this
//! layer, so a rule enforced here holds on every surface. No HTTP here.

mod analysis;
mod audit;
mod batch;
pub mod eval;
mod registry;
mod semantic;
mod simulation;

use std::time::Duration;

pub use audit::UNAUTHENTICATED;
use mtgs_core::{
    ConflictStatus, EnvironmentName, Finding, InputError, Lint, ParsedTool, ServerName, ToolName, ToolStatus, Verdict,
};
pub use mtgs_store::{AuditFilter, ConflictFilter, Store, StoreError, ToolFilter, database_url_in};

pub use registry::Service;
pub use semantic::SemanticSettings;
pub use simulation::{BehaviouralSettings, SimulationRequest};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The caller sent something invalid; names the field.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A read named something that does not exist (`environment 'prod'`).
    #[error("{what} '{name}' does not exist")]
    NotFound { what: Resource, name: String },
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

/// What a `NotFound` did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Environment,
    Conflict,
    Job,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Environment => "environment",
            Resource::Conflict => "conflict",
            Resource::Job => "job",
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
}

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
}

/// The outcome of a check or a registration.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// `block` when a live CRITICAL or HIGH conflict involves a tool of the batch.
    pub verdict: Verdict,
    pub tools: Vec<ToolOutcome>,
    /// What a stage could not do (stage 3 without a model, say), once each.
    pub diagnostics: Vec<mtgs_detect::Diagnostic>,
}

/// Progress of a long operation: `done` of `total` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}
