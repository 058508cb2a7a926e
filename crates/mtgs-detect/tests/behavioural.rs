//! Stage 4 and impact simulation with the local router on BM25 relevance alone (no
//! embedding model: the configuration a user gets with `--embedder off`). Routing with
//! the real model is tested through the service and the CLI.

use mtgs_core::{ServerName, Severity, StageId, ToolDef, ToolKey, Verdict};
use std::sync::Arc;

use mtgs_detect::behavioural::{Bands, BehaviouralStage, BehaviouralThresholds};
use mtgs_detect::probes::ProbeSettings;
use mtgs_detect::routing::{LocalRouter, RoutingIndex, RoutingQuery, RoutingSettings};
use mtgs_detect::semantic::{Embedding, ExactIndex, SemanticThresholds};
use mtgs_detect::simulation::{SimulationError, SuppliedProbe};
use mtgs_detect::{Detector, PreparedTool};
use serde_json::{Value, json};

fn def(value: Value) -> ToolDef {
    ToolDef::parse(&value).expect("valid").def
}

fn key(server: &str, name: &str) -> ToolKey {
    ToolKey {
        server: ServerName::parse(server).expect("server"),
        name: def(json!({"name": name, "inputSchema": {"type": "object"}})).name,
    }
}

fn jira_create_task() -> ToolDef {
    def(json!({
        "name": "create_task",
        "description": "Create a new task with a title, description and priority.",
        "inputSchema": {"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string", "description": "Task title"},
            "priority": {"type": "string", "enum": ["highest", "high", "medium", "low"]}
        }}
    }))
}

/// Salesforce's task tool as terse as many published definitions are.
fn salesforce_create_task() -> ToolDef {
    def(json!({
        "name": "create_sf_task",
        "description": "Creates a task.",
        "inputSchema": {"type": "object", "required": ["subject"], "properties": {
            "subject": {"type": "string"},
            "priority": {"type": "string", "enum": ["High", "Normal", "Low"]},
            "who_id": {"type": "string", "description": "Lead or contact id"}
        }}
    }))
}

/// The same tool with a description that says what it is for.
fn salesforce_create_task_described() -> ToolDef {
    def(json!({
        "name": "create_sf_task",
        "description": "Create a follow-up task on a Salesforce lead, contact or opportunity (calls, emails, meetings).",
        "inputSchema": {"type": "object", "required": ["subject"], "properties": {
            "subject": {"type": "string", "description": "What to follow up on"},
            "priority": {"type": "string", "enum": ["High", "Normal", "Low"]},
            "who_id": {"type": "string", "description": "Lead or contact id"}
        }}
    }))
}

