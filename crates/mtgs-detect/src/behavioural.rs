//! Stage 4, behavioural: for each pair the semantic stage flagged, route both tools'
//! probes (requests each should serve) with both tools present, and measure how often one
//! tool's requests land on the other. That confusion rate sets the severity.

use std::sync::Arc;

use mtgs_core::{ConflictKind, Severity, StageId, ToolKey};
use serde_json::{Value, json};

use crate::prepared::PreparedTool;
use crate::probes::{ProbeSettings, generate};
use crate::routing::{Extra, Router, RoutingIndex, RoutingQuery, route};
use crate::stage::{Admission, Diagnostic, Examination, PairFinding, Stage, ToolIdx};

/// Misrouted requests quoted in a finding's evidence.
const QUOTED: usize = 6;

/// Confusion rates at which crossing requests raise a severity. A pair's rate is the
/// larger of the two directions: the share of A's probes routed to B, and of B's routed
/// to A (two in five requests for a Salesforce task landing in Jira is a problem however
/// well Jira's own requests are served). Any crossing at all is LOW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    /// From this rate MEDIUM; `None`: never above LOW.
    pub medium: Option<f64>,
    /// From this rate HIGH; `None`: never HIGH.
    pub high: Option<f64>,
}

impl Bands {
    pub fn severity(&self, rate: f64) -> Option<Severity> {
        if rate <= 0.0 {
            None
        } else if self.high.is_some_and(|high| rate >= high) {
            Some(Severity::High)
        } else if self.medium.is_some_and(|medium| rate >= medium) {
            Some(Severity::Medium)
        } else {
            Some(Severity::Low)
        }
    }
}

/// Stage 4's bands for pairs in the pipeline, and an impact simulation's for its verdict.
///
/// `pair` was tuned on the eval tuning half (`docs/behavioural-calibration.md`): with the
/// local router, no rate made a stage 4 finding more precise than stages 1-3 already are
/// (at MEDIUM from 0.2 tuning F1 fell from 0.602 to 0.581; from 0.8, to 0.595), so the
/// local proxy's findings stay LOW: visible, with the misrouted requests as evidence,
/// never blocking. An LLM router's crossings are stronger evidence; set bands for it.
///
/// `impact` decides a simulation's verdict: a candidate that takes two in five of an
/// existing tool's requests, or loses two in five of its own to one existing tool, blocks.
/// No labels exist for it; it is the product rule the seed example states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BehaviouralThresholds {
    pub pair: Bands,
    pub impact: Bands,
}

impl Default for BehaviouralThresholds {
    fn default() -> Self {
        Self { pair: Bands { medium: None, high: None }, impact: Bands { medium: Some(0.2), high: Some(0.4) } }
    }
}

#[derive(Debug)]
pub struct BehaviouralStage {
    index: RoutingIndex,
    router: Arc<dyn Router>,
    probes: ProbeSettings,
    thresholds: BehaviouralThresholds,
}

impl BehaviouralStage {
    pub fn new(
        index: RoutingIndex,
        router: Arc<dyn Router>,
        probes: ProbeSettings,
        thresholds: BehaviouralThresholds,
    ) -> Self {
        Self { index, router, probes, thresholds }
    }

    /// Stage 4 with the local router, default probes and thresholds, over `vectors`.
    pub fn local(vectors: Box<dyn crate::semantic::VectorIndex>, routing: crate::routing::RoutingSettings) -> Self {
        Self::new(
            RoutingIndex::new(vectors, routing),
            Arc::new(crate::routing::LocalRouter::new(&routing)),
            ProbeSettings::default(),
            BehaviouralThresholds::default(),
        )
    }

    pub fn index(&self) -> &RoutingIndex {
        &self.index
    }

    pub fn thresholds(&self) -> &BehaviouralThresholds {
        &self.thresholds
    }

    pub fn router(&self) -> &dyn Router {
        self.router.as_ref()
    }

    /// The tool's probes: those attached to it, else written from its definition.
    pub fn probes_of(&self, tool: &PreparedTool) -> Vec<RoutingQuery> {
        if tool.probes.is_empty() {
            generate(&tool.key, &tool.def, &self.probes).into_iter().map(|text| RoutingQuery::new(text, None)).collect()
        } else {
            tool.probes.clone()
        }
    }
}

/// Where one tool's probes went in a pair test.
struct Direction {
    probes: usize,
    to_other: usize,
    elsewhere: usize,
    quoted: Vec<Value>,
}

