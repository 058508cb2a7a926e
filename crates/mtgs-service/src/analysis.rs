//! All-pairs analysis of an environment, and the job runner that executes queued jobs.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mtgs_core::{Job, JobKind, SeverityCounts};
use mtgs_store::FindingScope;
use serde_json::{Value, json};

use crate::registry::Service;
use crate::{Progress, Result, ServiceError};

/// Findings an analysis records per batch (with their audit entries).
const RECORD_BATCH: usize = 10_000;

impl Service {
    /// Queues an all-pairs analysis of an environment (`NotFound` if it does not exist);
    /// a job runner picks it up.
    pub async fn start_analysis(&self, environment: &mtgs_core::EnvironmentName) -> Result<Job> {
        self.authorize(mtgs_core::Permission::RunAnalysis)?;
        self.existing_environment(environment).await?;
        let now = self.now();
        let started = |job: &Job| {
            vec![crate::audit::entry(
                self.actor(),
                now,
                mtgs_core::AuditEvent::AnalysisRunStarted,
                Some(environment),
                format!("analysis run {}", job.id),
                serde_json::Value::Null,
                json!({"status": job.status}),
            )]
        };
        Ok(self.store().enqueue_job_with_audit(JobKind::Analysis, environment, None, now, &started).await?)
    }

