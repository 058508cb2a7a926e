//! The store against a real SQLite file: each test opens a fresh database in its own
//! temporary directory.

use mtgs_core::{
    ConflictKind, ConflictStatus, EnvironmentName, Finding, JobKind, JobStatus, ServerName, Severity, SeverityCounts,
    StageId, ToolDef, ToolKey, ToolName, ToolStatus,
};
use mtgs_store::{ConflictFilter, FindingScope, HealthCounts, Store, StoreError, StoreTx, ToolFilter};
use serde_json::{Value, json};
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A store on a fresh database; the directory lives as long as the store is used.
struct Fixture {
    store: Store,
    dir: TempDir,
}

async fn fresh() -> Result<Fixture, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    Ok(Fixture { store: Store::open(&url).await?, dir })
}

fn environment(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).expect("valid environment name")
}

fn server(name: &str) -> ServerName {
    ServerName::parse(name).expect("valid server name")
}

fn key(server_name: &str, tool: &str) -> ToolKey {
    ToolKey { server: server(server_name), name: ToolName::parse(tool).expect("valid tool name") }
}

fn tool(name: &str, description: &str) -> ToolDef {
    ToolDef::parse(&json!({"name": name, "description": description, "inputSchema": {"type": "object"}}))
        .expect("valid tool")
        .def
}

fn finding(a: &ToolKey, b: &ToolKey, stage: StageId, severity: Severity) -> Finding {
    Finding {
        tool_a: a.clone(),
        tool_b: b.clone(),
        stage,
        kind: ConflictKind::ExactName,
        severity,
        score: 0.5,
        evidence: json!({"names": [a.to_string(), b.to_string()]}),
    }
}

/// Registers active tools `server/name` in `env` and returns the environment id.
async fn register(tx: &mut StoreTx, env: &str, keys: &[&ToolKey], now: i64) -> Result<i64, StoreError> {
    let environment_id = tx.ensure_environment(&environment(env), now).await?.id;
    for key in keys {
        tx.upsert_tool(
            environment_id,
            &key.server,
            &tool(key.name.as_str(), "Does one thing well"),
            ToolStatus::Active,
            now,
        )
        .await?;
    }
    Ok(environment_id)
}

/// Records `findings` in one committed transaction.
async fn record(
    store: &Store,
    environment_id: i64,
    scope: FindingScope,
    findings: &[Finding],
    now: i64,
) -> Result<mtgs_store::ConflictSync, StoreError> {
    let mut tx = store.begin().await?;
    let sync = tx.record_findings(environment_id, &scope, findings, now).await?;
    tx.commit().await?;
    Ok(sync)
}

/// Four tools in `dev`: a/x, b/x, c/y, d/y.
async fn four_tools(store: &Store) -> Result<(i64, [ToolKey; 4]), StoreError> {
    let keys = [key("a", "x"), key("b", "x"), key("c", "y"), key("d", "y")];
    let mut tx = store.begin().await?;
    let environment_id = register(&mut tx, "dev", &keys.iter().collect::<Vec<_>>(), 1).await?;
    tx.commit().await?;
    Ok((environment_id, keys))
}

fn statuses(conflicts: &[mtgs_core::Conflict]) -> Vec<(String, ConflictStatus)> {
    conflicts
        .iter()
        .map(|conflict| (format!("{}~{}", conflict.finding.tool_a, conflict.finding.tool_b), conflict.status))
        .collect()
}

// --- tools ---------------------------------------------------------------------------

#[tokio::test]
async fn an_upserted_tool_reads_back_with_its_definition_and_unknown_fields() -> TestResult {
    let fixture = fresh().await?;
    let raw = json!({"name": "echo", "description": "Echoes back the input message",
                     "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}},
                     "icons": [{"src": "x.png"}], "_meta": {"k": 1}});
    let def = ToolDef::parse(&raw)?.def;

    let mut tx = fixture.store.begin().await?;
    let environment_id = tx.ensure_environment(&environment("dev"), 10).await?.id;
    let written = tx.upsert_tool(environment_id, &server("everything"), &def, ToolStatus::PendingApproval, 20).await?;
    tx.commit().await?;

    let read = fixture.store.tools(&ToolFilter::default()).await?;
    assert_eq!(read, vec![written.clone()]);
    let record = &read[0];
    assert_eq!(record.def.to_json(), raw);
    assert_eq!(record.definition_hash, def.canonical_hash());
    assert_eq!(record.environment, environment("dev"));
    assert_eq!(record.server, server("everything"));
    assert_eq!(record.status, ToolStatus::PendingApproval);
    assert_eq!((record.created_at, record.updated_at), (20, 20));
    Ok(())
}

#[tokio::test]
async fn registering_a_tool_again_updates_it_in_place() -> TestResult {
    let fixture = fresh().await?;
    let mut tx = fixture.store.begin().await?;
    let environment_id = tx.ensure_environment(&environment("dev"), 1).await?.id;
    let first = tx
        .upsert_tool(environment_id, &server("s"), &tool("t", "The first description"), ToolStatus::Active, 10)
        .await?;
    let unchanged = tx
        .upsert_tool(environment_id, &server("s"), &tool("t", "The first description"), ToolStatus::Active, 20)
        .await?;
    let changed = tx
        .upsert_tool(environment_id, &server("s"), &tool("t", "A second description"), ToolStatus::Active, 30)
        .await?;
    tx.commit().await?;

    assert_eq!(unchanged.id, first.id);
    assert_eq!(unchanged.updated_at, 10, "an identical definition is not an update");
    assert_eq!(changed.id, first.id);
    assert_eq!((changed.created_at, changed.updated_at), (10, 30));
    let stored = fixture.store.tools(&ToolFilter::default()).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].def.description.as_deref(), Some("A second description"));
    assert_ne!(stored[0].definition_hash, first.definition_hash);
    Ok(())
}

