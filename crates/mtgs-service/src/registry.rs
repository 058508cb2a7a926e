//! The service handle: the store, the clock, and one cached detector per environment,
//! kept current by the environment's generation counter.

use std::collections::HashMap;
use std::sync::Arc;

use mtgs_core::{
    Conflict, ConflictStatus, EnvironmentName, HealthReport, Job, Permission, Principal, ServerName, ToolName,
    ToolRecord, ToolStatus,
};
use mtgs_detect::Detector;
use mtgs_store::{ConflictFilter, EnvironmentRow, Store, ToolFilter};
use tokio::sync::{Mutex, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::fresh::FreshReads;
use crate::{BatchOutcome, Resource, Result, ServiceError, ServiceSettings, ToolBatch};

/// Milliseconds since the Unix epoch; replaceable in tests.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

/// A detector built from an environment's live tools at `generation`.
#[derive(Debug)]
pub(crate) struct CachedDetector {
    pub generation: i64,
    pub detector: Detector,
}

/// Per-environment state: writes are serialised (a registration checks and writes as
/// one step, so two concurrent registrations cannot both miss each other), and the
/// detector is shared by readers.
#[derive(Debug)]
pub(crate) struct EnvironmentState {
    pub writes: Mutex<()>,
    pub detector: Arc<RwLock<Option<CachedDetector>>>,
    /// Reads of the environment's row, shared by concurrent requests.
    pub row: FreshReads<Option<EnvironmentRow>>,
    /// Checks answered at the environment's current state.
    pub checks: crate::batch::CheckMemo,
    /// The health counts last computed.
    pub health: AtRevision<(), mtgs_store::HealthCounts>,
    /// Each server's registered tools (status and definition hash by name), as a check
    /// compares a batch with them.
    pub registered: AtRevision<ServerName, Arc<Registered>>,
    /// Pages of conflicts as listed, by filter; at most [`CONFLICT_PAGES_HELD`] conflicts.
    pub conflict_pages: AtRevision<ConflictFilter, Arc<[Conflict]>>,
}

impl Default for EnvironmentState {
    fn default() -> Self {
        Self {
            writes: Mutex::default(),
            detector: Arc::default(),
            row: FreshReads::default(),
            checks: crate::batch::CheckMemo::default(),
            health: AtRevision::default(),
            registered: AtRevision::default(),
            conflict_pages: AtRevision::weighed(CONFLICT_PAGES_HELD, |page| page.len()),
        }
    }
}

/// Conflicts an environment's remembered pages hold in all: ten pages of the API's
/// largest size; with their evidence, an estimated 10-20 MiB (not measured). Dashboards
/// and pipelines that poll the same pages are answered from memory until the environment
/// changes.
pub(crate) const CONFLICT_PAGES_HELD: usize = 10_000;

/// A server's registered tools: status and definition hash, by name.
pub(crate) type Registered = HashMap<ToolName, (ToolStatus, String)>;

/// Values read from the store, each kept with the environment revision read before
/// reading it, and current while the revision has not moved on. A value read after
/// reading revision R is at least as new as R, so keeping it under R never serves a
/// caller older data than the revision it read. Every write to an environment moves its
/// revision on in the write's own transaction. Holds values of a total weight of at most
/// `budget` (each weighs 1 unless made [`AtRevision::weighed`]); it forgets them all
/// when one more would not fit: the keys come from requests.
pub(crate) struct AtRevision<K, V> {
    entries: std::sync::Mutex<Entries<K, V>>,
    budget: usize,
    weigh: fn(&V) -> usize,
}

struct Entries<K, V> {
    by_key: HashMap<K, (i64, V)>,
    weight: usize,
}

impl<K, V> std::fmt::Debug for AtRevision<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtRevision").field("budget", &self.budget).finish_non_exhaustive()
    }
}

impl<K, V> Default for AtRevision<K, V> {
    /// At most 4,096 values.
    fn default() -> Self {
        Self::weighed(4096, |_| 1)
    }
}

