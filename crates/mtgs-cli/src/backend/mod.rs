//! One interface over the two ways a command reaches the registry: the service in this
//! process (local mode) or a server's REST API (`--url`). Both return `mtgs_api` types,
//! so the printing code, the JSON output and the exit codes are shared.

mod local;
mod remote;

use mtgs_api::{AnalysisRun, CheckResponse, Conflict, ConflictList, Health, RegisterResponse, Simulation, ToolList};
use mtgs_core::{ConflictStatus, EnvironmentName, ParsedTool, ServerName};
use mtgs_service::{ConflictFilter, Progress, ToolFilter};

pub use self::local::Local;
pub use self::remote::Remote;
use crate::failure::Failure;
use crate::settings::Target;

#[derive(Debug)]
pub enum Backend {
    Local(Local),
    Remote(Remote),
}

/// A batch as the commands hold it: validated tools of one server for one environment.
#[derive(Debug)]
pub struct Batch {
    pub environment: EnvironmentName,
    pub server: ServerName,
    pub tools: Vec<ParsedTool>,
}

impl Backend {
    pub async fn connect(target: &Target) -> Result<Backend, Failure> {
        Ok(match target {
            Target::Local(settings) => Backend::Local(Local::open(settings).await?),
            Target::Remote { url, token } => Backend::Remote(Remote::new(url, token.clone())?),
        })
    }

    pub async fn check(&self, batch: Batch) -> Result<CheckResponse, Failure> {
        match self {
            Backend::Local(local) => local.check(batch).await,
            Backend::Remote(remote) => remote.check(batch).await,
        }
    }

    pub async fn register(&self, batch: Batch) -> Result<RegisterResponse, Failure> {
        match self {
            Backend::Local(local) => local.register(batch).await,
            Backend::Remote(remote) => remote.register(batch).await,
        }
    }

    pub async fn tools(&self, filter: &ToolFilter) -> Result<ToolList, Failure> {
        match self {
            Backend::Local(local) => local.tools(filter).await,
            Backend::Remote(remote) => remote.tools(filter).await,
        }
    }

    pub async fn conflicts(
        &self,
        environment: &EnvironmentName,
        filter: &ConflictFilter,
    ) -> Result<ConflictList, Failure> {
        match self {
            Backend::Local(local) => local.conflicts(environment, filter).await,
            Backend::Remote(remote) => remote.conflicts(environment, filter).await,
        }
    }

    pub async fn conflict(&self, id: i64) -> Result<Conflict, Failure> {
        match self {
            Backend::Local(local) => local.conflict(id).await,
            Backend::Remote(remote) => remote.conflict(id).await,
        }
    }

    pub async fn set_conflict_status(&self, id: i64, status: ConflictStatus) -> Result<Conflict, Failure> {
        match self {
            Backend::Local(local) => local.set_conflict_status(id, status).await,
            Backend::Remote(remote) => remote.set_conflict_status(id, status).await,
        }
    }

    /// Runs an analysis to the end, reporting progress as it goes: in this process
    /// locally; remotely by queueing it and polling the run.
    pub async fn analyze(
        &self,
        environment: &EnvironmentName,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<AnalysisRun, Failure> {
        match self {
            Backend::Local(local) => local.analyze(environment, progress).await,
            Backend::Remote(remote) => remote.analyze(environment, progress).await,
        }
    }

    /// Runs an impact simulation to the end: in this process locally; remotely by
    /// queueing it and polling.
    pub async fn simulate(&self, request: &mtgs_service::SimulationRequest) -> Result<Simulation, Failure> {
        match self {
            Backend::Local(local) => local.simulate(request).await,
            Backend::Remote(remote) => remote.simulate(request).await,
        }
    }

    pub async fn health(&self, environment: &EnvironmentName) -> Result<Health, Failure> {
        match self {
            Backend::Local(local) => local.health(environment).await,
            Backend::Remote(remote) => remote.health(environment).await,
        }
    }
}