#[tokio::test]
async fn tool_filters_match_environment_server_and_status_in_name_order() -> TestResult {
    let fixture = fresh().await?;
    let mut tx = fixture.store.begin().await?;
    let dev = tx.ensure_environment(&environment("dev"), 1).await?.id;
    let prod = tx.ensure_environment(&environment("prod"), 1).await?.id;
    for (environment_id, server_name, name, status) in [
        (prod, "github", "create_issue", ToolStatus::Active),
        (dev, "jira", "create_issue", ToolStatus::Blocked),
        (dev, "github", "list_issues", ToolStatus::Active),
        (dev, "github", "create_issue", ToolStatus::Active),
    ] {
        tx.upsert_tool(environment_id, &server(server_name), &tool(name, "Manages issues in a tracker"), status, 2)
            .await?;
    }
    tx.commit().await?;

    let names = |records: Vec<mtgs_core::ToolRecord>| {
        records.iter().map(|r| format!("{}:{}/{}", r.environment, r.server, r.def.name)).collect::<Vec<_>>()
    };
    assert_eq!(
        names(fixture.store.tools(&ToolFilter::default()).await?),
        ["dev:github/create_issue", "dev:github/list_issues", "dev:jira/create_issue", "prod:github/create_issue"]
    );
    let dev_only = ToolFilter { environment: Some(environment("dev")), ..ToolFilter::default() };
    assert_eq!(
        names(fixture.store.tools(&dev_only).await?),
        ["dev:github/create_issue", "dev:github/list_issues", "dev:jira/create_issue"]
    );
    let github_active = ToolFilter {
        environment: Some(environment("dev")),
        server: Some(server("github")),
        status: Some(ToolStatus::Active),
        ..ToolFilter::default()
    };
    assert_eq!(
        names(fixture.store.tools(&github_active).await?),
        ["dev:github/create_issue", "dev:github/list_issues"]
    );
    // Pages are slices of the same order; an offset alone reads to the end.
    let page = |limit, offset| ToolFilter { limit, offset, ..dev_only.clone() };
    assert_eq!(
        names(fixture.store.tools(&page(Some(2), 0)).await?),
        ["dev:github/create_issue", "dev:github/list_issues"]
    );
    assert_eq!(names(fixture.store.tools(&page(Some(2), 2)).await?), ["dev:jira/create_issue"]);
    assert_eq!(names(fixture.store.tools(&page(None, 1)).await?), ["dev:github/list_issues", "dev:jira/create_issue"]);
    assert!(fixture.store.tools(&page(Some(5), 3)).await?.is_empty());
    let blocked = ToolFilter { status: Some(ToolStatus::Blocked), ..ToolFilter::default() };
    assert_eq!(names(fixture.store.tools(&blocked).await?), ["dev:jira/create_issue"]);
    let nowhere = ToolFilter { environment: Some(environment("staging")), ..ToolFilter::default() };
    assert!(fixture.store.tools(&nowhere).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn live_tools_leave_out_blocked_and_removed_tools() -> TestResult {
    let fixture = fresh().await?;
    let mut tx = fixture.store.begin().await?;
    let dev = tx.ensure_environment(&environment("dev"), 1).await?.id;
    let other = tx.ensure_environment(&environment("other"), 1).await?.id;
    for status in ToolStatus::ALL {
        tx.upsert_tool(dev, &server("s"), &tool(status.as_str(), "A tool in some state"), *status, 2).await?;
    }
    tx.upsert_tool(other, &server("s"), &tool("elsewhere", "A tool in another place"), ToolStatus::Active, 2).await?;
    tx.commit().await?;

    let live: Vec<String> =
        fixture.store.live_tools(dev).await?.iter().map(|record| record.def.name.to_string()).collect();
    assert_eq!(live, ["active", "deprecated", "pending_approval"]);
    Ok(())
}

#[tokio::test]
async fn setting_a_tool_status_changes_it_and_an_unknown_tool_is_an_error() -> TestResult {
    let fixture = fresh().await?;
    let mut tx = fixture.store.begin().await?;
    let dev = tx.ensure_environment(&environment("dev"), 1).await?.id;
    let record = tx.upsert_tool(dev, &server("s"), &tool("t", "A tool to be blocked"), ToolStatus::Active, 2).await?;
    tx.set_tool_status(record.id, ToolStatus::Blocked, 3).await?;
    assert!(matches!(
        tx.set_tool_status(record.id + 100, ToolStatus::Blocked, 3).await,
        Err(StoreError::Database(sqlx::Error::RowNotFound))
    ));
    tx.commit().await?;

    let stored = fixture.store.tools(&ToolFilter::default()).await?;
    assert_eq!((stored[0].status, stored[0].updated_at), (ToolStatus::Blocked, 3));
    Ok(())
}

// --- environments and transactions -----------------------------------------------------

#[tokio::test]
async fn environments_are_created_once_and_their_generation_counts_up() -> TestResult {
    let fixture = fresh().await?;
    let mut tx = fixture.store.begin().await?;
    let created = tx.ensure_environment(&environment("prod"), 5).await?;
    let again = tx.ensure_environment(&environment("prod"), 9).await?;
    tx.ensure_environment(&environment("dev"), 6).await?;
    assert_eq!(again, created);
    assert_eq!(created.generation, 0);
    assert_eq!(tx.bump_generation(created.id).await?, 1);
    assert_eq!(tx.bump_generation(created.id).await?, 2);
    tx.commit().await?;

    let prod = fixture.store.environment(&environment("prod")).await?.expect("prod exists");
    assert_eq!((prod.generation, prod.created_at), (2, 5));
    let names: Vec<String> = fixture.store.environments().await?.iter().map(|row| row.name.to_string()).collect();
    assert_eq!(names, ["dev", "prod"]);
    assert_eq!(fixture.store.environment(&environment("staging")).await?, None);
    Ok(())
}

#[tokio::test]
async fn dropping_a_transaction_without_commit_writes_nothing() -> TestResult {
    let fixture = fresh().await?;
    {
        let mut tx = fixture.store.begin().await?;
        let [a, b] = [key("a", "x"), key("b", "x")];
        let environment_id = register(&mut tx, "dev", &[&a, &b], 1).await?;
        tx.record_findings(
            environment_id,
            &FindingScope::Environment,
            &[finding(&a, &b, StageId::Lexical, Severity::High)],
            2,
        )
        .await?;
        tx.bump_generation(environment_id).await?;
    }
    assert!(fixture.store.environments().await?.is_empty());
    assert!(fixture.store.tools(&ToolFilter::default()).await?.is_empty());
    assert_eq!(fixture.store.conflict(1).await?, None);
    Ok(())
}

// --- conflicts ------------------------------------------------------------------------

#[tokio::test]
async fn conflicts_store_their_pair_in_canonical_order() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;

    let sync = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&b, &a, StageId::Lexical, Severity::High)],
        5,
    )
    .await?;
    let conflict = &sync.conflicts[0];
    assert_eq!((&conflict.finding.tool_a, &conflict.finding.tool_b), (&a, &b));
    assert_eq!(fixture.store.conflict(conflict.id).await?.as_ref(), Some(conflict));

    // The same pair named the other way round is the same conflict.
    let again = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &b, StageId::Lexical, Severity::High)],
        6,
    )
    .await?;
    assert_eq!((again.opened, again.conflicts[0].id), (0, conflict.id));
    Ok(())
}

