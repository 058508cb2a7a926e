//! Local mode: the service over the database in the data directory, in this process.

use anyhow::Context as _;
use mtgs_api::{AnalysisRun, CheckResponse, Conflict, ConflictList, Health, RegisterResponse, Simulation, ToolList};
use mtgs_core::{ConflictStatus, EnvironmentName};
use mtgs_server::convert;
use mtgs_service::{ConflictFilter, Progress, Service, ServiceError, ToolBatch, ToolFilter};

use super::Batch;
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
        if let Some(dir) = &settings.data_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))
                .map_err(Failure::unavailable)?;
        }
        let service = Service::open(&settings.service_settings()?)
            .await
            .with_context(|| format!("cannot open the database {}", settings.service.database_url))
            .map_err(Failure::unavailable)?;
        Ok(Local { service })
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
        Ok(ToolList { tools: tools.iter().map(mtgs_api::Tool::from).collect() })
    }

    pub async fn conflicts(
        &self,
        environment: &EnvironmentName,
        filter: &ConflictFilter,
    ) -> Result<ConflictList, Failure> {
        let conflicts = self.service.conflicts(environment, filter).await.map_err(failure)?;
        Ok(ConflictList { conflicts: conflicts.iter().map(Conflict::from).collect() })
    }

    pub async fn conflict(&self, id: i64) -> Result<Conflict, Failure> {
        Ok(Conflict::from(&self.service.conflict(id).await.map_err(failure)?))
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
}

fn tool_batch(batch: &Batch) -> ToolBatch {
    ToolBatch { environment: batch.environment.clone(), server: batch.server.clone(), tools: batch.tools.clone() }
}
