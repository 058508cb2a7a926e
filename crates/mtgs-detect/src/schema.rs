//! Stage 2, schema: for pairs an earlier stage linked, parameters both tools take whose
//! JSON types, required-ness or allowed values disagree. An agent that routes a request
//! to the wrong one of two such tools sends arguments the other never meant to accept.
//! On a pair only stage 3 linked, a schema finding is never more severe than stage 3's.

use mtgs_core::{ConflictKind, Severity, StageId};
use serde_json::json;

use crate::prepared::{ParamShape, PreparedTool};
use crate::stage::{Admission, Diagnostic, Examination, PairFinding, Stage, ToolIdx};

/// Stateless: it reads the parameter shapes prepared with each tool.
#[derive(Debug, Default, Clone, Copy)]
pub struct SchemaStage;

impl Stage for SchemaStage {
    fn id(&self) -> StageId {
        StageId::Schema
    }

    fn admission(&self) -> Admission {
        Admission::LinkedPairs
    }

    fn insert(&mut self, _idx: ToolIdx, _tool: &PreparedTool) {}

    fn remove(&mut self, _idx: ToolIdx, _tool: &PreparedTool) {}

    fn examine(&self, examination: &Examination<'_>, findings: &mut Vec<PairFinding>, _: &mut Vec<Diagnostic>) {
        for &idx in examination.pairs {
            let Some(other) = examination.tools.get(idx) else { continue };
            if let Some(mut finding) = compare(examination.candidate, other, idx) {
                // Similar descriptions alone (no name evidence) say little about confusion:
                // on a pair only stage 3 linked, a clash of arguments is never more severe
                // than the similarity finding.
                let links = (examination.earlier)(idx);
                if !links.is_empty() && links.iter().all(|(stage, _)| *stage == StageId::Semantic) {
                    let link = links.iter().map(|(_, severity)| *severity).max().unwrap_or(Severity::Low);
                    finding.severity = finding.severity.min(link.max(Severity::Low));
                }
                findings.push(finding);
            }
        }
    }
}

fn compare(a: &PreparedTool, b: &PreparedTool, other: ToolIdx) -> Option<PairFinding> {
    let mut mismatches = Vec::new();
    let mut worst: Option<(Severity, ConflictKind)> = None;
    let mut note = |severity: Severity, kind: ConflictKind, detail: serde_json::Value| {
        mismatches.push(detail);
        if worst.is_none_or(|kept| (severity, rank(kind)) > (kept.0, rank(kept.1))) {
            worst = Some((severity, kind));
        }
    };
    let shared: Vec<(&String, &ParamShape, &ParamShape)> =
        a.params.iter().filter_map(|(name, shape)| b.params.get(name).map(|theirs| (name, shape, theirs))).collect();
    for &(name, ours, theirs) in &shared {
        if !types_compatible(ours, theirs) {
            note(
                Severity::Medium,
                ConflictKind::ParameterType,
                json!({"parameter": name, "kind": "parameter_type", "a": ours.types, "b": theirs.types}),
            );
        }
        if ours.required != theirs.required {
            note(
                Severity::Low,
                ConflictKind::ParameterRequired,
                json!({"parameter": name, "kind": "parameter_required", "a": ours.required, "b": theirs.required}),
            );
        }
        if let (Some(x), Some(y)) = (&ours.allowed, &theirs.allowed)
            && x != y
        {
            let disjoint = x.is_disjoint(y);
            note(
                if disjoint { Severity::Medium } else { Severity::Low },
                ConflictKind::ParameterEnum,
                json!({"parameter": name, "kind": "parameter_enum", "a": x, "b": y, "disjoint": disjoint}),
            );
        }
    }
    let (severity, kind) = worst?;
    let score = ((mismatches.len() as f64 / shared.len().max(1) as f64) * 1000.0).round() / 1000.0;
    Some(PairFinding {
        other,
        kind,
        severity,
        score: score.min(1.0),
        evidence: json!({"shared_parameters": shared.len(), "mismatches": mismatches}),
    })
}

/// Which kind names a pair's schema finding when severities tie: a type clash says most.
fn rank(kind: ConflictKind) -> u8 {
    match kind {
        ConflictKind::ParameterType => 2,
        ConflictKind::ParameterEnum => 1,
        _ => 0,
    }
}

/// Types agree when either side leaves them open, they share one, or one is `integer`
/// and the other `number` (every integer is a number).
fn types_compatible(a: &ParamShape, b: &ParamShape) -> bool {
    if a.types.is_empty() || b.types.is_empty() || !a.types.is_disjoint(&b.types) {
        return true;
    }
    let numeric = |shape: &ParamShape| shape.types.iter().all(|t| t == "integer" || t == "number");
    numeric(a) && numeric(b)
}
