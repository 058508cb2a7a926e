//! The semantic stage's index and its place in the pipeline, with hand-written vectors.
//! (What real embeddings find is tested against the real model, with the model crate.)

use mtgs_core::{ServerName, Severity, StageId, ToolDef};
use mtgs_detect::lexical::LexicalStage;
use mtgs_detect::schema::SchemaStage;
use mtgs_detect::semantic::{Embedding, ExactIndex, SemanticStage, SemanticThresholds, VectorIndex, fingerprint};
use mtgs_detect::{Detector, PreparedTool, ToolIdx};
use proptest::prelude::*;
use serde_json::json;

fn embedding(values: &[f32]) -> Embedding {
    Embedding::new(values.to_vec()).expect("non-zero")
}

proptest! {
    /// The exact index returns what ranking every vector by cosine returns, and forgets
    /// removed vectors.
    #[test]
    fn exact_search_ranks_like_a_full_sort(
        vectors in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 4), 1..30),
        query in proptest::collection::vec(-1.0f32..1.0, 4),
        removed in 0usize..30,
    ) {
        let (Some(query), mut index) = (Embedding::new(query), ExactIndex::new(4)) else { return Ok(()) };
        let mut kept = Vec::new();
        for (i, vector) in vectors.iter().enumerate() {
            if let Some(vector) = Embedding::new(vector.clone()) {
                index.insert(ToolIdx(i as u32), &vector);
                kept.push((ToolIdx(i as u32), vector));
            }
        }
        index.remove(ToolIdx(removed as u32));
        kept.retain(|(idx, _)| *idx != ToolIdx(removed as u32));
        let mut expected: Vec<(ToolIdx, f32)> = kept
            .iter()
            .map(|(idx, v)| (*idx, v.as_slice().iter().zip(query.as_slice()).map(|(a, b)| a * b).sum()))
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let found = index.nearest(&query, 5, &|_| false);
        prop_assert_eq!(found.len(), expected.len().min(5));
        for ((got, got_score), (want, want_score)) in found.iter().zip(&expected) {
            prop_assert!((got_score - want_score).abs() < 1e-4, "{got:?} {got_score} vs {want:?} {want_score}");
        }
        prop_assert_eq!(index.len(), kept.len());
    }
}