fn unrelated() -> Vec<(&'static str, ToolDef)> {
    vec![
        (
            "slack",
            def(json!({"name": "send_message", "description": "Post a message to a Slack channel.",
            "inputSchema": {"type": "object", "properties": {"channel": {"type": "string"}, "text": {"type": "string"}}}})),
        ),
        (
            "weather",
            def(json!({"name": "get_forecast", "description": "Get the weather forecast for a city.",
            "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}})),
        ),
        (
            "github",
            def(json!({"name": "create_pull_request", "description": "Open a pull request in a GitHub repository.",
            "inputSchema": {"type": "object", "properties": {"owner": {"type": "string"}, "repo": {"type": "string"}, "title": {"type": "string"}}}})),
        ),
        (
            "filesystem",
            def(json!({"name": "read_file", "description": "Read a file from disk and return its text.",
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}})),
        ),
    ]
}

fn environment() -> Detector {
    let mut detector = Detector::with_default_stages()
        .with_behavioural(BehaviouralStage::local(Box::new(ExactIndex::new(0)), RoutingSettings::default()));
    detector.insert(ServerName::parse("jira").expect("server"), jira_create_task());
    for (server, tool) in unrelated() {
        detector.insert(ServerName::parse(server).expect("server"), tool);
    }
    detector
}

#[test]
fn a_salesforce_task_tool_beside_jiras_create_task_blocks_and_the_report_shows_where_requests_go() {
    let detector = environment();
    let candidate = PreparedTool::new(ServerName::parse("salesforce").expect("server"), salesforce_create_task());
    let supplied = vec![
        SuppliedProbe {
            query: RoutingQuery::new("Create a Salesforce task to call back the Acme lead tomorrow", None),
            expected: Some(key("salesforce", "create_sf_task")),
        },
        SuppliedProbe {
            query: RoutingQuery::new("Create a task: fix the login timeout, priority high", None),
            expected: Some(key("jira", "create_task")),
        },
    ];
    let report = detector.simulate(std::slice::from_ref(&candidate), &supplied, None, 2).expect("simulated");

    let jira = key("jira", "create_task");
    let to_jira: Vec<&str> = report
        .candidate_probes
        .iter()
        .filter(|probe| probe.after.as_ref() == Some(&jira))
        .map(|probe| probe.query.as_str())
        .collect();
    assert!(!to_jira.is_empty(), "some Salesforce requests still go to Jira: {:#?}", report.candidate_probes);
    let worst = &report.pairs[0];
    assert_eq!((&worst.candidate, &worst.existing), (&candidate.key, &jira), "{:#?}", report.pairs);
    assert!(worst.severity >= Some(Severity::High), "{worst:#?}");
    assert_eq!(report.verdict, Verdict::Block);
    assert_eq!(report.router, "local-retrieval");
    assert!(report.router_is.contains("not an LLM"));

    // The supplied probe naming Salesforce has nowhere to go before and the candidate after.
    assert_eq!(report.probes[0].before.as_ref(), Some(&jira));
    assert_eq!(report.probes[0].after.as_ref(), Some(&candidate.key));
    // ... and the terse candidate takes Jira's generic request: still one of two served right.
    assert_eq!(report.probes[1].before.as_ref(), Some(&jira));
    assert_eq!(report.probes[1].after.as_ref(), Some(&candidate.key));
    assert_eq!((report.labelled_probes, report.accuracy_before, report.accuracy), (2, Some(0.5), Some(0.5)));
    // Every cell of the confusion delta moved.
    assert!(report.confusion_delta.iter().all(|cell| cell.before != cell.after));
    assert!(
        report.confusion_delta.iter().any(|cell| cell.expected == candidate.key && cell.routed.as_ref() == Some(&jira))
    );
}

#[test]
fn a_description_that_says_what_the_tool_is_for_keeps_more_of_its_requests() {
    let detector = environment();
    let jira = key("jira", "create_task");
    let to_jira = |definition: ToolDef| {
        let candidate = PreparedTool::new(ServerName::parse("salesforce").expect("server"), definition);
        let report = detector.simulate(&[candidate], &[], None, 1).expect("simulated");
        report.candidate_probes.iter().filter(|probe| probe.after.as_ref() == Some(&jira)).count()
    };
    let (terse, described) = (to_jira(salesforce_create_task()), to_jira(salesforce_create_task_described()));
    assert!(described < terse, "{described} of the described tool's requests go to Jira, {terse} of the terse one's");
}

#[test]
fn an_unrelated_tool_passes_and_leaves_every_request_where_it_was() {
    let detector = environment();
    let candidate = PreparedTool::new(
        ServerName::parse("maps").expect("server"),
        def(json!({"name": "geocode_address", "description": "Turn a street address into latitude and longitude.",
                   "inputSchema": {"type": "object", "properties": {"address": {"type": "string"}}}})),
    );
    let report = detector.simulate(&[candidate], &[], Some(3), 1).expect("simulated");
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    assert!(report.changed.is_empty(), "{:#?}", report.changed);
    assert!(report.pairs.iter().all(|pair| pair.severity < Some(Severity::High)));
    assert_eq!(report.registered_tools, 5);
    assert_eq!(report.registered_probes, 25);
    assert!(report.rerouted < report.registered_probes, "most probes are provably out of reach: {}", report.rerouted);
    assert_eq!((report.accuracy, report.labelled_probes), (None, 0));
}

#[test]
fn the_shortcut_agrees_with_routing_every_probe_again() {
    // With the local router a probe is rerouted only when a candidate could win a trial;
    // routing every registered probe before and after by brute force must find the same
    // number of changes.
    let detector = environment();
    let candidate = PreparedTool::new(ServerName::parse("salesforce").expect("server"), salesforce_create_task());
    let report = detector.simulate(std::slice::from_ref(&candidate), &[], None, 1).expect("simulated");
    let stage = detector.behavioural().expect("stage 4");
    let index = stage.index();
    let settings = index.settings();
    let mut changed = 0;
    for (_, tool) in detector.tools().iter() {
        for probe in stage.probes_of(tool) {
            let own = index.extra(detector.tools(), tool);
            let before =
                index.shortlist(detector.tools(), &probe, settings.shortlist, std::slice::from_ref(&own), &|_| false);
            let before =
                mtgs_detect::routing::route(stage.router(), &probe, &before, settings.trials).expect("routed").tool;
            let extras = [own, index.extra(detector.tools(), &candidate)];
            let after = index.shortlist(detector.tools(), &probe, settings.shortlist, &extras, &|_| false);
            let after =
                mtgs_detect::routing::route(stage.router(), &probe, &after, settings.trials).expect("routed").tool;
            changed += usize::from(before != after);
        }
    }
    assert_eq!(report.changed.len(), changed);
}

#[test]
fn simulation_needs_stage_4() {
    let detector = Detector::with_default_stages();
    assert!(matches!(detector.simulate(&[], &[], None, 1), Err(SimulationError::NoBehaviouralStage)));
}

fn embedding(values: &[f32]) -> Option<Embedding> {
    Embedding::new(values.to_vec())
}

/// Stages 1-4 over the Jira task tool and the unrelated ones, with hand-written vectors
/// that make stage 3 flag the two task tools and nothing else.
fn four_stages(thresholds: BehaviouralThresholds) -> Detector {
    let routing = RoutingSettings::default();
    let stage = BehaviouralStage::new(
        RoutingIndex::new(Box::new(ExactIndex::new(3)), routing),
        Arc::new(LocalRouter::new(&routing)),
        ProbeSettings::default(),
        thresholds,
    );
    let mut detector =
        Detector::with_semantic(Box::new(ExactIndex::new(3)), SemanticThresholds::default()).with_behavioural(stage);
    detector.insert_prepared(
        PreparedTool::new(ServerName::parse("jira").expect("server"), jira_create_task())
            .with_embedding(embedding(&[1.0, 0.05, 0.0])),
    );
    for ((server, tool), vector) in
        unrelated().into_iter().zip([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.7, 0.7], [0.1, -1.0, 0.0]])
    {
        detector.insert_prepared(
            PreparedTool::new(ServerName::parse(server).expect("server"), tool).with_embedding(embedding(&vector)),
        );
    }
    detector
}

#[test]
fn stage_4_examines_only_pairs_stage_3_flagged_and_reports_the_confusion_rate() {
    let candidate = PreparedTool::new(ServerName::parse("salesforce").expect("server"), salesforce_create_task())
        .with_embedding(embedding(&[1.0, 0.0, 0.05]));
    let result = four_stages(BehaviouralThresholds::default()).check_prepared(&candidate, &[]);
    let behavioural: Vec<_> = result.findings.iter().filter(|finding| finding.stage == StageId::Behavioural).collect();
    assert_eq!(behavioural.len(), 1, "{:#?}", result.findings);
    let finding = behavioural[0];
    assert_eq!(finding.tool_b, key("jira", "create_task"));
    assert!(result.findings.iter().any(|f| f.stage == StageId::Semantic && f.tool_b == finding.tool_b));
    let evidence = &finding.evidence;
    let share = |crossed: &str, probes: &str| {
        evidence[crossed].as_f64().expect("count") / evidence[probes].as_f64().expect("count")
    };
    assert!(
        (finding.score - share("a_to_b", "a_probes").max(share("b_to_a", "b_probes"))).abs() < 1e-9,
        "{evidence:#}"
    );
    assert!(finding.score >= 0.4, "{evidence:#}");
    assert!(!evidence["misrouted"].as_array().expect("quoted").is_empty());
    // The tuned default keeps the local proxy's pair findings at LOW ...
    assert_eq!(finding.severity, Severity::Low, "{finding:#?}");

    // ... and bands set for a stronger router raise them.
    let bands = Bands { medium: Some(0.2), high: Some(0.4) };
    let strict = BehaviouralThresholds { pair: bands, ..BehaviouralThresholds::default() };
    let result = four_stages(strict).check_prepared(&candidate, &[]);
    let finding = result.findings.iter().find(|finding| finding.stage == StageId::Behavioural).expect("stage 4");
    assert_eq!(finding.severity, Severity::High, "{finding:#?}");
}