#[tokio::test]
async fn findings_by_the_hundred_are_recorded_in_bulk_like_one_by_one() -> TestResult {
    // 30 tools, every pair a finding: 435 findings, several bulk chunks.
    let fixture = fresh().await?;
    let keys: Vec<ToolKey> = (0..30).map(|i| key(&format!("s{}", i % 3), &format!("tool_{i}"))).collect();
    let mut tx = fixture.store.begin().await?;
    let environment_id = register(&mut tx, "dev", &keys.iter().collect::<Vec<_>>(), 1).await?;
    tx.commit().await?;
    let pairs: Vec<(usize, usize)> = (0..keys.len()).flat_map(|i| (i + 1..keys.len()).map(move |j| (i, j))).collect();
    let all: Vec<Finding> =
        pairs.iter().map(|&(i, j)| finding(&keys[i], &keys[j], StageId::Lexical, Severity::Low)).collect();

    let first = record(&fixture.store, environment_id, FindingScope::Environment, &all, 5).await?;
    assert_eq!((first.opened, first.reopened, first.resolved), (435, 0, 0));
    let ids: Vec<i64> = first.conflicts.iter().map(|conflict| conflict.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "new conflicts get ids in the order of the findings");

    // Again: 100 pairs gone, 50 now high (changed), the rest the same.
    let mut again: Vec<Finding> = all[100..].to_vec();
    for found in &mut again[..50] {
        found.severity = Severity::High;
    }
    let second = record(&fixture.store, environment_id, FindingScope::Environment, &again, 9).await?;
    assert_eq!((second.opened, second.reopened, second.resolved), (0, 0, 100));
    assert_eq!(second.conflicts.iter().map(|conflict| conflict.id).collect::<Vec<_>>(), ids[100..].to_vec());
    assert!(second.conflicts[..50].iter().all(|conflict| conflict.finding.severity == Severity::High));
    assert!(second.conflicts[50..].iter().all(|conflict| conflict.finding.severity == Severity::Low));
    assert!(second.conflicts.iter().all(|conflict| conflict.last_seen_at == 9 && conflict.first_seen_at == 5));

    let listed = fixture.store.conflicts(environment_id, &ConflictFilter::default()).await?;
    let resolved = listed.iter().filter(|conflict| conflict.status == ConflictStatus::Resolved).count();
    assert_eq!((listed.len(), resolved), (435, 100));
    // A page of the list is that slice of the whole list.
    let page = fixture
        .store
        .conflicts(environment_id, &ConflictFilter { limit: Some(40), offset: 30, ..ConflictFilter::default() })
        .await?;
    assert_eq!(
        page.iter().map(|conflict| conflict.id).collect::<Vec<_>>(),
        listed[30..70].iter().map(|conflict| conflict.id).collect::<Vec<_>>()
    );
    // So is a page of a filtered list, past the first severity.
    let open_only = ConflictFilter { status: Some(ConflictStatus::Open), ..ConflictFilter::default() };
    let open: Vec<i64> = listed.iter().filter(|c| c.status == ConflictStatus::Open).map(|c| c.id).collect();
    let page = fixture
        .store
        .conflicts(environment_id, &ConflictFilter { limit: Some(25), offset: 40, ..open_only.clone() })
        .await?;
    assert_eq!(page.iter().map(|conflict| conflict.id).collect::<Vec<_>>(), open[40..65].to_vec());
    let tail = fixture.store.conflicts(environment_id, &ConflictFilter { offset: 300, ..open_only }).await?;
    assert_eq!(tail.iter().map(|conflict| conflict.id).collect::<Vec<_>>(), open[300..].to_vec());

    // A registration's scope: only the live conflicts of its tools can go.
    let live_of_last = listed
        .iter()
        .filter(|conflict| conflict.status == ConflictStatus::Open)
        .filter(|conflict| conflict.finding.tool_a == keys[29] || conflict.finding.tool_b == keys[29])
        .count() as u64;
    assert!(live_of_last > 0 && live_of_last < 29, "{live_of_last}");
    let scoped = record(&fixture.store, environment_id, FindingScope::Tools(vec![keys[29].clone()]), &[], 12).await?;
    assert_eq!(scoped.resolved, live_of_last);
    let after = fixture.store.conflicts(environment_id, &ConflictFilter::default()).await?;
    assert_eq!(
        after.iter().filter(|conflict| conflict.status == ConflictStatus::Resolved).count() as u64,
        100 + live_of_last
    );
    Ok(())
}