fn tool(name: &str, description: &str) -> ToolDef {
    ToolDef::parse(&json!({"name": name, "description": description,
                           "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}}}))
    .expect("valid")
    .def
}

fn prepared(server: &str, def: ToolDef, vector: &[f32]) -> PreparedTool {
    PreparedTool::new(ServerName::parse(server).expect("valid"), def).with_embedding(Some(embedding(vector)))
}

fn detector() -> Detector {
    detector_with(SemanticThresholds::default())
}

fn detector_with(thresholds: SemanticThresholds) -> Detector {
    Detector::new(vec![
        Box::new(LexicalStage::default()),
        Box::new(SchemaStage),
        Box::new(SemanticStage::new(Box::new(ExactIndex::new(3)), thresholds)),
    ])
}

/// `tool severity similarity` of each semantic finding of checking `candidate`.
fn semantic_findings(detector: &Detector, candidate: &PreparedTool) -> Vec<String> {
    detector
        .check_prepared(candidate, &[])
        .findings
        .iter()
        .filter(|finding| finding.stage == StageId::Semantic)
        .map(|finding| format!("{} {} {}", finding.tool_b, finding.severity, finding.evidence["similarity"]))
        .collect()
}

const NEAREST_ONLY: SemanticThresholds = SemanticThresholds { low: 0.5, medium: 0.55, high: 0.85, mutual_rank: 1 };

#[test]
fn mutual_nearest_neighbours_across_servers_are_medium_and_one_sided_ones_low() {
    let mut detector = detector_with(NEAREST_ONLY);
    detector.insert_prepared(prepared("jira", tool("jira_create_issue", "File a Jira issue"), &[1.0, 1.0, 0.0]));
    detector.insert_prepared(prepared("notes", tool("write_note", "Write a note"), &[0.0, 0.0, 1.0]));
    let candidate = prepared("linear", tool("linear_create_ticket", "Open a Linear ticket"), &[1.0, 0.2, 0.8]);
    // Each is the other's nearest tool on another server: MEDIUM. The note tool is the
    // candidate's second-nearest: LOW.
    assert_eq!(
        semantic_findings(&detector, &candidate),
        ["jira/jira_create_issue medium 0.655", "notes/write_note low 0.617"]
    );
}

#[test]
fn a_neighbour_with_a_closer_match_elsewhere_is_only_low() {
    let mut detector = detector_with(NEAREST_ONLY);
    detector.insert_prepared(prepared("jira", tool("jira_create_issue", "File a Jira issue"), &[1.0, 1.0, 0.0]));
    detector.insert_prepared(prepared("asana", tool("asana_create_task", "Add an Asana task"), &[1.0, 1.1, 0.05]));
    let candidate = prepared("linear", tool("linear_create_ticket", "Open a Linear ticket"), &[1.0, 0.3, 0.9]);
    // The candidate's nearest (asana) is far nearer to jira than to the candidate.
    assert_eq!(
        semantic_findings(&detector, &candidate),
        ["asana/asana_create_task low 0.671", "jira/jira_create_issue low 0.667"]
    );
}

#[test]
fn ranks_remembered_between_checks_follow_the_registry() {
    let mut detector = detector_with(NEAREST_ONLY);
    detector.insert_prepared(prepared("jira", tool("jira_create_issue", "File a Jira issue"), &[1.0, 1.0, 0.0]));
    detector.insert_prepared(prepared("notes", tool("write_note", "Write a note"), &[0.0, 0.0, 1.0]));
    let candidate = prepared("linear", tool("linear_create_ticket", "Open a Linear ticket"), &[1.0, 0.3, 0.9]);
    // Jira's nearest tool of another server is asked (and remembered) by the first check.
    assert_eq!(semantic_findings(&detector, &candidate)[0], "jira/jira_create_issue medium 0.667");
    // A tool far nearer to jira than the candidate (and far from the candidate) arrives:
    // the next check ranks jira afresh.
    detector.insert_prepared(prepared("asana", tool("asana_create_task", "Add an Asana task"), &[1.0, 1.0, -0.3]));
    let found = semantic_findings(&detector, &candidate);
    assert!(found.contains(&"jira/jira_create_issue low 0.667".to_owned()), "{found:?}");
    // And without it again, jira's rank is back to the first.
    let asana = mtgs_core::ToolKey {
        server: ServerName::parse("asana").expect("valid"),
        name: mtgs_core::ToolName::parse("asana_create_task").expect("valid"),
    };
    detector.remove(&asana);
    assert_eq!(semantic_findings(&detector, &candidate)[0], "jira/jira_create_issue medium 0.667");
}

#[test]
fn siblings_on_one_server_and_names_with_different_actions_stay_low() {
    let mut detector = detector();
    detector.insert_prepared(prepared("jira", tool("jira_create_issue", "File a Jira issue"), &[1.0, 1.0, 0.0]));
    let sibling = prepared("jira", tool("jira_file_bug", "File a Jira bug"), &[1.0, 1.0, 0.05]);
    assert_eq!(semantic_findings(&detector, &sibling), ["jira/jira_create_issue low 0.999"]);
    let opposite = prepared("linear", tool("linear_delete_issue", "Delete a Linear issue"), &[1.0, 1.0, 0.1]);
    assert_eq!(semantic_findings(&detector, &opposite), ["jira/jira_create_issue low 0.998"]);
}

#[test]
fn nearest_neighbours_above_the_threshold_become_semantic_conflicts() {
    let mut detector = detector();
    detector.insert_prepared(prepared("jira", tool("jira_create_issue", "File a Jira issue"), &[1.0, 0.1, 0.0]));
    detector.insert_prepared(prepared("slack", tool("post_message", "Post to a channel"), &[0.0, 0.0, 1.0]));
    let candidate = prepared("linear", tool("linear_createIssue", "Open a Linear ticket"), &[1.0, 0.0, 0.0]);
    let result = detector.check_prepared(&candidate, &[]);
    let semantic: Vec<String> = result
        .findings
        .iter()
        .filter(|finding| finding.stage == StageId::Semantic)
        .map(|finding| format!("{} {} {}", finding.tool_b, finding.severity, finding.evidence["similarity"]))
        .collect();
    // cos = 1 / sqrt(1.01) ≈ 0.995: HIGH. The Slack tool is orthogonal: nothing.
    assert_eq!(semantic, ["jira/jira_create_issue high 0.995"]);
}

#[test]
fn a_pair_already_critical_by_name_is_not_compared_again() {
    let mut detector = detector();
    detector.insert_prepared(prepared("jira", tool("create_task", "Create a Jira task"), &[1.0, 0.0, 0.0]));
    let candidate = prepared("salesforce", tool("create_task", "Create a Salesforce task"), &[1.0, 0.0, 0.0]);
    let result = detector.check_prepared(&candidate, &[]);
    assert!(result.findings.iter().all(|finding| finding.stage != StageId::Semantic));
    assert_eq!(result.worst_severity(), Some(Severity::Critical));
}

#[test]
fn a_tool_without_an_embedding_is_reported_not_failed() {
    let mut detector = detector();
    detector.insert_prepared(prepared("jira", tool("create_task", "Create a Jira task"), &[1.0, 0.0, 0.0]));
    let result = detector.check(ServerName::parse("x").expect("valid"), tool("other", "Something else entirely"), &[]);
    assert_eq!(result.diagnostics.len(), 1);
    assert_eq!(result.diagnostics[0].stage, StageId::Semantic);
}

#[test]
fn the_fingerprint_holds_name_words_description_and_parameters() {
    let def = ToolDef::parse(&json!({"name": "createIssue", "title": "Create issue",
        "description": "Create a new issue.", "inputSchema": {"type": "object",
        "properties": {"repoName": {"type": "string", "description": "owner/name"}}}}))
    .expect("valid")
    .def;
    insta::assert_snapshot!(fingerprint(&def), @r"
    create issue
    Create issue
    Create a new issue.
    repo name: owner/name
    ");
}

#[test]
fn a_detector_built_in_bulk_answers_like_one_built_tool_by_tool() {
    let tools = || {
        vec![
            prepared("jira", tool("jira_create_issue", "File a Jira issue"), &[1.0, 1.0, 0.0]),
            prepared("notes", tool("write_note", "Write a note"), &[0.0, 0.0, 1.0]),
            prepared("asana", tool("asana_create_task", "Add an Asana task"), &[1.0, 1.1, 0.05]),
            // The same key again: the later definition wins.
            prepared("notes", tool("write_note", "Write a short note"), &[0.1, 0.0, 1.0]),
        ]
    };
    let mut one_by_one = detector();
    for tool in tools() {
        one_by_one.insert_prepared(tool);
    }
    let mut bulk = detector();
    bulk.insert_many(tools());
    assert_eq!(bulk.len(), 3);
    let candidate = prepared("linear", tool("linear_create_ticket", "Open a Linear ticket"), &[1.0, 0.3, 0.9]);
    assert_eq!(semantic_findings(&bulk, &candidate), semantic_findings(&one_by_one, &candidate));
    assert_eq!(bulk.analyze(1, &|_, _| {}), one_by_one.analyze(1, &|_, _| {}));
}
