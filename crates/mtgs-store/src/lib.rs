//! Persistence of the registry: environments, servers, tools, conflicts, the job queue and
//! stage 3's vector cache, on SQLite (the embedded default) through sqlx's `Any` driver,
//! so that a PostgreSQL backend is another set of migrations rather than another code path.
//!
//! Times are integer milliseconds since the Unix epoch, passed in by the caller (the
//! service owns the clock, so tests are deterministic). JSON is stored as TEXT.
//!
//! **Invariant:** every write a use case makes goes through one [`StoreTx`] and lands
//! whole or not at all.

mod audit;
mod conflicts;
mod connect;
mod embeddings;
mod environments;
mod governance;
mod jobs;
mod rows;
mod servers;
mod tools;

use std::collections::HashMap;
use std::path::Path;

pub use audit::AuditFilter;
pub use conflicts::{Recorded, Recording};
pub use connect::database_url_in;
pub use governance::{ApprovalDecision, ApprovalFilter, NewApproval, NewKeyRow};

use mtgs_core::{
    Conflict, ConflictStatus, EnvironmentName, Finding, Job, JobKind, ServerName, Severity, SeverityCounts, StageId,
    ToolDef, ToolKey, ToolName, ToolRecord, ToolStatus,
};
use serde_json::Value;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "mtgs.db";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("unsupported database URL '{0}': expected sqlite://PATH")]
    UnsupportedUrl(String),
    /// A row that the schema should have made impossible (bad enum text, bad JSON).
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    /// A finding names a tool that is not registered in the environment.
    #[error("finding names unknown tool {0}")]
    UnknownTool(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRow {
    pub id: i64,
    pub name: EnvironmentName,
    /// Bumped by every write that changes the environment's set of live tools; an
    /// in-memory detection index built at generation G is current while this is G.
    pub generation: i64,
    /// Bumped by every write that can change the environment's health (tools added or
    /// changing status, findings recorded, conflicts triaged): equal revisions, equal
    /// health.
    pub revision: i64,
    pub created_at: i64,
}

/// Filters for [`Store::tools`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    pub environment: Option<EnvironmentName>,
    pub server: Option<ServerName>,
    pub status: Option<ToolStatus>,
    /// At most this many, after skipping `offset` in the list's order; `None` for all.
    pub limit: Option<u64>,
    pub offset: u64,
}

/// Filters for [`Store::conflicts`]; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConflictFilter {
    /// Exact severity.
    pub severity: Option<Severity>,
    pub stage: Option<StageId>,
    pub status: Option<ConflictStatus>,
    /// Conflicts where either side is this tool.
    pub tool: Option<ToolKey>,
    /// At most this many, after skipping `offset` in the list's order; `None` for all.
    pub limit: Option<u64>,
    pub offset: u64,
}

/// Which tracked conflicts a batch of findings speaks for: those not found again within
/// the scope are no longer true ([`ConflictStatus::on_gone`]).
#[derive(Debug, Clone)]
pub enum FindingScope {
    /// Every conflict involving one of these tools (a registration).
    Tools(Vec<ToolKey>),
    /// Every conflict of the environment (an all-pairs analysis).
    Environment,
}

/// What [`StoreTx::record_findings`] did.
#[derive(Debug, Clone, Default)]
pub struct ConflictSync {
    /// The tracked conflict for each finding, in the order of the findings.
    pub conflicts: Vec<Conflict>,
    /// Findings that became new conflicts.
    pub opened: u64,
    /// Tracked conflicts that went from resolved or suppressed back to open.
    pub reopened: u64,
    /// Live conflicts not found again, now resolved.
    pub resolved: u64,
}

/// Live-tool and live-conflict counts of one environment, for the health score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounts {
    pub live_tools: u64,
    pub pending_approval: u64,
    pub conflicts: SeverityCounts,
}

/// The registry database. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: sqlx::AnyPool,
}

/// One transaction; dropped without [`StoreTx::commit`] it rolls back.
#[derive(Debug)]
pub struct StoreTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl Store {
    /// A transaction that takes SQLite's write lock at `BEGIN`: one that read first and
    /// wrote later could fail with SQLITE_BUSY at once when another writer got in between,
    /// since a deferred transaction cannot wait to upgrade its lock.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl Store {
    /// Opens (creating if missing) the database at `database_url` (`sqlite://PATH`),
    /// enables WAL, foreign keys and a busy timeout, and applies pending migrations.
    pub async fn open(database_url: &str) -> Result<Self> {
        Ok(Self { pool: connect::open(database_url).await? })
    }