#[tokio::test]
async fn conflicts_list_most_severe_first_then_by_id() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, d]) = four_tools(&fixture.store).await?;
    let findings = [
        finding(&a, &b, StageId::Lexical, Severity::Low),
        finding(&a, &c, StageId::Lexical, Severity::Critical),
        finding(&a, &d, StageId::Lexical, Severity::Medium),
        finding(&b, &c, StageId::Lexical, Severity::High),
        finding(&b, &d, StageId::Lexical, Severity::Critical),
    ];
    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &findings, 5).await?;
    let ids: Vec<i64> = sync.conflicts.iter().map(|conflict| conflict.id).collect();

    let listed = fixture.store.conflicts(environment_id, &ConflictFilter::default()).await?;
    let order: Vec<(Severity, i64)> = listed.iter().map(|conflict| (conflict.finding.severity, conflict.id)).collect();
    assert_eq!(
        order,
        [
            (Severity::Critical, ids[1]),
            (Severity::Critical, ids[4]),
            (Severity::High, ids[3]),
            (Severity::Medium, ids[2]),
            (Severity::Low, ids[0]),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn conflict_filters_match_severity_stage_status_and_either_tool() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, d]) = four_tools(&fixture.store).await?;
    let findings = [
        finding(&a, &b, StageId::Lexical, Severity::High),
        finding(&a, &b, StageId::Semantic, Severity::Medium),
        finding(&c, &d, StageId::Lexical, Severity::Medium),
    ];
    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &findings, 5).await?;
    let ids: Vec<i64> = sync.conflicts.iter().map(|conflict| conflict.id).collect();
    fixture.store.set_conflict_status(ids[2], ConflictStatus::Acknowledged, 6).await?;

    let listed = |filter: ConflictFilter| {
        let store = fixture.store.clone();
        async move {
            store
                .conflicts(environment_id, &filter)
                .await
                .map(|conflicts| conflicts.iter().map(|c| c.id).collect::<Vec<_>>())
        }
    };
    assert_eq!(
        listed(ConflictFilter { severity: Some(Severity::Medium), ..Default::default() }).await?,
        [ids[1], ids[2]]
    );
    assert_eq!(listed(ConflictFilter { stage: Some(StageId::Lexical), ..Default::default() }).await?, [ids[0], ids[2]]);
    assert_eq!(
        listed(ConflictFilter { status: Some(ConflictStatus::Acknowledged), ..Default::default() }).await?,
        [ids[2]]
    );
    // `b` is the high side of its pair, `c` the low side of its own.
    assert_eq!(listed(ConflictFilter { tool: Some(b.clone()), ..Default::default() }).await?, [ids[0], ids[1]]);
    assert_eq!(listed(ConflictFilter { tool: Some(c.clone()), ..Default::default() }).await?, [ids[2]]);
    assert_eq!(
        listed(ConflictFilter { tool: Some(a.clone()), stage: Some(StageId::Semantic), ..Default::default() }).await?,
        [ids[1]]
    );
    assert!(listed(ConflictFilter { tool: Some(key("nobody", "x")), ..Default::default() }).await?.is_empty());
    assert!(fixture.store.conflicts(environment_id + 1, &ConflictFilter::default()).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn conflicts_involving_tools_include_every_status_and_either_side() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, d]) = four_tools(&fixture.store).await?;
    let findings = [
        finding(&a, &b, StageId::Lexical, Severity::Low),
        finding(&b, &c, StageId::Lexical, Severity::High),
        finding(&c, &d, StageId::Lexical, Severity::Medium),
    ];
    let ids: Vec<i64> = record(&fixture.store, environment_id, FindingScope::Environment, &findings, 5)
        .await?
        .conflicts
        .iter()
        .map(|conflict| conflict.id)
        .collect();
    fixture.store.set_conflict_status(ids[0], ConflictStatus::Suppressed, 6).await?;

    let involving: Vec<(i64, ConflictStatus)> = fixture
        .store
        .conflicts_involving(environment_id, &[b.clone(), key("nobody", "x")])
        .await?
        .iter()
        .map(|conflict| (conflict.id, conflict.status))
        .collect();
    assert_eq!(involving, [(ids[1], ConflictStatus::Open), (ids[0], ConflictStatus::Suppressed)]);
    assert!(fixture.store.conflicts_involving(environment_id, &[]).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn setting_a_conflict_status_returns_the_conflict_or_none() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;
    let sync = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &b, StageId::Lexical, Severity::High)],
        5,
    )
    .await?;
    let updated = fixture.store.set_conflict_status(sync.conflicts[0].id, ConflictStatus::Suppressed, 7).await?;
    let updated = updated.expect("the conflict exists");
    assert_eq!((updated.status, updated.updated_at, updated.first_seen_at), (ConflictStatus::Suppressed, 7, 5));
    assert_eq!(fixture.store.set_conflict_status(999, ConflictStatus::Open, 8).await?, None);
    Ok(())
}

// --- record_findings: the conflict lifecycle --------------------------------------------

#[tokio::test]
async fn new_findings_open_conflicts_first_seen_now() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, _]) = four_tools(&fixture.store).await?;
    let findings =
        [finding(&a, &b, StageId::Lexical, Severity::High), finding(&c, &a, StageId::Semantic, Severity::Low)];
    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &findings, 100).await?;

    assert_eq!((sync.opened, sync.reopened, sync.resolved), (2, 0, 0));
    assert_eq!(sync.conflicts.len(), 2);
    let first = &sync.conflicts[0];
    assert_eq!(first.status, ConflictStatus::Open);
    assert_eq!((first.first_seen_at, first.last_seen_at, first.updated_at), (100, 100, 100));
    assert_eq!(first.environment, environment("dev"));
    assert_eq!(first.finding, findings[0]);
    let second = &sync.conflicts[1];
    assert_eq!((&second.finding.tool_a, &second.finding.tool_b), (&a, &c));
    assert_eq!((second.finding.stage, second.finding.severity), (StageId::Semantic, Severity::Low));
    Ok(())
}

#[tokio::test]
async fn a_recording_in_batches_opens_reopens_and_resolves_across_the_batches() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, d]) = four_tools(&fixture.store).await?;
    let first = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &b, StageId::Lexical, Severity::High), finding(&c, &d, StageId::Lexical, Severity::High)],
        100,
    )
    .await?;
    let (ab, cd) = (first.conflicts[0].id, first.conflicts[1].id);
    fixture.store.set_conflict_status(ab, ConflictStatus::Resolved, 150).await?;

    // a~b comes back (reopens), a~c is new, c~d is in no batch (resolved), b~c is named
    // twice, from both sides (one conflict).
    let mut tx = fixture.store.begin().await?;
    let mut recording = tx.start_recording(environment_id, FindingScope::Environment, 200).await?;
    let one = tx
        .record_batch(
            &mut recording,
            &[finding(&a, &b, StageId::Lexical, Severity::High), finding(&a, &c, StageId::Semantic, Severity::Low)],
        )
        .await?;
    let two = tx
        .record_batch(
            &mut recording,
            &[finding(&b, &c, StageId::Lexical, Severity::Low), finding(&c, &b, StageId::Lexical, Severity::Medium)],
        )
        .await?;
    let sync = tx.finish_recording(recording).await?;
    tx.commit().await?;

    assert_eq!((sync.opened, sync.reopened, sync.resolved), (2, 1, 1));
    assert!(sync.conflicts.is_empty(), "a batched recording hands back counts, not conflicts");
    assert_eq!((one[0].id, one[0].opened), (ab, false));
    assert!(one[1].opened && one[1].id != cd);
    assert_eq!(two[0].id, two[1].id, "one pair and stage is one conflict, whichever side names it first");
    assert!(two[0].opened);
    let status = |id| {
        let store = &fixture.store;
        async move { store.conflict(id).await.map(|conflict| conflict.map(|c| (c.status, c.finding.severity))) }
    };
    assert_eq!(status(ab).await?, Some((ConflictStatus::Open, Severity::High)));
    assert_eq!(status(cd).await?, Some((ConflictStatus::Resolved, Severity::High)));
    assert_eq!(status(two[0].id).await?, Some((ConflictStatus::Open, Severity::Medium)), "the later finding wins");
    Ok(())
}

#[tokio::test]
async fn findings_seen_again_update_the_evidence_and_keep_the_triage() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;
    let first = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &b, StageId::Lexical, Severity::Medium)],
        100,
    )
    .await?;
    let id = first.conflicts[0].id;
    fixture.store.set_conflict_status(id, ConflictStatus::Acknowledged, 150).await?;

    let mut changed = finding(&a, &b, StageId::Lexical, Severity::Critical);
    changed.kind = ConflictKind::NormalizedName;
    changed.score = 0.9;
    changed.evidence = json!({"normalized": "x"});
    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &[changed.clone()], 200).await?;

    assert_eq!((sync.opened, sync.reopened, sync.resolved), (0, 0, 0));
    let conflict = &sync.conflicts[0];
    assert_eq!(conflict.id, id);
    assert_eq!(conflict.finding, changed);
    assert_eq!(conflict.status, ConflictStatus::Acknowledged);
    assert_eq!((conflict.first_seen_at, conflict.last_seen_at, conflict.updated_at), (100, 200, 150));
    Ok(())
}