impl<K, V> AtRevision<K, V> {
    /// Values weighing `weigh` each (at least 1), at most `budget` in all.
    pub fn weighed(budget: usize, weigh: fn(&V) -> usize) -> Self {
        Self { entries: std::sync::Mutex::new(Entries { by_key: HashMap::new(), weight: 0 }), budget, weigh }
    }
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> AtRevision<K, V> {
    /// The value of `key` at `revision`: remembered, or `read` and remembered.
    pub async fn get_or_read<F: std::future::Future<Output = Result<V>>>(
        &self,
        key: &K,
        revision: i64,
        read: impl FnOnce() -> F,
    ) -> Result<V> {
        let entries = || self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, value)) = entries().by_key.get(key).filter(|(at, _)| *at == revision) {
            return Ok(value.clone());
        }
        let value = read().await?;
        let weight = (self.weigh)(&value).max(1);
        if weight > self.budget {
            return Ok(value);
        }
        let mut entries = entries();
        let replaced = entries.by_key.get(key).map_or(0, |(_, old)| (self.weigh)(old).max(1));
        if entries.weight - replaced + weight > self.budget {
            entries.by_key.clear();
            entries.weight = 0;
        } else {
            entries.weight -= replaced;
        }
        entries.weight += weight;
        entries.by_key.insert(key.clone(), (revision, value.clone()));
        Ok(value)
    }
}

pub(crate) struct Inner {
    pub store: Store,
    pub settings: ServiceSettings,
    pub clock: Clock,
    pub environments: std::sync::Mutex<HashMap<EnvironmentName, Arc<EnvironmentState>>>,
    /// Held while computing missing vectors, so two callers needing the same tools (a
    /// warm-up and a first check) embed them once.
    pub embedding: Mutex<()>,
    /// When each API key's use was last written to the store (at most once a minute).
    pub key_uses: std::sync::Mutex<HashMap<i64, i64>>,
    /// API keys read recently, by hash: a request does not read its key from the store
    /// each time (see [`crate::governance::KEY_CACHE_TTL`]).
    pub keys: std::sync::Mutex<HashMap<String, (mtgs_core::ApiKey, std::time::Instant)>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("store", &self.store).field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The service. Cheap to clone. A service acts for a principal ([`Service::acting_as`]);
/// one that acts for nobody refuses every use case, so a surface that forgets to
/// authenticate fails closed.
#[derive(Debug, Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
    pub(crate) principal: Option<Arc<Principal>>,
}

impl Service {
    /// Opens the database (applying migrations).
    pub async fn open(settings: &ServiceSettings) -> Result<Self> {
        let store = Store::open(&settings.database_url).await?;
        Ok(Self::with_store(store, settings.clone()))
    }

    /// A service over an open store, on the system clock.
    pub fn with_store(store: Store, settings: ServiceSettings) -> Self {
        Self::with_clock(store, settings, Arc::new(system_clock))
    }

