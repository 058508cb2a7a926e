//! Local mode: the service over the database in the data directory, in this process.

use anyhow::Context as _;
use mtgs_api::{
    AnalysisRun, ApiKey, ApiKeyList, Approval, ApprovalList, CheckResponse, Conflict, ConflictList, CreatedApiKey,
    Health, McpServer, McpServerList, Me, RegisterResponse, Simulation, SyncReport, ToolList,
};
use mtgs_core::{ConflictStatus, Connection, EnvironmentName, Principal, Role, ServerName};
use mtgs_server::convert;
use mtgs_service::{ApprovalFilter, ConflictFilter, Progress, Service, ServiceError, ToolBatch, ToolFilter};

use super::Batch;
use crate::env_vars;
use crate::failure::Failure;
use crate::settings::LocalSettings;

#[derive(Debug)]
pub struct Local {
    service: Service,
}

/// The same code, message and exit code the REST API would give.
fn failure(error: ServiceError) -> Failure {
    Failure::from_api(convert::api_error(&error))
}

impl Local {
    pub async fn open(settings: &LocalSettings) -> Result<Local, Failure> {
        Self::open_with(settings, settings.service_settings()?).await
    }

    /// The service without stages 3 and 4, for commands that detect nothing (keys,
    /// approvals, the audit log): no model is loaded.
    pub async fn open_without_models(settings: &LocalSettings) -> Result<Local, Failure> {
        let mut service = settings.service.clone();
        service.semantic = None;
        service.behavioural = None;
        Self::open_with(settings, service).await
    }

    async fn open_with(settings: &LocalSettings, service: mtgs_service::ServiceSettings) -> Result<Local, Failure> {
        if let Some(dir) = &settings.data_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))
                .map_err(Failure::unavailable)?;
        }
        let service = Service::open(&service)
            .await
            .with_context(|| format!("cannot open the database {}", settings.service.database_url))
            .map_err(Failure::unavailable)?;
        Ok(Local { service: service.acting_as(local_operator()) })
    }

    pub async fn check(&self, batch: Batch) -> Result<CheckResponse, Failure> {
        let outcome = self.service.check(tool_batch(&batch)).await.map_err(failure)?;
        Ok(convert::check_response(&batch.environment, &outcome))
    }

    pub async fn register(&self, batch: Batch) -> Result<RegisterResponse, Failure> {
        let outcome = self.service.register(tool_batch(&batch)).await.map_err(failure)?;
        convert::register_response(&batch.environment, &outcome).map_err(Failure::from_api)
    }

    pub async fn tools(&self, filter: &ToolFilter) -> Result<ToolList, Failure> {
        let tools = self.service.tools(filter).await.map_err(failure)?;
        Ok(ToolList { tools: tools.iter().map(mtgs_api::Tool::from).collect(), next_offset: None })
    }

    pub async fn conflicts(
        &self,
        environment: &EnvironmentName,
        filter: &ConflictFilter,
    ) -> Result<ConflictList, Failure> {
        let conflicts = self.service.conflicts(environment, filter).await.map_err(failure)?;
        Ok(ConflictList { conflicts: conflicts.iter().map(Conflict::from).collect(), next_offset: None })
    }

    pub async fn conflict(&self, id: i64) -> Result<Conflict, Failure> {
        Ok(Conflict::from(&self.service.conflict(id).await.map_err(failure)?))
    }

    pub async fn recommendations(&self, id: i64) -> Result<mtgs_api::RecommendationList, Failure> {
        let recommendations = self.service.recommendations(id).await.map_err(failure)?;
        Ok(mtgs_api::RecommendationList { conflict: id, recommendations })
    }

    pub async fn set_conflict_status(&self, id: i64, status: ConflictStatus) -> Result<Conflict, Failure> {
        Ok(Conflict::from(&self.service.set_conflict_status(id, status).await.map_err(failure)?))
    }

    pub async fn analyze(
        &self,
        environment: &EnvironmentName,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<AnalysisRun, Failure> {
        let job = self.service.analyze_now(environment, progress).await.map_err(failure)?;
        Ok(AnalysisRun::from(&job))
    }

    pub async fn simulate(&self, request: &mtgs_service::SimulationRequest) -> Result<Simulation, Failure> {
        let job = self.service.simulate_now(request, &|_| {}).await.map_err(failure)?;
        Ok(Simulation::from(&job))
    }

    pub async fn health(&self, environment: &EnvironmentName) -> Result<Health, Failure> {
        Ok(Health::from(&self.service.health(environment).await.map_err(failure)?))
    }

    pub async fn create_key(&self, name: Option<&str>, role: Role) -> Result<CreatedApiKey, Failure> {
        let (key, secret) = self.service.create_api_key(name, role).await.map_err(failure)?;
        Ok(CreatedApiKey { key: secret.expose().to_owned(), record: ApiKey::from(&key) })
    }

    pub async fn keys(&self) -> Result<ApiKeyList, Failure> {
        let keys = self.service.api_keys().await.map_err(failure)?;
        Ok(ApiKeyList { keys: keys.iter().map(ApiKey::from).collect() })
    }

    pub async fn revoke_key(&self, id: i64) -> Result<ApiKey, Failure> {
        Ok(ApiKey::from(&self.service.revoke_api_key(id).await.map_err(failure)?))
    }

    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<ApprovalList, Failure> {
        let approvals = self.service.approvals(filter).await.map_err(failure)?;
        Ok(ApprovalList { approvals: approvals.iter().map(Approval::from).collect() })
    }

    pub async fn approval(&self, id: i64) -> Result<Approval, Failure> {
        Ok(Approval::from(&self.service.approval(id).await.map_err(failure)?))
    }

    pub async fn decide(&self, id: i64, approve: bool, comment: Option<&str>) -> Result<Approval, Failure> {
        let decided = if approve {
            self.service.approve(id, comment).await
        } else {
            self.service.reject(id, comment.unwrap_or_default()).await
        };
        Ok(Approval::from(&decided.map_err(failure)?))
    }

    pub async fn add_server(
        &self,
        environment: &EnvironmentName,
        name: &ServerName,
        connection: &Connection,
    ) -> Result<McpServer, Failure> {
        Ok(McpServer::from(&self.service.add_server(environment, name, connection).await.map_err(failure)?))
    }

    pub async fn servers(&self, environment: Option<&EnvironmentName>) -> Result<McpServerList, Failure> {
        let servers = self.service.mcp_servers(environment).await.map_err(failure)?;
        Ok(McpServerList { servers: servers.iter().map(McpServer::from).collect() })
    }

    pub async fn server(&self, id: i64) -> Result<McpServer, Failure> {
        Ok(McpServer::from(&self.service.mcp_server(id).await.map_err(failure)?))
    }

    pub async fn sync(&self, id: i64) -> Result<SyncReport, Failure> {
        self.service.sync_server(id).await.map_err(failure)
    }

    pub fn me(&self) -> Me {
        Me::from(&local_operator())
    }
}

/// Who works on the data directory without `--url`: its operator, with full rights, as
/// `local:$USER` in the audit log.
pub fn local_operator() -> Principal {
    let user = [env_vars::USER, env_vars::LOGNAME]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|user| !user.is_empty()))
        .unwrap_or_else(|| "operator".to_owned());
    Principal::local(&user)
}

fn tool_batch(batch: &Batch) -> ToolBatch {
    ToolBatch { environment: batch.environment.clone(), server: batch.server.clone(), tools: batch.tools.clone() }
}