    /// Queues an analysis and runs it in this process, reporting progress; for the CLI's
    /// local mode. Jobs queued before it run first, as a runner would run them.
    pub async fn analyze_now(
        &self,
        environment: &mtgs_core::EnvironmentName,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Job> {
        let job = self.start_analysis(environment).await?;
        self.run_until(job, progress).await
    }

    /// Runs queued jobs in this process until `job` has run (jobs queued before it run
    /// first, as a runner would run them), reporting `job`'s progress.
    pub(crate) async fn run_until(&self, job: Job, progress: &(dyn Fn(Progress) + Send + Sync)) -> Result<Job> {
        while let Some(claimed) = self.store().claim_job(self.now(), self.lease_ms()).await? {
            let ours = claimed.id == job.id;
            let finished = self.execute(claimed, if ours { progress } else { &|_| {} }).await?;
            if ours {
                return Ok(finished);
            }
        }
        // Another runner took it; report where it stands.
        self.job(job.id).await
    }

    /// Claims and runs queued jobs until `shutdown` completes, as mtgs itself (the
    /// `system` actor), and expires approval requests whose time ran out.
    pub async fn run_jobs(&self, shutdown: impl Future<Output = ()> + Send) {
        let this = self.acting_as(mtgs_core::Principal::system());
        this.run_jobs_as_system(shutdown).await;
    }

    async fn run_jobs_as_system(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut last_sync_check: Option<std::time::Instant> = None;
        loop {
            if let Err(error) = self.expire_approvals().await {
                tracing::error!(%error, "job runner could not expire approval requests");
            }
            // Live servers are synced on their interval; looked for at most every 10 s.
            if let Some(interval) =
                self.inner.settings.sync_interval.filter(|_| self.inner.settings.tool_source.is_some())
                && last_sync_check.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10).min(interval))
            {
                last_sync_check = Some(std::time::Instant::now());
                let syncing = self.sync_due(interval);
                tokio::select! {
                    () = &mut shutdown => return,
                    synced = syncing => if let Err(error) = synced {
                        tracing::error!(%error, "job runner could not sync live servers");
                    },
                }
            }
            let ran = tokio::select! {
                () = &mut shutdown => return,
                ran = self.run_next_job() => ran,
            };
            let idle = match ran {
                Ok(Some(_)) => false,
                Ok(None) => true,
                Err(error) => {
                    tracing::error!(%error, "job runner could not claim a job");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(self.inner.settings.job_poll_interval) => {}
                }
            }
        }
    }

    /// Claims and runs one job if there is one; returns it finished. For tests.
    pub async fn run_next_job(&self) -> Result<Option<Job>> {
        match self.store().claim_job(self.now(), self.lease_ms()).await? {
            Some(job) => Ok(Some(self.execute(job, &|_| {}).await?)),
            None => Ok(None),
        }
    }

    pub(crate) fn lease_ms(&self) -> i64 {
        self.inner.settings.job_lease.as_millis() as i64
    }

    /// Runs a claimed job to its end and records the outcome; a failure of the job is
    /// recorded on the job, not returned.
    pub(crate) async fn execute(&self, job: Job, progress: &(dyn Fn(Progress) + Send + Sync)) -> Result<Job> {
        let outcome = match job.kind {
            JobKind::Analysis => self.analyze(&job, progress).await,
            JobKind::Simulation => self.simulate(&job).await,
        };
        let outcome = outcome.map_err(|error| error.to_string());
        if let Err(error) = &outcome {
            tracing::warn!(job = job.id, %error, "job failed");
        }
        Ok(self.store().finish_job(job.id, outcome, self.now()).await?)
    }

    /// Compares every pair of live tools and makes the tracked conflicts agree. Holds the
    /// environment's write lock, so no registration lands between reading and writing;
    /// rerunning it on an unchanged environment changes nothing.
    async fn analyze(&self, job: &Job, progress: &(dyn Fn(Progress) + Send + Sync)) -> Result<serde_json::Value> {
        let state = self.environment_state(&job.environment);
        let _writes = state.writes.lock().await;
        let row = self.existing_environment(&job.environment).await?;
        let started = std::time::Instant::now();
        let tools = self.store().live_tools(row.id).await?;
        let total = tools.len() as u64;
        self.store().update_job_progress(job.id, 0, total as i64, self.now(), self.lease_ms()).await?;

        // Detection runs on blocking threads; progress flows back through a counter that
        // this task reports to the caller and the job row.
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let detector = self.build_detector(tools).await?;
        let loaded = started.elapsed();
        let mut detection = tokio::task::spawn_blocking(move || {
            detector.analyze(threads, &|finished, _| counter.store(finished as u64, Ordering::Relaxed))
        });
        let findings = loop {
            tokio::select! {
                joined = &mut detection => {
                    break joined.map_err(|error| ServiceError::Internal(format!("analysis thread failed: {error}")))?;
                }
                () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                    let finished = done.load(Ordering::Relaxed);
                    progress(Progress { done: finished, total });
                    self.store().update_job_progress(job.id, finished as i64, total as i64, self.now(), self.lease_ms()).await?;
                }
            }
        };
        progress(Progress { done: total, total });
        let detected = started.elapsed();

        // Recorded in batches, each with its audit entries: an analysis of a large
        // registry finds millions of pairs, and holding them with their tracked
        // conflicts and audit entries at once needed most of a 24 GiB machine at 100k.
        let now = self.now();
        let found = findings.len();
        let mut by_severity = SeverityCounts::default();
        let mut tx = self.store().begin().await?;
        let mut recording = tx.start_recording(row.id, FindingScope::Environment, now).await?;
        let mut findings = findings.into_iter();
        loop {
            let batch: Vec<mtgs_core::Finding> = findings.by_ref().take(RECORD_BATCH).collect();
            if batch.is_empty() {
                break;
            }
            let recorded = tx.record_batch(&mut recording, &batch).await?;
            let entries: Vec<mtgs_core::NewAuditEntry> = batch
                .iter()
                .zip(&recorded)
                .filter(|(_, recorded)| recorded.opened)
                .map(|(finding, recorded)| {
                    crate::audit::opened_entry(
                        self.actor(),
                        &job.environment,
                        recorded.id,
                        finding,
                        mtgs_core::ConflictStatus::Open,
                        now,
                    )
                })
                .collect();
            tx.append_audit(&entries).await?;
            for finding in &batch {
                by_severity.add(finding.severity);
            }
        }
        let sync = tx.finish_recording(recording).await?;
        tx.append_audit(&[crate::audit::entry(
            self.actor(),
            now,
            mtgs_core::AuditEvent::AnalysisRunCompleted,
            Some(&job.environment),
            format!("analysis run {}", job.id),
            Value::Null,
            json!({"tools": total, "findings": found, "opened": sync.opened, "reopened": sync.reopened, "resolved": sync.resolved}),
        )])
        .await?;
        tx.commit().await?;
        self.store().update_job_progress(job.id, total as i64, total as i64, self.now(), self.lease_ms()).await?;

        // Where the time went: reading the registry and building the stages' indexes,
        // comparing the pairs, and writing the conflicts with their audit entries.
        let seconds = json!({
            "load": loaded.as_secs_f64(),
            "detect": (detected - loaded).as_secs_f64(),
            "record": (started.elapsed() - detected).as_secs_f64(),
        });
        tracing::info!(job = job.id, tools = total, findings = found, %seconds, "analysis finished");
        Ok(json!({
            "tools": total,
            "findings": found,
            "by_severity": by_severity,
            "opened": sync.opened,
            "reopened": sync.reopened,
            "resolved": sync.resolved,
            "seconds": seconds,
        }))
    }
}