#[tokio::test]
async fn conflicts_not_found_again_within_the_tools_scope_are_resolved() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, d]) = four_tools(&fixture.store).await?;
    let findings = [
        finding(&a, &b, StageId::Lexical, Severity::High),
        finding(&b, &c, StageId::Lexical, Severity::High),
        finding(&c, &d, StageId::Lexical, Severity::High),
    ];
    record(&fixture.store, environment_id, FindingScope::Environment, &findings, 100).await?;

    // `b` changed: its check finds nothing now. Conflicts without `b` are not its to judge.
    let sync = record(&fixture.store, environment_id, FindingScope::Tools(vec![b.clone()]), &[], 200).await?;
    assert_eq!((sync.opened, sync.reopened, sync.resolved), (0, 0, 2));
    assert!(sync.conflicts.is_empty());
    let all = fixture.store.conflicts(environment_id, &ConflictFilter::default()).await?;
    assert_eq!(
        statuses(&all),
        [
            ("a/x~b/x".to_owned(), ConflictStatus::Resolved),
            ("b/x~c/y".to_owned(), ConflictStatus::Resolved),
            ("c/y~d/y".to_owned(), ConflictStatus::Open),
        ]
    );
    assert_eq!((all[0].updated_at, all[0].last_seen_at), (200, 100));
    assert_eq!(all[2].updated_at, 100);
    Ok(())
}

#[tokio::test]
async fn a_conflict_in_another_stage_is_gone_when_only_one_stage_finds_the_pair() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;
    let both = [finding(&a, &b, StageId::Lexical, Severity::High), finding(&a, &b, StageId::Semantic, Severity::High)];
    record(&fixture.store, environment_id, FindingScope::Environment, &both, 100).await?;

    let sync = record(&fixture.store, environment_id, FindingScope::Tools(vec![a.clone()]), &both[..1], 200).await?;
    assert_eq!((sync.opened, sync.resolved), (0, 1));
    let by_stage = |stage| ConflictFilter { stage: Some(stage), ..ConflictFilter::default() };
    assert_eq!(
        fixture.store.conflicts(environment_id, &by_stage(StageId::Lexical)).await?[0].status,
        ConflictStatus::Open
    );
    assert_eq!(
        fixture.store.conflicts(environment_id, &by_stage(StageId::Semantic)).await?[0].status,
        ConflictStatus::Resolved
    );
    Ok(())
}

#[tokio::test]
async fn the_environment_scope_resolves_every_live_conflict_not_found_again() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, d]) = four_tools(&fixture.store).await?;
    let findings = [
        finding(&a, &b, StageId::Lexical, Severity::High),
        finding(&b, &c, StageId::Lexical, Severity::High),
        finding(&c, &d, StageId::Lexical, Severity::High),
    ];
    let ids: Vec<i64> = record(&fixture.store, environment_id, FindingScope::Environment, &findings, 100)
        .await?
        .conflicts
        .iter()
        .map(|conflict| conflict.id)
        .collect();
    fixture.store.set_conflict_status(ids[1], ConflictStatus::Acknowledged, 110).await?;
    fixture.store.set_conflict_status(ids[2], ConflictStatus::Suppressed, 110).await?;

    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &findings[..1], 200).await?;
    assert_eq!((sync.opened, sync.reopened, sync.resolved), (0, 0, 1));
    let all = fixture.store.conflicts(environment_id, &ConflictFilter::default()).await?;
    assert_eq!(
        statuses(&all),
        [
            ("a/x~b/x".to_owned(), ConflictStatus::Open),
            ("b/x~c/y".to_owned(), ConflictStatus::Resolved),
            ("c/y~d/y".to_owned(), ConflictStatus::Suppressed),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_resolved_conflict_found_again_is_reopened() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;
    let found = [finding(&a, &b, StageId::Lexical, Severity::High)];
    record(&fixture.store, environment_id, FindingScope::Environment, &found, 100).await?;
    let gone = record(&fixture.store, environment_id, FindingScope::Environment, &[], 200).await?;
    assert_eq!(gone.resolved, 1);

    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &found, 300).await?;
    assert_eq!((sync.opened, sync.reopened, sync.resolved), (0, 1, 0));
    let conflict = &sync.conflicts[0];
    assert_eq!(conflict.status, ConflictStatus::Open);
    assert_eq!((conflict.first_seen_at, conflict.last_seen_at, conflict.updated_at), (100, 300, 300));
    Ok(())
}

#[tokio::test]
async fn a_suppressed_conflict_stays_suppressed_unless_its_severity_rises() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;
    let sync = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &b, StageId::Lexical, Severity::Medium)],
        100,
    )
    .await?;
    fixture.store.set_conflict_status(sync.conflicts[0].id, ConflictStatus::Suppressed, 110).await?;

    for (now, severity) in [(200, Severity::Medium), (300, Severity::Low)] {
        let sync = record(
            &fixture.store,
            environment_id,
            FindingScope::Environment,
            &[finding(&a, &b, StageId::Lexical, severity)],
            now,
        )
        .await?;
        assert_eq!(sync.reopened, 0);
        assert_eq!((sync.conflicts[0].status, sync.conflicts[0].updated_at), (ConflictStatus::Suppressed, 110));
    }
    // Accepted at low; it is medium again now, which is more than was accepted.
    let sync = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &b, StageId::Lexical, Severity::Medium)],
        400,
    )
    .await?;
    assert_eq!(sync.reopened, 1);
    assert_eq!((sync.conflicts[0].status, sync.conflicts[0].updated_at), (ConflictStatus::Open, 400));
    Ok(())
}