    /// A service whose clock is `clock` (milliseconds since the epoch), for tests.
    pub fn with_clock(store: Store, settings: ServiceSettings, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                clock,
                environments: std::sync::Mutex::new(HashMap::new()),
                embedding: Mutex::new(()),
                key_uses: std::sync::Mutex::new(HashMap::new()),
                keys: std::sync::Mutex::new(HashMap::new()),
            }),
            principal: None,
        }
    }

    /// The same service, acting for `principal`: its use cases are allowed by its role,
    /// and the audit log records it as the actor.
    pub fn acting_as(&self, principal: Principal) -> Service {
        Service { inner: self.inner.clone(), principal: Some(Arc::new(principal)) }
    }

    /// Who this service acts for, if anyone.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_deref()
    }

    /// The principal, if its role holds `permission`.
    pub(crate) fn authorize(&self, permission: Permission) -> Result<&Principal> {
        let principal = self
            .principal
            .as_deref()
            .ok_or(ServiceError::Unauthenticated("no principal: authenticate with an API key or a token".to_owned()))?;
        if principal.allows(permission) {
            Ok(principal)
        } else {
            Err(ServiceError::Forbidden { role: principal.role, permission })
        }
    }

    /// The audit log's actor for changes made now.
    pub(crate) fn actor(&self) -> &str {
        self.principal.as_deref().map_or(mtgs_core::SYSTEM_ACTOR, |principal| principal.actor.as_str())
    }

    pub(crate) fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Readiness: the database answers.
    pub async fn readiness(&self) -> Result<()> {
        Ok(self.store().ping().await?)
    }

    pub(crate) fn environment_state(&self, name: &EnvironmentName) -> Arc<EnvironmentState> {
        self.environments().entry(name.clone()).or_default().clone()
    }

    fn environments(&self) -> std::sync::MutexGuard<'_, HashMap<EnvironmentName, Arc<EnvironmentState>>> {
        self.inner.environments.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets what the service holds for `name`, an environment just read as absent,
    /// unless a caller still holds it (a registration about to create it). Requests may
    /// name any environment: those never created must not each leave state behind. (Were
    /// it created meanwhile and its state dropped, the next request rebuilds it from the
    /// store.)
    fn forget_absent_environment(&self, name: &EnvironmentName) {
        let mut environments = self.environments();
        if environments.get(name).is_some_and(|state| Arc::strong_count(state) == 1) {
            environments.remove(name);
        }
    }

    /// Environments whose state (cached detector, shared reads, remembered checks) the
    /// service holds in memory.
    pub fn environments_in_memory(&self) -> usize {
        self.environments().len()
    }

    /// The environment's row (`None` if there is no such environment) as read after this
    /// call began; the read is shared with concurrent callers ([`FreshReads`]).
    pub(crate) async fn environment_row(&self, name: &EnvironmentName) -> Result<Option<EnvironmentRow>> {
        let state = self.environment_state(name);
        let (store, owned) = (self.store().clone(), name.clone());
        let read = move || {
            let (store, name) = (store.clone(), owned.clone());
            async move { store.environment(&name).await }
        };
        let row = match state.row.read(read).await {
            Some(row) => row,
            // The shared read failed: this one reports its own error (or succeeds).
            None => self.store().environment(name).await?,
        };
        drop(state);
        if row.is_none() {
            self.forget_absent_environment(name);
        }
        Ok(row)
    }

    /// The environment's row, or `NotFound`.
    pub(crate) async fn existing_environment(&self, name: &EnvironmentName) -> Result<EnvironmentRow> {
        self.environment_row(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound { what: Resource::Environment, name: name.to_string() })
    }

    /// The cached detector of `environment`, rebuilt from the store when its generation
    /// moved on. Held for writing, so callers may update it incrementally.
    ///
    /// A detector newer than `environment` is current: the row was read before a
    /// registration that has since committed and updated the detector in place. Taking
    /// it for stale rebuilt the whole registry under the write lock (seconds at 10k
    /// tools) whenever a check raced a registration.
    pub(crate) async fn current_detector(
        &self,
        state: &EnvironmentState,
        environment: Option<&EnvironmentRow>,
    ) -> Result<OwnedRwLockWriteGuard<Option<CachedDetector>>> {
        let mut guard = state.detector.clone().write_owned().await;
        let generation = environment.map_or(0, |row| row.generation);
        if guard.as_ref().is_none_or(|cached| cached.generation < generation) {
            let tools = match environment {
                Some(row) => self.store().live_tools(row.id).await?,
                None => Vec::new(),
            };
            let detector = self.build_detector(tools).await?;
            *guard = Some(CachedDetector { generation, detector });
        }
        Ok(guard)
    }

    /// The cached detector for reading: shared with other readers while it is current;
    /// only a stale one takes the write lock to be rebuilt.
    pub(crate) async fn current_detector_for_reading(
        &self,
        state: &EnvironmentState,
        environment: Option<&EnvironmentRow>,
    ) -> Result<OwnedRwLockReadGuard<Option<CachedDetector>>> {
        let generation = environment.map_or(0, |row| row.generation);
        let guard = state.detector.clone().read_owned().await;
        if guard.as_ref().is_some_and(|cached| cached.generation >= generation) {
            return Ok(guard);
        }
        drop(guard);
        Ok(self.current_detector(state, environment).await?.downgrade())
    }

    /// Builds every environment's detector (embedding the tools the vector cache lacks for
    /// the current model), so that first checks after a start or a model change do not
    /// wait for it. Environments are done one at a time.
    pub async fn warm_up(&self) -> Result<()> {
        for row in self.store().environments().await? {
            let state = self.environment_state(&row.name);
            let started = std::time::Instant::now();
            drop(self.current_detector(&state, Some(&row)).await?);
            tracing::info!(environment = %row.name, seconds = started.elapsed().as_secs_f64(), "detector ready");
        }
        Ok(())
    }

    /// Registered tools. A named environment that does not exist is `NotFound`.
    pub async fn tools(&self, filter: &ToolFilter) -> Result<Vec<ToolRecord>> {
        self.authorize(Permission::Read)?;
        if let Some(name) = &filter.environment {
            self.existing_environment(name).await?;
        }
        Ok(self.store().tools(filter).await?)
    }

    /// Tracked conflicts of an environment (`NotFound` if it does not exist). Pages are
    /// remembered while the environment is unchanged ([`AtRevision`]).
    pub async fn conflicts(&self, environment: &EnvironmentName, filter: &ConflictFilter) -> Result<Arc<[Conflict]>> {
        self.authorize(Permission::Read)?;
        let row = self.existing_environment(environment).await?;
        let state = self.environment_state(environment);
        state
            .conflict_pages
            .get_or_read(filter, row.revision, || async {
                Ok(Arc::from(self.store().conflicts(row.id, filter).await?))
            })
            .await
    }

    pub async fn conflict(&self, id: i64) -> Result<Conflict> {
        self.authorize(Permission::Read)?;
        self.store()
            .conflict(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound { what: Resource::Conflict, name: id.to_string() })
    }

    /// Sets a conflict's triage status (`NotFound` if there is no such conflict).
    /// The change and its CONFLICT_STATUS_CHANGED audit entry land together.
    /// Developers may acknowledge; suppressing, resolving or reopening takes a reviewer.
    pub async fn set_conflict_status(&self, id: i64, status: ConflictStatus) -> Result<Conflict> {
        self.authorize(if status == ConflictStatus::Acknowledged {
            Permission::AcknowledgeConflict
        } else {
            Permission::TriageConflict
        })?;
        let not_found = || ServiceError::NotFound { what: Resource::Conflict, name: id.to_string() };
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let before = tx.conflict(id).await?.ok_or_else(not_found)?;
        let after = tx.set_conflict_status(id, status, now).await?.ok_or_else(not_found)?;
        if before.status != after.status {
            let entry = crate::audit::entry(
                self.actor(),
                now,
                mtgs_core::AuditEvent::ConflictStatusChanged,
                Some(&after.environment),
                format!("conflict {id}"),
                serde_json::json!({"status": before.status}),
                serde_json::json!({"status": after.status}),
            );
            tx.append_audit(&[entry]).await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    /// Health score and counts of an environment (`NotFound` if it does not exist).
    pub async fn health(&self, environment: &EnvironmentName) -> Result<HealthReport> {
        self.authorize(Permission::Read)?;
        let row = self.existing_environment(environment).await?;
        // Aggregating every conflict takes tens of milliseconds at 10k tools; an unchanged
        // environment (same revision) answers from memory.
        let state = self.environment_state(environment);
        let counts = state
            .health
            .get_or_read(&(), row.revision, || async { Ok(self.store().health_counts(row.id).await?) })
            .await?;
        Ok(HealthReport {
            environment: environment.clone(),
            score: HealthReport::score_for(counts.live_tools, &counts.conflicts),
            tools: counts.live_tools,
            pending_approval: counts.pending_approval,
            conflicts: counts.conflicts,
        })
    }

    /// A job by id (`NotFound` if there is none).
    pub async fn job(&self, id: i64) -> Result<Job> {
        self.authorize(Permission::Read)?;
        self.store().job(id).await?.ok_or_else(|| ServiceError::NotFound { what: Resource::Job, name: id.to_string() })
    }

    /// A job of `kind` by id (`NotFound` if there is none of that kind).
    pub async fn job_of_kind(&self, id: i64, kind: mtgs_core::JobKind) -> Result<Job> {
        match self.job(id).await {
            Ok(job) if job.kind == kind => Ok(job),
            Ok(_) => Err(ServiceError::NotFound { what: Resource::Job, name: id.to_string() }),
            Err(error) => Err(error),
        }
    }

    /// Runs the pipeline for each tool of the batch against the environment as it is
    /// (plus the batch's earlier tools). Writes nothing. An unknown environment is empty.
    pub async fn check(&self, batch: ToolBatch) -> Result<BatchOutcome> {
        self.authorize(Permission::Check)?;
        crate::batch::check(self, batch).await
    }

    /// Registers the batch with its conflicts in one transaction. A tool with a live
    /// CRITICAL or HIGH conflict gets `pending_approval`, otherwise `active`.
    pub async fn register(&self, batch: ToolBatch) -> Result<BatchOutcome> {
        self.authorize(Permission::Register)?;
        crate::batch::register(self, batch).await
    }
}

impl Service {
    /// A detector over `tools` with the configured stages (embedding what the vector
    /// cache lacks), built on a blocking thread.
    pub(crate) async fn build_detector(&self, tools: Vec<ToolRecord>) -> Result<Detector> {
        let mut detector = self.new_detector(tools.len());
        let prepared = self.prepare(tools.into_iter().map(|tool| (tool.server, tool.def)).collect()).await?;
        tokio::task::spawn_blocking(move || {
            detector.insert_many(prepared);
            detector
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("building the detector failed: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::AtRevision;

    /// Reads `value` through `memo` at `revision`, counting reads in `reads`.
    async fn read(
        memo: &AtRevision<&'static str, Vec<u8>>,
        key: &'static str,
        revision: i64,
        value: Vec<u8>,
        reads: &Cell<u32>,
    ) -> Vec<u8> {
        memo.get_or_read(&key, revision, || async {
            reads.set(reads.get() + 1);
            Ok(value)
        })
        .await
        .expect("the read cannot fail")
    }

    #[tokio::test]
    async fn values_are_kept_per_revision_within_their_weight_budget() {
        let memo: AtRevision<&'static str, Vec<u8>> = AtRevision::weighed(10, Vec::len);
        let reads = Cell::new(0);
        assert_eq!(read(&memo, "a", 1, vec![1; 6], &reads).await, vec![1; 6]);
        assert_eq!(read(&memo, "a", 1, vec![9; 6], &reads).await, vec![1; 6], "remembered at revision 1");
        assert_eq!(reads.get(), 1);
        assert_eq!(read(&memo, "a", 2, vec![2; 6], &reads).await, vec![2; 6], "read again at revision 2");
        assert_eq!(reads.get(), 2);
        // Replacing a value frees its weight: 6 replaced by 6 still fits.
        assert_eq!(read(&memo, "a", 3, vec![3; 4], &reads).await, vec![3; 4]);
        assert_eq!(read(&memo, "b", 3, vec![4; 6], &reads).await, vec![4; 6]);
        assert_eq!(reads.get(), 4);
        assert_eq!(read(&memo, "a", 3, vec![0; 4], &reads).await, vec![3; 4], "4 + 6 fit in 10");
        assert_eq!(reads.get(), 4);
        // One more would pass the budget: all are forgotten, the new one kept.
        assert_eq!(read(&memo, "c", 3, vec![5; 1], &reads).await, vec![5; 1]);
        assert_eq!(read(&memo, "c", 3, vec![0; 1], &reads).await, vec![5; 1]);
        assert_eq!(read(&memo, "a", 3, vec![6; 4], &reads).await, vec![6; 4], "forgotten, read again");
        assert_eq!(reads.get(), 6);
        // A value heavier than the whole budget is never kept, and forgets nothing.
        assert_eq!(read(&memo, "big", 3, vec![7; 11], &reads).await, vec![7; 11]);
        assert_eq!(read(&memo, "big", 3, vec![8; 11], &reads).await, vec![8; 11]);
        assert_eq!(read(&memo, "a", 3, vec![0; 4], &reads).await, vec![6; 4]);
        assert_eq!(reads.get(), 8);
        // Empty values weigh 1, so an unbounded number of them cannot pile up.
        let empty: AtRevision<u32, Vec<u8>> = AtRevision::weighed(2, Vec::len);
        for key in 0..5 {
            empty.get_or_read(&key, 1, || async { Ok(Vec::new()) }).await.expect("ok");
        }
        assert!(empty.entries.lock().expect("not poisoned").by_key.len() <= 2);
    }
}
