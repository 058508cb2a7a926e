//! The use cases against a real SQLite database in a temporary directory, with a fixed
//! clock and the job runner driven step by step.

use std::sync::Arc;
use std::time::Duration;

use mtgs_core::{
    ConflictKind, ConflictStatus, EnvironmentName, JobStatus, ServerName, Severity, ToolStatus, Verdict,
    parse_tool_list,
};
use mtgs_service::{ConflictFilter, Resource, Service, ServiceError, ServiceSettings, Store, ToolBatch, ToolFilter};
use serde_json::{Value, json};

struct TestApp {
    service: Service,
    database_url: String,
    _dir: tempfile::TempDir,
}

fn settings(database_url: &str) -> ServiceSettings {
    ServiceSettings {
        database_url: database_url.to_owned(),
        job_poll_interval: Duration::from_millis(10),
        job_lease: Duration::from_secs(30),
        semantic: None,
        behavioural: Some(mtgs_service::BehaviouralSettings::local()),
        approval_ttl: mtgs_service::DEFAULT_APPROVAL_TTL,
        tool_source: None,
        sync_interval: None,
    }
}

async fn open(database_url: &str) -> Service {
    let store = Store::open(database_url).await.expect("database opens");
    Service::with_clock(store, settings(database_url), Arc::new(|| 1_700_000_000_000))
        .acting_as(mtgs_core::Principal::local("tests"))
}

async fn app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("mtgs.db").display());
    TestApp { service: open(&database_url).await, database_url, _dir: dir }
}

fn env(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).expect("valid")
}

fn batch(environment: &str, server: &str, tools: Value) -> ToolBatch {
    ToolBatch {
        environment: env(environment),
        server: ServerName::parse(server).expect("valid"),
        tools: parse_tool_list(&tools).expect("valid tools"),
    }
}

fn tool(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "inputSchema": {"type": "object"}})
}

#[tokio::test]
async fn a_salesforce_create_task_is_blocked_by_jira_create_task() {
    let app = app().await;
    let jira =
        app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    assert_eq!(jira.verdict, Verdict::Pass);
    assert_eq!(jira.tools[0].status, Some(ToolStatus::Active));

    let salesforce = tool("create_task", "Create a Salesforce task");
    let checked = app.service.check(batch("prod", "salesforce", salesforce.clone())).await.expect("ok");
    assert_eq!(checked.verdict, Verdict::Block);
    let conflict = &checked.tools[0].conflicts[0];
    assert_eq!(
        (conflict.finding.kind, conflict.finding.severity, conflict.id),
        (ConflictKind::ExactName, Severity::Critical, None)
    );

    let registered = app.service.register(batch("prod", "salesforce", salesforce)).await.expect("ok");
    assert_eq!(registered.tools[0].status, Some(ToolStatus::PendingApproval));
    let id = registered.tools[0].conflicts[0].id.expect("tracked");
    let listed = app.service.conflicts(&env("prod"), &ConflictFilter::default()).await.expect("ok");
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [id]);
}

