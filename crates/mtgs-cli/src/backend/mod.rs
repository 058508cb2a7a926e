//! One interface over the two ways a command reaches the registry: the service in this
//! process (local mode) or a server's REST API (`--url`). Both return `mtgs_api` types,
//! so the printing code, the JSON output and the exit codes are shared.

mod local;
mod remote;

use mtgs_api::{
    AnalysisRun, ApiKey, ApiKeyList, Approval, ApprovalList, CheckResponse, Conflict, ConflictList, CreatedApiKey,
    Health, McpServer, McpServerList, Me, RecommendationList, RegisterResponse, Simulation, SyncReport, ToolList,
};
use mtgs_core::{ConflictStatus, Connection, EnvironmentName, ParsedTool, Role, ServerName};
use mtgs_service::{ApprovalFilter, ConflictFilter, Progress, ToolFilter};

pub use self::local::{Local, local_operator};
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

    pub async fn recommendations(&self, id: i64) -> Result<RecommendationList, Failure> {
        match self {
            Backend::Local(local) => local.recommendations(id).await,
            Backend::Remote(remote) => remote.recommendations(id).await,
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

    /// Opens the local service without loading models (keys, approvals), or the remote.
    pub async fn connect_without_models(target: &Target) -> Result<Backend, Failure> {
        Ok(match target {
            Target::Local(settings) => Backend::Local(Local::open_without_models(settings).await?),
            Target::Remote { url, token } => Backend::Remote(Remote::new(url, token.clone())?),
        })
    }

    pub async fn create_key(&self, name: Option<&str>, role: Role) -> Result<CreatedApiKey, Failure> {
        match self {
            Backend::Local(local) => local.create_key(name, role).await,
            Backend::Remote(remote) => remote.create_key(name, role).await,
        }
    }

    pub async fn keys(&self) -> Result<ApiKeyList, Failure> {
        match self {
            Backend::Local(local) => local.keys().await,
            Backend::Remote(remote) => remote.keys().await,
        }
    }

    pub async fn revoke_key(&self, id: i64) -> Result<ApiKey, Failure> {
        match self {
            Backend::Local(local) => local.revoke_key(id).await,
            Backend::Remote(remote) => remote.revoke_key(id).await,
        }
    }

    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<ApprovalList, Failure> {
        match self {
            Backend::Local(local) => local.approvals(filter).await,
            Backend::Remote(remote) => remote.approvals(filter).await,
        }
    }

    pub async fn approval(&self, id: i64) -> Result<Approval, Failure> {
        match self {
            Backend::Local(local) => local.approval(id).await,
            Backend::Remote(remote) => remote.approval(id).await,
        }
    }

    /// Approves (`approve`) or rejects a pending request.
    pub async fn decide(&self, id: i64, approve: bool, comment: Option<&str>) -> Result<Approval, Failure> {
        match self {
            Backend::Local(local) => local.decide(id, approve, comment).await,
            Backend::Remote(remote) => remote.decide(id, approve, comment).await,
        }
    }

    pub async fn add_server(
        &self,
        environment: &EnvironmentName,
        name: &ServerName,
        connection: &Connection,
    ) -> Result<McpServer, Failure> {
        match self {
            Backend::Local(local) => local.add_server(environment, name, connection).await,
            Backend::Remote(remote) => remote.add_server(environment, name, connection).await,
        }
    }

    pub async fn servers(&self, environment: Option<&EnvironmentName>) -> Result<McpServerList, Failure> {
        match self {
            Backend::Local(local) => local.servers(environment).await,
            Backend::Remote(remote) => remote.servers(environment).await,
        }
    }

    pub async fn server(&self, id: i64) -> Result<McpServer, Failure> {
        match self {
            Backend::Local(local) => local.server(id).await,
            Backend::Remote(remote) => remote.server(id).await,
        }
    }

    pub async fn sync(&self, id: i64) -> Result<SyncReport, Failure> {
        match self {
            Backend::Local(local) => local.sync(id).await,
            Backend::Remote(remote) => remote.sync(id).await,
        }
    }

    pub async fn me(&self) -> Result<Me, Failure> {
        match self {
            Backend::Local(local) => Ok(local.me()),
            Backend::Remote(remote) => remote.me().await,
        }
    }
}