#[tokio::test]
async fn the_later_of_two_findings_for_one_pair_and_stage_wins() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, c, _]) = four_tools(&fixture.store).await?;
    let findings = [
        finding(&a, &b, StageId::Lexical, Severity::Low),
        finding(&a, &c, StageId::Lexical, Severity::Low),
        finding(&b, &a, StageId::Lexical, Severity::Critical),
    ];
    let sync = record(&fixture.store, environment_id, FindingScope::Environment, &findings, 100).await?;

    assert_eq!(sync.opened, 2);
    assert_eq!(sync.conflicts.len(), 3);
    assert_eq!(sync.conflicts[0], sync.conflicts[2]);
    assert_eq!(sync.conflicts[0].finding.severity, Severity::Critical);
    assert_eq!(fixture.store.conflicts(environment_id, &ConflictFilter::default()).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_finding_naming_an_unregistered_tool_is_refused() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, ..]) = four_tools(&fixture.store).await?;
    let ghost = key("ghost", "x");
    let result = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &ghost, StageId::Lexical, Severity::High)],
        5,
    )
    .await;
    match result {
        Err(StoreError::UnknownTool(named)) => assert_eq!(named, "ghost/x"),
        other => panic!("expected UnknownTool, got {other:?}"),
    }
    // Registered in another environment is still unknown here.
    let mut tx = fixture.store.begin().await?;
    register(&mut tx, "prod", &[&ghost], 6).await?;
    tx.commit().await?;
    let result = record(
        &fixture.store,
        environment_id,
        FindingScope::Environment,
        &[finding(&a, &ghost, StageId::Lexical, Severity::High)],
        7,
    )
    .await;
    assert!(matches!(result, Err(StoreError::UnknownTool(_))));
    Ok(())
}

// --- health ---------------------------------------------------------------------------

#[tokio::test]
async fn health_counts_leave_out_tools_not_live_and_settled_conflicts() -> TestResult {
    let fixture = fresh().await?;
    let keys: Vec<ToolKey> = ["a", "b", "c", "d", "e", "f"].iter().map(|s| key(s, "x")).collect();
    let mut tx = fixture.store.begin().await?;
    let environment_id = register(&mut tx, "dev", &keys.iter().collect::<Vec<_>>(), 1).await?;
    let ids: Vec<i64> = fixture_tool_ids(&mut tx, environment_id, &keys).await?;
    tx.set_tool_status(ids[1], ToolStatus::PendingApproval, 2).await?;
    tx.set_tool_status(ids[2], ToolStatus::Deprecated, 2).await?;
    tx.set_tool_status(ids[4], ToolStatus::Blocked, 2).await?;
    tx.set_tool_status(ids[5], ToolStatus::Removed, 2).await?;
    let [a, b, c, d, e, f] = [&keys[0], &keys[1], &keys[2], &keys[3], &keys[4], &keys[5]];
    let sync = tx
        .record_findings(
            environment_id,
            &FindingScope::Environment,
            &[
                finding(a, b, StageId::Lexical, Severity::Critical),
                finding(a, c, StageId::Lexical, Severity::High),
                finding(b, c, StageId::Lexical, Severity::High),
                finding(c, d, StageId::Lexical, Severity::Low),
                finding(a, d, StageId::Lexical, Severity::Medium),
                finding(b, d, StageId::Lexical, Severity::Medium),
                finding(a, e, StageId::Lexical, Severity::Critical),
                finding(a, f, StageId::Lexical, Severity::Critical),
            ],
            3,
        )
        .await?;
    tx.commit().await?;
    fixture.store.set_conflict_status(sync.conflicts[2].id, ConflictStatus::Acknowledged, 4).await?;
    fixture.store.set_conflict_status(sync.conflicts[4].id, ConflictStatus::Suppressed, 4).await?;
    fixture.store.set_conflict_status(sync.conflicts[5].id, ConflictStatus::Resolved, 4).await?;

    let mut other = fixture.store.begin().await?;
    register(&mut other, "prod", &[&key("z", "x")], 5).await?;
    other.commit().await?;

    assert_eq!(
        fixture.store.health_counts(environment_id).await?,
        HealthCounts {
            live_tools: 4,
            pending_approval: 1,
            conflicts: SeverityCounts { critical: 1, high: 2, medium: 0, low: 1 },
        }
    );
    assert_eq!(fixture.store.health_counts(environment_id + 99).await?, HealthCounts::default());
    Ok(())
}

async fn fixture_tool_ids(tx: &mut StoreTx, environment_id: i64, keys: &[ToolKey]) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::new();
    for key in keys {
        let def = tool(key.name.as_str(), "Does one thing well");
        ids.push(tx.upsert_tool(environment_id, &key.server, &def, ToolStatus::Active, 1).await?.id);
    }
    Ok(ids)
}

// --- the job queue --------------------------------------------------------------------

#[tokio::test]
async fn enqueueing_a_job_creates_its_environment_and_queues_it() -> TestResult {
    let fixture = fresh().await?;
    let job = fixture.store.enqueue_job(JobKind::Analysis, &environment("staging"), None, 10).await?;
    assert_eq!((job.kind, job.status, job.attempts), (JobKind::Analysis, JobStatus::Queued, 0));
    assert_eq!((job.progress_done, job.progress_total, &job.result, &job.error), (0, 0, &Value::Null, &None));
    assert_eq!((job.created_at, job.started_at, job.finished_at), (10, None, None));
    assert_eq!(job.environment, environment("staging"));
    assert!(fixture.store.environment(&environment("staging")).await?.is_some());
    assert_eq!(fixture.store.job(job.id).await?, Some(job));
    Ok(())
}

#[tokio::test]
async fn jobs_are_claimed_oldest_first_and_only_once() -> TestResult {
    let fixture = fresh().await?;
    let second = fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, 20).await?;
    let first = fixture.store.enqueue_job(JobKind::Analysis, &environment("prod"), None, 10).await?;

    let claimed = fixture.store.claim_job(100, 1_000).await?.expect("a queued job");
    assert_eq!(claimed.id, first.id);
    assert_eq!((claimed.status, claimed.attempts, claimed.started_at), (JobStatus::Running, 1, Some(100)));
    let next = fixture.store.claim_job(100, 1_000).await?.expect("another queued job");
    assert_eq!(next.id, second.id);
    assert_eq!(fixture.store.claim_job(100, 1_000).await?, None);
    Ok(())
}

#[tokio::test]
async fn concurrent_claims_never_take_the_same_job() -> TestResult {
    let fixture = fresh().await?;
    for now in 0..8 {
        fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, now).await?;
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let store = fixture.store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while let Some(job) = store.claim_job(100, 10_000).await? {
                    ids.push(job.id);
                }
                Ok::<_, StoreError>(ids)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await??);
    }
    claimed.sort_unstable();
    assert_eq!(claimed, (1..=8).collect::<Vec<i64>>());
    Ok(())
}

#[tokio::test]
async fn a_job_whose_lease_expired_is_claimed_again() -> TestResult {
    let fixture = fresh().await?;
    let job = fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, 10).await?;
    fixture.store.claim_job(100, 50).await?.expect("queued");

    assert_eq!(fixture.store.claim_job(150, 50).await?, None, "the lease runs until 150");
    let reclaimed = fixture.store.claim_job(151, 50).await?.expect("the lease expired");
    assert_eq!(reclaimed.id, job.id);
    assert_eq!((reclaimed.status, reclaimed.attempts, reclaimed.started_at), (JobStatus::Running, 2, Some(100)));
    Ok(())
}