    /// Creates `dir` if needed and opens `dir/mtgs.db`.
    pub async fn open_data_dir(dir: &Path) -> Result<Self> {
        Ok(Self { pool: connect::open_data_dir(dir).await? })
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<StoreTx> {
        Ok(StoreTx { tx: self.begin_write().await? })
    }

    pub async fn environment(&self, name: &EnvironmentName) -> Result<Option<EnvironmentRow>> {
        environments::by_name(&mut *self.pool.acquire().await?, name).await
    }

    /// All environments, by name.
    pub async fn environments(&self) -> Result<Vec<EnvironmentRow>> {
        environments::all(&mut *self.pool.acquire().await?).await
    }

    /// Tools matching `filter`, ordered by environment, server, name.
    pub async fn tools(&self, filter: &ToolFilter) -> Result<Vec<ToolRecord>> {
        tools::list(&mut *self.pool.acquire().await?, filter).await
    }

    /// The status and definition hash of each registered tool of `server`, by name.
    pub async fn definition_hashes(
        &self,
        environment_id: i64,
        server: &ServerName,
    ) -> Result<HashMap<ToolName, (ToolStatus, String)>> {
        tools::definition_hashes(&mut *self.pool.acquire().await?, environment_id, server).await
    }

    /// The tools of an environment that detection compares against ([`ToolStatus::is_live`]).
    pub async fn live_tools(&self, environment_id: i64) -> Result<Vec<ToolRecord>> {
        tools::live(&mut *self.pool.acquire().await?, environment_id).await
    }

    /// Conflicts of an environment matching `filter`, most severe first, then by id.
    pub async fn conflicts(&self, environment_id: i64, filter: &ConflictFilter) -> Result<Vec<Conflict>> {
        conflicts::list(&mut *self.pool.acquire().await?, environment_id, filter).await
    }

    pub async fn conflict(&self, id: i64) -> Result<Option<Conflict>> {
        conflicts::by_id(&mut *self.pool.acquire().await?, id).await
    }

    /// Tracked conflicts (any status) where either side is one of `keys`.
    pub async fn conflicts_involving(&self, environment_id: i64, keys: &[ToolKey]) -> Result<Vec<Conflict>> {
        conflicts::involving(&mut *self.pool.acquire().await?, environment_id, keys).await
    }

    /// Sets a conflict's triage status; `None` when there is no such conflict.
    pub async fn set_conflict_status(&self, id: i64, status: ConflictStatus, now: i64) -> Result<Option<Conflict>> {
        conflicts::set_status(&mut *self.pool.acquire().await?, id, status, now).await
    }

    /// Cached vectors of `model_id` for those of `fingerprints` (SHA-256 hex of the
    /// embedded text) that have one.
    pub async fn embeddings(
        &self,
        model_id: &str,
        fingerprints: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<f32>>> {
        embeddings::get(&mut *self.pool.acquire().await?, model_id, fingerprints).await
    }

    /// Caches vectors of `model_id` by fingerprint; ones already cached are kept.
    pub async fn put_embeddings(&self, model_id: &str, vectors: &[(String, Vec<f32>)], now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        embeddings::put(&mut tx, model_id, vectors, now).await?;
        Ok(tx.commit().await?)
    }

    /// Cached vectors per model identity.
    pub async fn embedding_counts(&self) -> Result<Vec<(String, i64)>> {
        embeddings::counts(&mut *self.pool.acquire().await?).await
    }

    pub async fn health_counts(&self, environment_id: i64) -> Result<HealthCounts> {
        conflicts::health(&mut *self.pool.acquire().await?, environment_id).await
    }

    /// Queues a job (creating the environment on first use).
    pub async fn enqueue_job(
        &self,
        kind: JobKind,
        environment: &EnvironmentName,
        payload: Option<&serde_json::Value>,
        now: i64,
    ) -> Result<Job> {
        self.enqueue_job_with_audit(kind, environment, payload, now, &|_| Vec::new()).await
    }

    /// [`Store::enqueue_job`], appending `audit(job)` in the same transaction.
    pub async fn enqueue_job_with_audit(
        &self,
        kind: JobKind,
        environment: &EnvironmentName,
        payload: Option<&serde_json::Value>,
        now: i64,
        audit: &(dyn Fn(&Job) -> Vec<mtgs_core::NewAuditEntry> + Sync),
    ) -> Result<Job> {
        let mut tx = self.begin_write().await?;
        let job = jobs::enqueue(&mut tx, kind, environment, payload, now).await?;
        audit::append(&mut tx, &audit(&job)).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Claims the oldest queued job, or a running one whose lease expired (its worker
    /// died): marks it running, counts the attempt and leases it until `now + lease_ms`.
    pub async fn claim_job(&self, now: i64, lease_ms: i64) -> Result<Option<Job>> {
        let mut tx = self.begin_write().await?;
        let job = jobs::claim(&mut tx, now, lease_ms).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Records progress and extends the lease.
    pub async fn update_job_progress(&self, id: i64, done: i64, total: i64, now: i64, lease_ms: i64) -> Result<()> {
        jobs::update_progress(&mut *self.pool.acquire().await?, id, done, total, now, lease_ms).await
    }

    /// Marks a job succeeded with its result, or failed with the error's message.
    pub async fn finish_job(&self, id: i64, outcome: std::result::Result<Value, String>, now: i64) -> Result<Job> {
        jobs::finish(&mut *self.pool.acquire().await?, id, outcome, now).await
    }

    /// Audit entries matching `filter`, in chain order.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<mtgs_core::AuditEntry>> {
        audit::read(&mut *self.pool.acquire().await?, filter).await
    }

    /// Appends audit entries in a transaction of their own (for events that change no
    /// other row).
    pub async fn append_audit(&self, entries: &[mtgs_core::NewAuditEntry]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        audit::append(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The key stored under `hash` (SHA-256 of the key), revoked or not.
    pub async fn api_key_by_hash(&self, hash: &str) -> Result<Option<mtgs_core::ApiKey>> {
        governance::key_by_hash(&mut *self.pool.acquire().await?, hash).await
    }

    /// Every API key, revoked ones included, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<mtgs_core::ApiKey>> {
        governance::keys(&mut *self.pool.acquire().await?).await
    }

    /// Records that a key was used at `now`.
    pub async fn touch_api_key(&self, id: i64, now: i64) -> Result<()> {
        governance::touch_key(&mut *self.pool.acquire().await?, id, now).await
    }

    /// Approval requests matching `filter`, oldest first.
    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<mtgs_core::Approval>> {
        governance::approvals(&mut *self.pool.acquire().await?, filter).await
    }

    /// Whether some pending request's time ran out at `now` (a read, before taking the
    /// write lock to expire them).
    pub async fn has_due_approvals(&self, now: i64) -> Result<bool> {
        governance::has_due(&mut *self.pool.acquire().await?, now).await
    }

    pub async fn approval(&self, id: i64) -> Result<Option<mtgs_core::Approval>> {
        governance::approval_by_id(&mut *self.pool.acquire().await?, id).await
    }

    /// Live MCP servers (servers with a connection), of one environment or all.
    pub async fn mcp_servers(&self, environment: Option<&EnvironmentName>) -> Result<Vec<mtgs_core::McpServer>> {
        servers::connected(&mut *self.pool.acquire().await?, environment).await
    }

    pub async fn server(&self, id: i64) -> Result<Option<mtgs_core::McpServer>> {
        servers::by_id(&mut *self.pool.acquire().await?, id).await
    }

    /// Records how a server's sync ended (a failed sync changes nothing else).
    pub async fn record_sync(&self, id: i64, record: &mtgs_core::SyncRecord) -> Result<()> {
        servers::record_sync(&mut *self.pool.acquire().await?, id, record).await
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        jobs::by_id(&mut *self.pool.acquire().await?, id).await
    }
}

impl StoreTx {
    /// The environment's row, created on first use.
    pub async fn ensure_environment(&mut self, name: &EnvironmentName, now: i64) -> Result<EnvironmentRow> {
        environments::ensure(&mut self.tx, name, now).await
    }

    /// Bumps the environment's generation and returns the new value.
    pub async fn bump_generation(&mut self, environment_id: i64) -> Result<i64> {
        environments::bump_generation(&mut self.tx, environment_id).await
    }

    /// Inserts the tool, or updates the one with the same server and name: definition,
    /// hash ([`ToolDef::canonical_hash`]) and status. Creates the server row on first use.
    pub async fn upsert_tool(
        &mut self,
        environment_id: i64,
        server: &ServerName,
        def: &ToolDef,
        status: ToolStatus,
        now: i64,
    ) -> Result<ToolRecord> {
        tools::upsert(&mut self.tx, environment_id, server, def, status, now).await
    }

    pub async fn set_tool_status(&mut self, tool_id: i64, status: ToolStatus, now: i64) -> Result<()> {
        tools::set_status(&mut self.tx, tool_id, status, now).await
    }

    /// Makes the tracked conflicts agree with `findings` within `scope`: one conflict per
    /// (environment, unordered pair, stage). New findings open conflicts; findings seen
    /// again update kind, severity, score and evidence and move the status by
    /// [`ConflictStatus::on_redetected`]; live conflicts in scope not found again move by
    /// [`ConflictStatus::on_gone`]. Both tools of every finding must be registered.
    pub async fn record_findings(
        &mut self,
        environment_id: i64,
        scope: &FindingScope,
        findings: &[Finding],
        now: i64,
    ) -> Result<ConflictSync> {
        conflicts::record_findings(&mut self.tx, environment_id, scope, findings, now).await
    }

    /// Starts recording findings for `scope` in batches ([`StoreTx::record_batch`]), for
    /// more findings than should be held at once.
    pub async fn start_recording(&mut self, environment_id: i64, scope: FindingScope, now: i64) -> Result<Recording> {
        Recording::start(&mut self.tx, environment_id, scope, now).await
    }

    /// Records one batch of a recording; what became of each finding, in order.
    pub async fn record_batch(&mut self, recording: &mut Recording, findings: &[Finding]) -> Result<Vec<Recorded>> {
        recording.record(&mut self.tx, findings).await
    }

    /// Ends a recording: live conflicts of its scope no batch found again are resolved.
    /// The returned sync carries counts, not conflicts.
    pub async fn finish_recording(&mut self, recording: Recording) -> Result<ConflictSync> {
        recording.finish(&mut self.tx).await
    }

    pub async fn conflict(&mut self, id: i64) -> Result<Option<Conflict>> {
        conflicts::by_id(&mut self.tx, id).await
    }

    /// Sets a conflict's triage status; `None` if there is no such conflict.
    pub async fn set_conflict_status(&mut self, id: i64, status: ConflictStatus, now: i64) -> Result<Option<Conflict>> {
        conflicts::set_status(&mut self.tx, id, status, now).await
    }

    /// Appends audit entries in this transaction: they land with the change they record,
    /// or not at all.
    pub async fn append_audit(&mut self, entries: &[mtgs_core::NewAuditEntry]) -> Result<()> {
        audit::append(&mut self.tx, entries).await
    }

    pub async fn insert_api_key(&mut self, key: &NewKeyRow<'_>) -> Result<mtgs_core::ApiKey> {
        governance::insert_key(&mut self.tx, key).await
    }

    pub async fn api_key(&mut self, id: i64) -> Result<Option<mtgs_core::ApiKey>> {
        governance::key_by_id(&mut self.tx, id).await
    }

    /// Revokes a key (a revoked one is left as it was); `None` when there is no such key.
    pub async fn revoke_api_key(&mut self, id: i64, by: &str, now: i64) -> Result<Option<mtgs_core::ApiKey>> {
        governance::revoke_key(&mut self.tx, id, by, now).await
    }

    /// Opens an approval request (at most one is pending per tool).
    pub async fn insert_approval(&mut self, approval: &NewApproval<'_>) -> Result<mtgs_core::Approval> {
        governance::insert_approval(&mut self.tx, approval).await
    }

    pub async fn approval(&mut self, id: i64) -> Result<Option<mtgs_core::Approval>> {
        governance::approval_by_id(&mut self.tx, id).await
    }

    /// The tool row an approval request is about.
    pub async fn approval_tool_id(&mut self, id: i64) -> Result<Option<i64>> {
        governance::approval_tool_id(&mut self.tx, id).await
    }

    /// The newest approval request about a tool row.
    pub async fn latest_approval(&mut self, tool_id: i64) -> Result<Option<mtgs_core::Approval>> {
        governance::latest_approval(&mut self.tx, tool_id).await
    }

    /// Pending requests whose time ran out at `now`, each with its tool's row id.
    pub async fn due_approvals(&mut self, now: i64) -> Result<Vec<(mtgs_core::Approval, i64)>> {
        governance::due_approvals(&mut self.tx, now).await
    }

    /// Closes a pending request; `false` if it was no longer pending.
    pub async fn decide_approval(&mut self, id: i64, decision: &ApprovalDecision<'_>) -> Result<bool> {
        governance::decide(&mut self.tx, id, decision).await
    }

    /// Sets how to reach the server `name` of an environment (creating it).
    pub async fn set_server_connection(
        &mut self,
        environment_id: i64,
        name: &ServerName,
        connection: &mtgs_core::Connection,
        now: i64,
    ) -> Result<mtgs_core::McpServer> {
        servers::set_connection(&mut self.tx, environment_id, name, connection, now).await
    }

    pub async fn record_sync(&mut self, id: i64, record: &mtgs_core::SyncRecord) -> Result<()> {
        servers::record_sync(&mut self.tx, id, record).await
    }

    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}