#[tokio::test]
async fn a_check_writes_nothing() {
    let app = app().await;
    let outcome =
        app.service.check(batch("staging", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    assert_eq!(outcome.verdict, Verdict::Pass);
    let filter = ToolFilter { environment: Some(env("staging")), ..ToolFilter::default() };
    assert!(matches!(
        app.service.tools(&filter).await,
        Err(ServiceError::NotFound { what: Resource::Environment, .. })
    ));
}

#[tokio::test]
async fn requests_naming_environments_that_do_not_exist_leave_nothing_in_memory() {
    let app = app().await;
    app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("registered");
    let held = app.service.environments_in_memory();
    assert!(held >= 1, "the registered environment's state is kept");
    for n in 0..50 {
        let name = format!("nowhere-{n}");
        let outcome =
            app.service.check(batch(&name, "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
        assert_eq!(outcome.verdict, Verdict::Pass, "an environment nobody registered into is empty");
        assert!(app.service.health(&env(&name)).await.is_err());
        assert!(app.service.conflicts(&env(&name), &ConflictFilter::default()).await.is_err());
    }
    assert_eq!(app.service.environments_in_memory(), held);
    // The kept environment still answers from what it holds, and a first registration
    // into a new environment keeps that one.
    let outcome = app.service.check(batch("prod", "other", tool("create_task", "Create a task"))).await.expect("ok");
    assert_eq!(outcome.verdict, Verdict::Block);
    app.service.register(batch("staging", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    assert_eq!(app.service.environments_in_memory(), held + 1);
}

#[tokio::test]
async fn tools_in_one_batch_are_checked_against_each_other() {
    let app = app().await;
    let outcome = app
        .service
        .register(batch("dev", "gh", json!([tool("get_issue", "Get an issue"), tool("getIssue", "Get one issue")])))
        .await
        .expect("ok");
    assert_eq!(outcome.tools[0].status, Some(ToolStatus::Active));
    assert_eq!(outcome.tools[1].status, Some(ToolStatus::PendingApproval));
    assert_eq!(outcome.tools[1].conflicts[0].finding.kind, ConflictKind::NormalizedName);
}

#[tokio::test]
async fn a_suppressed_conflict_no_longer_blocks() {
    let app = app().await;
    app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    let salesforce = tool("create_task", "Create a Salesforce task");
    let first = app.service.register(batch("prod", "salesforce", salesforce.clone())).await.expect("ok");
    let id = first.tools[0].conflicts[0].id.expect("tracked");
    app.service.set_conflict_status(id, ConflictStatus::Suppressed).await.expect("ok");

    let again = app.service.register(batch("prod", "salesforce", salesforce)).await.expect("ok");
    assert_eq!(again.verdict, Verdict::Pass);
    assert_eq!(again.tools[0].status, Some(ToolStatus::Active));
    assert_eq!(again.tools[0].conflicts[0].status, ConflictStatus::Suppressed);
}

#[tokio::test]
async fn a_repeated_check_follows_every_change_to_the_environment_whoever_makes_it() {
    let app = app().await;
    // A second instance on the same database (another server, or the CLI on the data
    // directory): its writes reach the first one's answers through the store alone.
    let other = open(&app.database_url).await;
    app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    let salesforce = batch("prod", "salesforce", tool("create_task", "Create a Salesforce task"));
    let conflict = |outcome: &mtgs_service::BatchOutcome| {
        let view = &outcome.tools[0].conflicts[0];
        (outcome.verdict, view.id.is_some(), view.status, outcome.tools[0].accepted)
    };

    let first = app.service.check(salesforce.clone()).await.expect("ok");
    assert_eq!(conflict(&first), (Verdict::Block, false, ConflictStatus::Open, false));
    let again = app.service.check(salesforce.clone()).await.expect("ok");
    assert_eq!((again.verdict, &again.tools), (first.verdict, &first.tools));

    // Registered elsewhere: the pair is now tracked, with an id.
    let registered = other.register(salesforce.clone()).await.expect("ok");
    let id = registered.tools[0].conflicts[0].id.expect("tracked");
    assert_eq!(
        conflict(&app.service.check(salesforce.clone()).await.expect("ok")),
        (Verdict::Block, true, ConflictStatus::Open, false)
    );

    // Suppressed elsewhere: a triage change moves no tool, and still shows.
    other.set_conflict_status(id, ConflictStatus::Suppressed).await.expect("ok");
    assert_eq!(
        conflict(&app.service.check(salesforce.clone()).await.expect("ok")),
        (Verdict::Pass, true, ConflictStatus::Suppressed, false)
    );

    // Approved as it is elsewhere (re-registered with the conflict suppressed): accepted.
    other.register(salesforce.clone()).await.expect("ok");
    assert_eq!(
        conflict(&app.service.check(salesforce).await.expect("ok")),
        (Verdict::Pass, true, ConflictStatus::Suppressed, true)
    );
}

#[tokio::test]
async fn rerunning_an_analysis_changes_nothing() {
    let app = app().await;
    for (server, name) in [("jira", "create_task"), ("salesforce", "create_task"), ("asana", "createTask")] {
        app.service.register(batch("prod", server, tool(name, "Create a task"))).await.expect("ok");
    }
    let queued = app.service.start_analysis(&env("prod")).await.expect("ok");
    assert_eq!(queued.status, JobStatus::Queued);
    let first = app.service.run_next_job().await.expect("ok").expect("a job");
    assert_eq!((first.id, first.status), (queued.id, JobStatus::Succeeded));
    assert_eq!(first.result["findings"], 3);
    assert_eq!(first.progress_done, 3);

    app.service.start_analysis(&env("prod")).await.expect("ok");
    let second = app.service.run_next_job().await.expect("ok").expect("a job");
    assert_eq!((second.result["opened"].as_u64(), second.result["resolved"].as_u64()), (Some(0), Some(0)));
    assert!(app.service.run_next_job().await.expect("ok").is_none());

    let tracked = app.service.conflicts(&env("prod"), &ConflictFilter::default()).await.expect("ok");
    assert_eq!(tracked.len(), 3);
    assert!(tracked.iter().all(|conflict| conflict.status == ConflictStatus::Open));
}

#[tokio::test]
async fn health_falls_with_live_conflicts() {
    let app = app().await;
    app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    assert_eq!(app.service.health(&env("prod")).await.expect("ok").score, 100);
    app.service
        .register(batch("prod", "salesforce", tool("create_task", "Create a Salesforce task")))
        .await
        .expect("ok");
    let health = app.service.health(&env("prod")).await.expect("ok");
    assert_eq!((health.tools, health.pending_approval, health.conflicts.critical), (2, 1, 1));
    assert_eq!(health.score, 17); // 100 · 2 / (2 + 10)
}

#[tokio::test]
async fn health_is_remembered_only_while_nothing_changed_even_on_another_instance() {
    let app = app().await;
    let other = open(&app.database_url).await;
    app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    app.service.register(batch("prod", "salesforce", tool("create_task", "Create a task"))).await.expect("ok");
    let before = app.service.health(&env("prod")).await.expect("ok");
    assert_eq!(before.conflicts.critical, 1);
    assert_eq!(app.service.health(&env("prod")).await.expect("ok"), before, "unchanged, the same");

    // Triage on the other instance: this one's remembered counts must not be served.
    let conflicts = other.conflicts(&env("prod"), &ConflictFilter::default()).await.expect("ok");
    let critical =
        conflicts.iter().find(|c| c.finding.severity == Severity::Critical).expect("the exact-name conflict");
    other.set_conflict_status(critical.id, ConflictStatus::Suppressed).await.expect("ok");
    let after = app.service.health(&env("prod")).await.expect("ok");
    assert_eq!(after.conflicts.critical, 0, "{after:?}");

    // A registration elsewhere moves the tool count.
    other.register(batch("prod", "weather", tool("get_forecast", "Weather forecast for a city"))).await.expect("ok");
    assert_eq!(app.service.health(&env("prod")).await.expect("ok").tools, after.tools + 1);
}

#[tokio::test]
async fn listed_conflicts_follow_every_change_whoever_makes_it() {
    let app = app().await;
    let other = open(&app.database_url).await;
    let all = ConflictFilter::default();
    let open_only = ConflictFilter { status: Some(ConflictStatus::Open), ..ConflictFilter::default() };
    let first_page = ConflictFilter { limit: Some(1), ..ConflictFilter::default() };
    let list = |filter: &ConflictFilter| {
        let (service, filter) = (app.service.clone(), filter.clone());
        async move {
            let listed = service.conflicts(&env("prod"), &filter).await.expect("ok");
            listed.iter().map(|c| (c.id, c.status, c.finding.tool_b.to_string())).collect::<Vec<_>>()
        }
    };
    app.service.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    assert!(list(&all).await.is_empty());

    // Registered on the other instance: this one's remembered (empty) pages must not be served.
    other.register(batch("prod", "salesforce", tool("create_task", "Create a task"))).await.expect("ok");
    let listed = list(&all).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(list(&all).await, listed, "unchanged, the same");
    assert_eq!(list(&open_only).await, listed);
    let id = listed[0].0;

    // Triage elsewhere.
    other.set_conflict_status(id, ConflictStatus::Suppressed).await.expect("ok");
    assert_eq!(list(&all).await[0].1, ConflictStatus::Suppressed);
    assert!(list(&open_only).await.is_empty());

    // Another registration elsewhere adds conflicts; pages of one see the first of them.
    other.register(batch("prod", "asana", tool("createTask", "Create a task"))).await.expect("ok");
    assert_eq!(list(&all).await.len(), 3);
    assert_eq!(list(&first_page).await.len(), 1);
    assert_eq!(list(&open_only).await.len(), 2);

    // An analysis elsewhere that resolves nothing leaves the same list; triage here shows at once.
    other.start_analysis(&env("prod")).await.expect("ok");
    other.run_next_job().await.expect("ok").expect("a job");
    assert_eq!(
        list(&all).await,
        other
            .conflicts(&env("prod"), &all)
            .await
            .expect("ok")
            .iter()
            .map(|c| (c.id, c.status, c.finding.tool_b.to_string()))
            .collect::<Vec<_>>()
    );
    app.service.set_conflict_status(id, ConflictStatus::Open).await.expect("ok");
    assert_eq!(list(&open_only).await.len(), 3);
}

#[tokio::test]
async fn a_second_instance_sees_registrations_made_by_the_first() {
    let app = app().await;
    let other = open(&app.database_url).await;
    app.service.check(batch("prod", "x", tool("warm_up", "Fill the first instance's cache"))).await.expect("ok");
    other.register(batch("prod", "jira", tool("create_task", "Create a Jira task"))).await.expect("ok");
    let outcome =
        app.service.check(batch("prod", "salesforce", tool("create_task", "Create a task"))).await.expect("ok");
    assert_eq!(outcome.verdict, Verdict::Block, "the first instance rebuilt its stale detector");
}

#[tokio::test]
async fn reads_of_unknown_environments_are_not_found() {
    let app = app().await;
    let missing = env("nowhere");
    assert!(matches!(app.service.health(&missing).await, Err(ServiceError::NotFound { .. })));
    assert!(matches!(
        app.service.conflicts(&missing, &ConflictFilter::default()).await,
        Err(ServiceError::NotFound { .. })
    ));
    assert!(matches!(app.service.start_analysis(&missing).await, Err(ServiceError::NotFound { .. })));
    assert!(matches!(app.service.conflict(42).await, Err(ServiceError::NotFound { what: Resource::Conflict, .. })));
}

/// A deterministic stand-in model that counts the texts it embeds. (What real vectors
/// find is tested with the real model in mtgs-embed and the CLI; this tests the cache.)
#[derive(Debug)]
struct CountingEmbedder {
    id: &'static str,
    embedded: std::sync::atomic::AtomicUsize,
}

impl mtgs_detect::semantic::Embedder for CountingEmbedder {
    fn model_id(&self) -> &str {
        self.id
    }

    fn dimensions(&self) -> usize {
        3
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, mtgs_detect::semantic::EmbedError> {
        self.embedded.fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(texts.iter().map(|text| vec![1.0, text.len() as f32, 0.5]).collect())
    }
}

fn with_model(database_url: &str, store: Store, model: &Arc<CountingEmbedder>) -> Service {
    let embedder: Arc<dyn mtgs_detect::semantic::Embedder> = model.clone();
    // Stage 4 off: this counts fingerprints, and stage 4 would embed probes as well.
    let settings = ServiceSettings {
        semantic: Some(mtgs_service::SemanticSettings::new(embedder)),
        behavioural: None,
        ..settings(database_url)
    };
    Service::with_clock(store, settings, Arc::new(|| 1_700_000_000_000)).acting_as(mtgs_core::Principal::local("tests"))
}

#[tokio::test]
async fn each_tool_is_embedded_once_per_model_and_a_new_model_re_embeds() {
    let app = app().await;
    let embedded = |model: &CountingEmbedder| model.embedded.load(std::sync::atomic::Ordering::SeqCst);
    let model_a = Arc::new(CountingEmbedder { id: "model-a", embedded: 0.into() });
    let store = Store::open(&app.database_url).await.expect("opens");
    let service = with_model(&app.database_url, store.clone(), &model_a);
    let tools = json!([tool("list_rows", "List the rows of a table"), tool("drop_table", "Drop a table")]);
    service.register(batch("prod", "db", tools.clone())).await.expect("registers");
    assert_eq!(embedded(&model_a), 2);

    // Checking the same definitions again, and rebuilding the detector in a fresh
    // service, reads the cache.
    service.check(batch("prod", "db", tools.clone())).await.expect("checks");
    let restarted = with_model(&app.database_url, store.clone(), &model_a);
    restarted.check(batch("prod", "other", json!([tool("count_rows", "Count rows")]))).await.expect("checks");
    assert_eq!(embedded(&model_a), 3, "only the new definition was embedded");

    // Another model shares nothing with the first: it embeds every tool it needs.
    let model_b = Arc::new(CountingEmbedder { id: "model-b", embedded: 0.into() });
    let switched = with_model(&app.database_url, store.clone(), &model_b);
    switched.warm_up().await.expect("warms up");
    assert_eq!(embedded(&model_b), 2, "the registry, embedded in the background warm-up");
    switched.check(batch("prod", "db", tools)).await.expect("checks");
    assert_eq!(embedded(&model_b), 2);
    assert_eq!(
        store.embedding_counts().await.expect("counts"),
        vec![("model-a".to_owned(), 3), ("model-b".to_owned(), 2)]
    );
}

// --- live servers: periodic sync -----------------------------------------------------------

/// A live server that answers with whatever tools the test put in, and counts listings.
#[derive(Debug, Default)]
struct StubServer {
    tools: std::sync::Mutex<Vec<Value>>,
    listings: std::sync::atomic::AtomicUsize,
}

impl mtgs_service::ToolSource for StubServer {
    fn list_tools<'a>(
        &'a self,
        _connection: &'a mtgs_core::Connection,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<mtgs_service::ListedTools, String>> + Send + 'a>>
    {
        self.listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tools = self.tools.lock().expect("not poisoned").clone();
        Box::pin(async move { Ok(mtgs_service::ListedTools { server_info: json!({"name": "stub"}), tools }) })
    }
}

#[tokio::test]
async fn live_servers_are_synced_when_their_interval_has_passed_and_not_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("mtgs.db").display());
    let store = Store::open(&database_url).await.expect("database opens");
    let stub = Arc::new(StubServer::default());
    *stub.tools.lock().expect("not poisoned") =
        vec![json!({"name": "echo", "description": "Echo a message back.", "inputSchema": {"type": "object"}})];
    let now = Arc::new(std::sync::atomic::AtomicI64::new(1_700_000_000_000));
    let clock = now.clone();
    let source: Arc<dyn mtgs_service::ToolSource> = stub.clone();
    let settings = ServiceSettings { tool_source: Some(source), ..settings(&database_url) };
    let service =
        Service::with_clock(store, settings, Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst)))
            .acting_as(mtgs_core::Principal::system());
    let connection = mtgs_core::Connection::parse(&json!({"command": "stub"}), "").expect("a connection");
    let environment = EnvironmentName::parse("prod").expect("a name");
    service.add_server(&environment, &ServerName::parse("stub").expect("a name"), &connection).await.expect("added");
    let interval = Duration::from_secs(600);
    let listings = || stub.listings.load(std::sync::atomic::Ordering::SeqCst);

    assert_eq!(service.sync_due(interval).await.expect("synced"), 1, "never synced: due");
    assert_eq!(listings(), 1);
    now.fetch_add(599_999, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(service.sync_due(interval).await.expect("synced"), 0, "within the interval");
    assert_eq!(listings(), 1);
    now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    *stub.tools.lock().expect("not poisoned") = Vec::new();
    assert_eq!(service.sync_due(interval).await.expect("synced"), 1, "the interval has passed");
    let tools = service.tools(&ToolFilter::default()).await.expect("tools");
    assert_eq!(tools.iter().map(|tool| tool.status).collect::<Vec<_>>(), [ToolStatus::Removed]);
    // A viewer may read live servers but not sync them.
    let viewer =
        service.acting_as(mtgs_core::Principal { role: mtgs_core::Role::Viewer, ..mtgs_core::Principal::system() });
    assert!(viewer.sync_due(interval).await.is_err());
    assert_eq!(viewer.mcp_servers(None).await.expect("readable").len(), 1);
}