#[tokio::test]
async fn progress_is_recorded_and_extends_the_lease() -> TestResult {
    let fixture = fresh().await?;
    let job = fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, 10).await?;
    fixture.store.claim_job(100, 50).await?.expect("queued");
    fixture.store.update_job_progress(job.id, 3, 10, 140, 50).await?;

    let running = fixture.store.job(job.id).await?.expect("exists");
    assert_eq!((running.progress_done, running.progress_total), (3, 10));
    assert_eq!(fixture.store.claim_job(180, 50).await?, None, "the lease now runs until 190");
    assert_eq!(fixture.store.claim_job(191, 50).await?.map(|job| job.attempts), Some(2));
    assert!(matches!(
        fixture.store.update_job_progress(job.id + 1, 1, 1, 200, 50).await,
        Err(StoreError::Database(sqlx::Error::RowNotFound))
    ));
    Ok(())
}

#[tokio::test]
async fn finishing_a_job_records_its_result_or_its_error() -> TestResult {
    let fixture = fresh().await?;
    let ok = fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, 10).await?;
    let bad = fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, 11).await?;
    fixture.store.claim_job(100, 50).await?;
    fixture.store.claim_job(100, 50).await?;

    let succeeded = fixture.store.finish_job(ok.id, Ok(json!({"conflicts": 3, "opened": 1})), 200).await?;
    assert_eq!(
        (succeeded.status, &succeeded.result, &succeeded.error),
        (JobStatus::Succeeded, &json!({"conflicts": 3, "opened": 1}), &None)
    );
    assert_eq!((succeeded.started_at, succeeded.finished_at), (Some(100), Some(200)));
    let failed = fixture.store.finish_job(bad.id, Err("the embedder is down".to_owned()), 210).await?;
    assert_eq!(
        (failed.status, &failed.result, failed.error.as_deref()),
        (JobStatus::Failed, &Value::Null, Some("the embedder is down"))
    );
    assert_eq!(failed.finished_at, Some(210));
    assert_eq!(fixture.store.job(ok.id).await?, Some(succeeded));
    // A finished job is not claimed again, whatever the time.
    assert_eq!(fixture.store.claim_job(10_000, 50).await?, None);
    assert!(matches!(
        fixture.store.finish_job(999, Ok(Value::Null), 300).await,
        Err(StoreError::Database(sqlx::Error::RowNotFound))
    ));
    Ok(())
}

// --- opening --------------------------------------------------------------------------

#[tokio::test]
async fn opening_an_unsupported_url_fails() {
    for url in ["postgres://localhost/mtgs", "mysql://localhost/mtgs", "/tmp/mtgs.db", "sqlite://"] {
        match Store::open(url).await {
            Err(StoreError::UnsupportedUrl(named)) => assert_eq!(named, url),
            other => panic!("{url}: expected UnsupportedUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn reopening_a_data_directory_keeps_its_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("nested dir").join("100% data");
    {
        let store = Store::open_data_dir(&data_dir).await?;
        store.ping().await?;
        let mut tx = store.begin().await?;
        register(&mut tx, "dev", &[&key("a", "x")], 1).await?;
        tx.commit().await?;
    }
    assert!(data_dir.join(mtgs_store::DATABASE_FILE).is_file());

    let store = Store::open_data_dir(&data_dir).await?;
    let tools = store.tools(&ToolFilter::default()).await?;
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].def.name.as_str(), "x");
    Ok(())
}

#[tokio::test]
async fn a_data_directory_that_cannot_be_created_is_reported_with_its_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    match Store::open_data_dir(&file.join("data")).await {
        Err(StoreError::DataDir { path, .. }) => assert!(path.ends_with("a-file/data"), "{path}"),
        other => panic!("expected DataDir, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_database_uses_wal_and_foreign_keys() -> TestResult {
    let fixture = fresh().await?;
    // Something to make the file non-empty, then look at it from outside the store.
    fixture.store.enqueue_job(JobKind::Analysis, &environment("dev"), None, 1).await?;
    let mut raw = raw_connection(&fixture).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut raw).await?;
    assert_eq!(mode, "wal");

    // A tool in an environment that does not exist breaks a foreign key.
    let mut tx = fixture.store.begin().await?;
    let result = tx.upsert_tool(999, &server("s"), &tool("t", "Does one thing well"), ToolStatus::Active, 1).await;
    assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
    Ok(())
}

// --- the schema agrees with mtgs-core ------------------------------------------------------

#[tokio::test]
async fn the_schema_accepts_every_enum_value_mtgs_core_defines() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, b, ..]) = four_tools(&fixture.store).await?;

    let mut tx = fixture.store.begin().await?;
    let tool_id =
        tx.upsert_tool(environment_id, &a.server, &tool("x", "Does one thing well"), ToolStatus::Active, 1).await?.id;
    for status in ToolStatus::ALL {
        tx.set_tool_status(tool_id, *status, 2).await?;
    }
    // One finding per batch: within a batch, findings for one pair and stage overwrite each other.
    let mut conflicts = Vec::new();
    for (index, kind) in ConflictKind::ALL.iter().enumerate() {
        let stage = StageId::ALL[index % StageId::ALL.len()];
        let severity = Severity::ALL[index % Severity::ALL.len()];
        let found = Finding { kind: *kind, ..finding(&a, &b, stage, severity) };
        let sync =
            tx.record_findings(environment_id, &FindingScope::Tools(vec![]), std::slice::from_ref(&found), 3).await?;
        assert_eq!(sync.conflicts[0].finding, found);
        conflicts.push(sync.conflicts[0].clone());
    }
    tx.commit().await?;
    let stages: std::collections::BTreeSet<StageId> = conflicts.iter().map(|c| c.finding.stage).collect();
    assert_eq!(stages.len(), StageId::ALL.len());
    let severities: std::collections::BTreeSet<Severity> = conflicts.iter().map(|c| c.finding.severity).collect();
    assert_eq!(severities.len(), Severity::ALL.len());
    for status in ConflictStatus::ALL {
        let conflict = fixture.store.set_conflict_status(conflicts[0].id, *status, 4).await?;
        assert_eq!(conflict.map(|c| c.status), Some(*status));
    }
    // JobKind and JobStatus: every kind is enqueued, and a job goes through every status.
    for kind in JobKind::ALL {
        fixture.store.enqueue_job(*kind, &environment("dev"), None, 5).await?;
    }
    let claimed = fixture.store.claim_job(6, 10).await?.expect("queued");
    fixture.store.finish_job(claimed.id, Ok(Value::Null), 7).await?;
    fixture.store.finish_job(claimed.id, Err("failed".to_owned()), 8).await?;

    // Every role on a key, every approval status on a request.
    let mut tx = fixture.store.begin().await?;
    for (index, role) in mtgs_core::Role::ALL.iter().enumerate() {
        let hash = format!("{index:064}");
        let key = tx
            .insert_api_key(&mtgs_store::NewKeyRow {
                prefix: &format!("mtgs_{index:08}"),
                hash: &hash,
                name: "k",
                role: *role,
                created_by: "local:tests",
                created_at: 9,
            })
            .await?;
        assert_eq!(key.role, *role);
    }
    // Pending last: a tool has at most one pending request at a time.
    for status in mtgs_core::ApprovalStatus::ALL.iter().rev() {
        let approval = tx
            .insert_approval(&mtgs_store::NewApproval {
                environment_id,
                tool_id,
                definition_hash: "h",
                reason: &Value::Null,
                diff: None,
                requested_by: "local:tests",
                requested_at: 10,
                expires_at: 20,
            })
            .await?;
        let decision =
            mtgs_store::ApprovalDecision { status: *status, decided_by: "local:tests", decided_at: 11, comment: None };
        assert!(tx.decide_approval(approval.id, &decision).await?);
        assert_eq!(tx.approval(approval.id).await?.map(|approval| approval.status), Some(*status));
    }
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn a_tool_has_at_most_one_pending_request_and_a_decision_lands_once() -> TestResult {
    let fixture = fresh().await?;
    let (environment_id, [a, ..]) = four_tools(&fixture.store).await?;
    let tool_id =
        fixture.store.tools(&ToolFilter::default()).await?.iter().find(|tool| tool.def.name == a.name).expect("a").id;
    let request = |expires_at| mtgs_store::NewApproval {
        environment_id,
        tool_id,
        definition_hash: "h",
        reason: &Value::Null,
        diff: None,
        requested_by: "key:mtgs_00000001",
        requested_at: 1,
        expires_at,
    };
    let mut tx = fixture.store.begin().await?;
    let first = tx.insert_approval(&request(100)).await?.id;
    tx.commit().await?;
    let mut tx = fixture.store.begin().await?;
    assert!(tx.insert_approval(&request(100)).await.is_err(), "a second pending request for one tool");
    drop(tx);
    assert!(!fixture.store.has_due_approvals(99).await?);
    assert!(fixture.store.has_due_approvals(100).await?);
    let mut tx = fixture.store.begin().await?;
    let due = tx.due_approvals(100).await?;
    assert_eq!(due.iter().map(|(approval, tool)| (approval.id, *tool)).collect::<Vec<_>>(), [(first, tool_id)]);
    let approve = mtgs_store::ApprovalDecision {
        status: mtgs_core::ApprovalStatus::Approved,
        decided_by: "x",
        decided_at: 5,
        comment: Some("ok"),
    };
    assert!(tx.decide_approval(first, &approve).await?);
    assert!(!tx.decide_approval(first, &approve).await?, "decided already");
    // Decided: the tool may have a new pending request.
    tx.insert_approval(&request(200)).await?;
    tx.commit().await?;
    let approval = fixture.store.approval(first).await?.expect("stored");
    assert_eq!(
        (approval.status, approval.comment.as_deref(), approval.tool.name.as_str()),
        (mtgs_core::ApprovalStatus::Approved, Some("ok"), a.name.as_str())
    );
    Ok(())
}