impl BehaviouralStage {
    fn direction(
        &self,
        examination: &Examination<'_>,
        from: &PreparedTool,
        to: &ToolKey,
        extras: &[Extra<'_>],
    ) -> Result<Direction, crate::routing::RouteError> {
        let settings = self.index.settings();
        let probes = self.probes_of(from);
        let mut direction = Direction { probes: probes.len(), to_other: 0, elsewhere: 0, quoted: Vec::new() };
        for probe in &probes {
            let contenders =
                self.index.shortlist(examination.tools, probe, settings.shortlist, extras, examination.skip);
            let routed = route(self.router.as_ref(), probe, &contenders, settings.trials)?;
            if routed.tool.as_ref() == Some(&from.key) {
                continue;
            }
            if routed.tool.as_ref() == Some(to) {
                direction.to_other += 1;
            } else {
                direction.elsewhere += 1;
            }
            if direction.quoted.len() < QUOTED {
                direction.quoted.push(json!({
                    "query": probe.text,
                    "expected": from.key.to_string(),
                    "routed": routed.tool.as_ref().map(ToString::to_string),
                    "votes": routed.votes,
                }));
            }
        }
        Ok(direction)
    }
}

impl Stage for BehaviouralStage {
    fn id(&self) -> StageId {
        StageId::Behavioural
    }

    fn admission(&self) -> Admission {
        Admission::FlaggedBy(StageId::Semantic)
    }

    fn insert(&mut self, idx: ToolIdx, tool: &PreparedTool) {
        self.index.insert(idx, tool);
    }

    fn insert_many(&mut self, tools: &[(ToolIdx, &PreparedTool)]) {
        self.index.insert_many(tools);
    }

    fn remove(&mut self, idx: ToolIdx, _tool: &PreparedTool) {
        self.index.remove(idx);
    }

    fn behavioural(&self) -> Option<&BehaviouralStage> {
        Some(self)
    }

    fn examine(
        &self,
        examination: &Examination<'_>,
        findings: &mut Vec<PairFinding>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        if examination.pairs.is_empty() {
            // Indexing the candidate's text costs more than the rest of a check that
            // admitted no pair to this stage.
            return;
        }
        let candidate = examination.candidate;
        let candidate_extra = self.index.extra(examination.tools, candidate);
        for &other_idx in examination.pairs {
            let Some(other) = examination.tools.get(other_idx) else { continue };
            let extras = [candidate_extra.clone(), self.index.extra(examination.tools, other)];
            let directions = self
                .direction(examination, candidate, &other.key, &extras)
                .and_then(|forward| Ok((forward, self.direction(examination, other, &candidate.key, &extras)?)));
            let (forward, backward) = match directions {
                Ok(directions) => directions,
                Err(error) => {
                    diagnostics.push(Diagnostic {
                        stage: StageId::Behavioural,
                        message: format!("routing with {} failed, stage 4 skipped: {error}", self.router.id()),
                    });
                    return;
                }
            };
            let rate = confusion_rate(forward.to_other, forward.probes, backward.to_other, backward.probes);
            let Some(severity) = self.thresholds.pair.severity(rate) else { continue };
            let mut misrouted = forward.quoted;
            misrouted.extend(backward.quoted);
            findings.push(PairFinding {
                other: other_idx,
                kind: ConflictKind::RoutingConfusion,
                severity,
                score: rate,
                evidence: json!({
                    "confusion_rate": round3(rate),
                    "a_probes": forward.probes,
                    "a_to_b": forward.to_other,
                    "a_elsewhere": forward.elsewhere,
                    "b_probes": backward.probes,
                    "b_to_a": backward.to_other,
                    "b_elsewhere": backward.elsewhere,
                    "trials": self.index.settings().trials,
                    "router": self.router.id(),
                    "router_is": self.router.describe(),
                    "misrouted": misrouted,
                }),
            });
        }
    }
}

/// A pair's confusion rate: the larger share of either tool's probes routed to the other.
pub fn confusion_rate(a_to_b: usize, a_probes: usize, b_to_a: usize, b_probes: usize) -> f64 {
    let share = |crossed: usize, probes: usize| if probes == 0 { 0.0 } else { crossed as f64 / probes as f64 };
    share(a_to_b, a_probes).max(share(b_to_a, b_probes))
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
