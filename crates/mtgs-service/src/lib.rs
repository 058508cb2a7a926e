//! The use cases of mtgs — check, register, list, triage, analyse, health — and the job
//! runner. The REST API, the CLI's local mode and (later) the MCP server all call this
//! layer, so a rule enforced here holds on every surface. No HTTP here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mtgs_core::{
    Conflict, ConflictStatus, EnvironmentName, Finding, HealthReport, InputError, Job, Lint, ParsedTool, ServerName,
    ToolName, ToolRecord, ToolStatus, Verdict,
};
pub use mtgs_store::{ConflictFilter, ToolFilter};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The caller sent something invalid; names the field.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A read named something that does not exist (`environment 'prod'`).
    #[error("{what} '{name}' does not exist")]
    NotFound { what: &'static str, name: String },
    #[error(transparent)]
    Store(#[from] mtgs_store::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
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
}

/// Progress of a long operation: `done` of `total` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// The service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<()>,
}

#[allow(unused_variables, clippy::unused_async)]
impl Service {
    /// Opens the database (applying migrations).
    pub async fn open(settings: &ServiceSettings) -> Result<Self> {
        unimplemented!()
    }

    /// Readiness: the database answers.
    pub async fn readiness(&self) -> Result<()> {
        unimplemented!()
    }

    /// Runs the pipeline for each tool of the batch against the environment as it is
    /// (plus the batch's earlier tools). Writes nothing. An unknown environment is empty.
    pub async fn check(&self, batch: ToolBatch) -> Result<BatchOutcome> {
        unimplemented!()
    }

    /// Registers the batch with its conflicts in one transaction. A tool with a live
    /// CRITICAL or HIGH conflict gets `pending_approval`, otherwise `active`.
    pub async fn register(&self, batch: ToolBatch) -> Result<BatchOutcome> {
        unimplemented!()
    }

    /// Registered tools. A named environment that does not exist is `NotFound`.
    pub async fn tools(&self, filter: &ToolFilter) -> Result<Vec<ToolRecord>> {
        unimplemented!()
    }

    /// Tracked conflicts of an environment (`NotFound` if it does not exist).
    pub async fn conflicts(&self, environment: &EnvironmentName, filter: &ConflictFilter) -> Result<Vec<Conflict>> {
        unimplemented!()
    }

    pub async fn conflict(&self, id: i64) -> Result<Conflict> {
        unimplemented!()
    }

    /// Sets a conflict's triage status (`NotFound` if there is no such conflict).
    pub async fn set_conflict_status(&self, id: i64, status: ConflictStatus) -> Result<Conflict> {
        unimplemented!()
    }

    /// Queues an all-pairs analysis of an environment (`NotFound` if it does not exist);
    /// a job runner picks it up.
    pub async fn start_analysis(&self, environment: &EnvironmentName) -> Result<Job> {
        unimplemented!()
    }

    /// Queues an analysis and runs it in this process, reporting progress; for the CLI's
    /// local mode.
    pub async fn analyze_now(
        &self,
        environment: &EnvironmentName,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Job> {
        unimplemented!()
    }

    /// A job by id (`NotFound` if there is none).
    pub async fn job(&self, id: i64) -> Result<Job> {
        unimplemented!()
    }

    /// Health score and counts of an environment (`NotFound` if it does not exist).
    pub async fn health(&self, environment: &EnvironmentName) -> Result<HealthReport> {
        unimplemented!()
    }

    /// Claims and runs queued jobs until `shutdown` completes.
    pub async fn run_jobs(&self, shutdown: impl Future<Output = ()> + Send) {
        unimplemented!()
    }

    /// Claims and runs one job if there is one; returns it finished. For tests.
    pub async fn run_next_job(&self) -> Result<Option<Job>> {
        unimplemented!()
    }
}