#[tokio::test]
async fn a_stored_definition_that_no_longer_parses_is_reported_as_corrupt() -> TestResult {
    let fixture = fresh().await?;
    four_tools(&fixture.store).await?;
    let mut raw = raw_connection(&fixture).await?;
    sqlx::query("UPDATE tools SET definition = '{\"name\": \"x\"}' WHERE id = 1").execute(&mut raw).await?;

    match fixture.store.tools(&ToolFilter::default()).await {
        Err(StoreError::Corrupt { table: "tools", reason }) => {
            assert_eq!(reason, "definition: inputSchema: is required (MCP requires a JSON Schema object)");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    Ok(())
}

/// A connection of its own to the fixture's database file, to look at or damage it.
async fn raw_connection(fixture: &Fixture) -> Result<sqlx::SqliteConnection, sqlx::Error> {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", fixture.dir.path().join("test.db").display())).await
}

#[tokio::test]
async fn embeddings_are_cached_per_model_and_never_mixed() -> TestResult {
    let fixture = fresh().await?;
    let store = &fixture.store;
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    store.put_embeddings("model-1", &[(a.clone(), vec![0.6, 0.8]), (b.clone(), vec![1.0, 0.0])], 1).await?;
    // A second write of a cached fingerprint keeps the first vector.
    store.put_embeddings("model-1", &[(a.clone(), vec![0.0, 1.0])], 2).await?;
    store.put_embeddings("model-2", &[(a.clone(), vec![0.0, 0.0, 1.0])], 3).await?;

    let found = store.embeddings("model-1", &[a.as_str(), b.as_str(), &"c".repeat(64)]).await?;
    assert_eq!(found.len(), 2);
    assert_eq!(found[&a], vec![0.6, 0.8]);
    assert_eq!(store.embeddings("model-2", &[a.as_str(), b.as_str()]).await?[&a], vec![0.0, 0.0, 1.0]);
    assert!(store.embeddings("model-3", &[a.as_str()]).await?.is_empty());
    assert_eq!(store.embedding_counts().await?, vec![("model-1".into(), 2), ("model-2".into(), 1)]);
    Ok(())
}

#[tokio::test]
async fn many_embeddings_are_written_and_read_in_chunks() -> TestResult {
    let fixture = fresh().await?;
    let vectors: Vec<(String, Vec<f32>)> = (0..1_000).map(|i| (format!("{i:064}"), vec![i as f32; 384])).collect();
    fixture.store.put_embeddings("m", &vectors, 1).await?;
    let keys: Vec<&str> = vectors.iter().map(|(key, _)| key.as_str()).collect();
    let found = fixture.store.embeddings("m", &keys).await?;
    assert_eq!(found.len(), 1_000);
    assert_eq!(found[&vectors[999].0], vectors[999].1);
    Ok(())
}

#[tokio::test]
async fn a_malformed_fingerprint_is_refused_by_the_schema() -> TestResult {
    let fixture = fresh().await?;
    assert!(fixture.store.put_embeddings("m", &[("short".into(), vec![1.0])], 1).await.is_err());
    assert!(fixture.store.embeddings("m", &["short"]).await?.is_empty());
    Ok(())
}
