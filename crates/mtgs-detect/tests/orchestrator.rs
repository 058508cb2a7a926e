//! The orchestrator's short-circuit rules, shown with stand-in stages 3 and 4 that
//! record which pairs they were shown.

use std::sync::{Arc, Mutex};

use mtgs_core::{ConflictKind, ServerName, Severity, StageId, ToolDef};
use mtgs_detect::lexical::LexicalStage;
use mtgs_detect::schema::SchemaStage;
use mtgs_detect::{Admission, Detector, Diagnostic, Examination, PairFinding, PreparedTool, Stage, ToolIdx};
use serde_json::json;

type Seen = Arc<Mutex<Vec<String>>>;

/// Links every pair it is shown (like a semantic stage with a low threshold).
#[derive(Debug)]
struct LinkEverything {
    id: StageId,
    admission: Admission,
    seen: Seen,
}

impl Stage for LinkEverything {
    fn id(&self) -> StageId {
        self.id
    }

    fn admission(&self) -> Admission {
        self.admission
    }

    fn insert(&mut self, _: ToolIdx, _: &PreparedTool) {}

    fn remove(&mut self, _: ToolIdx, _: &PreparedTool) {}

    fn examine(&self, examination: &Examination<'_>, findings: &mut Vec<PairFinding>, _: &mut Vec<Diagnostic>) {
        let shown: Vec<ToolIdx> = if examination.pairs.is_empty() {
            examination.tools.iter().map(|(idx, _)| idx).filter(|idx| !(examination.skip)(*idx)).collect()
        } else {
            examination.pairs.to_vec()
        };
        for idx in shown {
            let name = examination.tools.get(idx).map(|tool| tool.key.to_string()).unwrap_or_default();
            self.seen.lock().expect("not poisoned").push(name);
            findings.push(PairFinding {
                other: idx,
                kind: ConflictKind::SemanticSimilarity,
                severity: Severity::Medium,
                score: 0.9,
                evidence: json!({}),
            });
        }
    }
}

fn tool(name: &str, description: &str, parameter_type: &str) -> ToolDef {
    let raw = json!({"name": name, "description": description,
                     "inputSchema": {"type": "object", "properties": {"id": {"type": parameter_type}}}});
    ToolDef::parse(&raw).expect("valid").def
}

fn server(name: &str) -> ServerName {
    ServerName::parse(name).expect("valid")
}

#[test]
fn later_stages_follow_the_short_circuit_rules() {
    let semantic_seen = Seen::default();
    let behavioural_seen = Seen::default();
    let mut detector = Detector::new(vec![
        Box::new(LexicalStage::default()),
        Box::new(SchemaStage),
        Box::new(LinkEverything {
            id: StageId::Semantic,
            admission: Admission::DiscoverUnless { stage: StageId::Lexical, at_least: Severity::Critical },
            seen: semantic_seen.clone(),
        }),
        Box::new(LinkEverything {
            id: StageId::Behavioural,
            admission: Admission::FlaggedBy(StageId::Semantic),
            seen: behavioural_seen.clone(),
        }),
    ]);
    // Same name as the candidate: a CRITICAL lexical finding.
    detector.insert(server("jira"), tool("create_task", "Create a Jira task", "string"));
    // Nothing lexical in common, but a parameter of another type: only semantic links it.
    detector.insert(server("crm"), tool("log_activity", "Record an activity for an account", "integer"));

    let result = detector.check(server("salesforce"), tool("create_task", "Create a Salesforce task", "string"), &[]);

    // Stage 3 skipped the pair stage 1 already found CRITICAL; stage 4 saw only stage 3's pairs.
    assert_eq!(*semantic_seen.lock().expect("not poisoned"), ["crm/log_activity"]);
    assert_eq!(*behavioural_seen.lock().expect("not poisoned"), ["crm/log_activity"]);
    // Stage 2 ran on the pair stage 3 linked, after stage 3 ran.
    let schema: Vec<String> = result
        .findings
        .iter()
        .filter(|finding| finding.stage == StageId::Schema)
        .map(|finding| format!("{} {}", finding.tool_b, finding.kind))
        .collect();
    assert_eq!(schema, ["crm/log_activity parameter_type"]);
}
