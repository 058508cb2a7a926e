//! Stage 4's settings, and impact simulations as background jobs: a simulation's request
//! is stored with its job, a runner routes the environment's probes before and after the
//! candidates join it, and the report is the job's result.

use std::sync::Arc;

use mtgs_core::{EnvironmentName, Job, JobKind, Probe, ServerName, ToolDef};
use mtgs_detect::behavioural::BehaviouralThresholds;
use mtgs_detect::probes::ProbeSettings;
use mtgs_detect::routing::{LocalRouter, Router, RoutingSettings};
use mtgs_detect::simulation::SuppliedProbe;
use serde::{Deserialize, Serialize};

use crate::registry::Service;
use crate::{Progress, Result, ServiceError};

/// How stage 4 runs: the router, its routing settings, the probes written per tool, and
/// the confusion thresholds.
#[derive(Clone)]
pub struct BehaviouralSettings {
    pub router: Arc<dyn Router>,
    pub routing: RoutingSettings,
    pub probes: ProbeSettings,
    pub thresholds: BehaviouralThresholds,
}

impl BehaviouralSettings {
    /// The offline router with the calibrated settings.
    pub fn local() -> Self {
        Self::with_router(Arc::new(LocalRouter::new(&RoutingSettings::default())), RoutingSettings::default())
    }

    /// `router` with `routing`, default probes and thresholds.
    pub fn with_router(router: Arc<dyn Router>, routing: RoutingSettings) -> Self {
        Self { router, routing, probes: ProbeSettings::default(), thresholds: BehaviouralThresholds::default() }
    }
}

impl std::fmt::Debug for BehaviouralSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BehaviouralSettings")
            .field("router", &self.router.id())
            .field("routing", &self.routing)
            .field("probes", &self.probes)
            .field("thresholds", &self.thresholds)
            .finish()
    }
}

/// What to simulate: candidate tools of one server (none: route the probes against the
/// environment as it is), probes to route besides the generated ones, and trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationRequest {
    pub environment: EnvironmentName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerName>,
    #[serde(default)]
    pub tools: Vec<ToolDef>,
    #[serde(default)]
    pub probes: Vec<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
}

impl Service {
    /// Queues an impact simulation (`NotFound` if the environment does not exist); a job
    /// runner picks it up.
    pub async fn start_simulation(&self, request: &SimulationRequest) -> Result<Job> {
        self.authorize(mtgs_core::Permission::Simulate)?;
        self.existing_environment(&request.environment).await?;
        if !request.tools.is_empty() && request.server.is_none() {
            return Err(mtgs_core::InputError::new("server", "is required when tools are given").into());
        }
        let payload = serde_json::to_value(request)
            .map_err(|error| ServiceError::Internal(format!("simulation request not serialisable: {error}")))?;
        Ok(self.store().enqueue_job(JobKind::Simulation, &request.environment, Some(&payload), self.now()).await?)
    }

    /// Queues a simulation and runs it in this process; for the CLI's local mode.
    pub async fn simulate_now(
        &self,
        request: &SimulationRequest,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Job> {
        let job = self.start_simulation(request).await?;
        self.run_until(job, progress).await
    }

    /// Routes the request's probes before and after its tools join the environment.
    pub(crate) async fn simulate(&self, job: &Job) -> Result<serde_json::Value> {
        let request: SimulationRequest = serde_json::from_value(job.payload.clone())
            .map_err(|error| ServiceError::Internal(format!("job {} has an unreadable request: {error}", job.id)))?;
        let row = self.existing_environment(&request.environment).await?;
        let state = self.environment_state(&request.environment);
        let guard = self.current_detector_for_reading(&state, Some(&row)).await?;
        self.store().update_job_progress(job.id, 0, 1, self.now(), self.lease_ms()).await?;

        let candidates = match &request.server {
            Some(server) => {
                self.prepare(request.tools.iter().map(|def| (server.clone(), def.clone())).collect()).await?
            }
            None => Vec::new(),
        };
        let queries = self.routing_queries(request.probes.iter().map(|probe| probe.query.clone()).collect()).await?;
        let supplied: Vec<SuppliedProbe> = queries
            .into_iter()
            .zip(&request.probes)
            .map(|(query, probe)| SuppliedProbe { query, expected: probe.expected.clone() })
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let trials = request.trials;
        let report = tokio::task::spawn_blocking(move || {
            let cached = guard.as_ref().ok_or_else(|| ServiceError::Internal("detector missing".to_owned()))?;
            cached
                .detector
                .simulate(&candidates, &supplied, trials, threads)
                .map_err(|error| ServiceError::Internal(error.to_string()))
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("simulation thread failed: {error}")))??;
        self.store().update_job_progress(job.id, 1, 1, self.now(), self.lease_ms()).await?;
        serde_json::to_value(&report)
            .map_err(|error| ServiceError::Internal(format!("report not serialisable: {error}")))
    }
}
