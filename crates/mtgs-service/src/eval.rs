//! The quality yardstick: labelled pairs of real tools, split into a tuning half and a
//! report half by a fixed seed, scored against what the pipeline reports.
//!
//! A labelled pair counts as *flagged* when the pipeline reports a finding of at least the
//! chosen severity for it; unlabelled findings are counted but not judged.

use std::collections::{BTreeMap, HashMap};

use mtgs_core::{ConflictKind, Finding, InputError, Severity, StageId, ToolKey};
use serde::{Deserialize, Serialize};

/// `eval/labels.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Labels {
    pub version: u32,
    pub pairs: Vec<LabeledPair>,
    #[serde(default)]
    pub probes: Vec<LabeledProbe>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LabeledPair {
    pub id: String,
    pub a: ToolKey,
    pub b: ToolKey,
    /// Whether an agent given both would plausibly pick wrongly for one natural request.
    pub conflict: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LabeledProbe {
    pub id: String,
    pub query: String,
    pub expected: ToolKey,
    #[serde(default)]
    pub alternatives: Vec<ToolKey>,
    pub reason: String,
}

impl Labels {
    /// Parses the labels file, naming the field of the first error.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let labels: Labels =
            serde_json::from_str(text).map_err(|error| InputError::new("labels", error.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for (index, pair) in labels.pairs.iter().enumerate() {
            if !seen.insert(pair.id.as_str()) {
                return Err(InputError::new(format!("pairs[{index}].id"), format!("'{}' is used twice", pair.id)));
            }
        }
        Ok(labels)
    }

    /// Every tool the labels name, for checking them against a corpus.
    pub fn tools(&self) -> impl Iterator<Item = (&str, &ToolKey)> {
        let pairs = self.pairs.iter().flat_map(|pair| [(pair.id.as_str(), &pair.a), (pair.id.as_str(), &pair.b)]);
        let probes = self.probes.iter().flat_map(|probe| {
            std::iter::once((probe.id.as_str(), &probe.expected))
                .chain(probe.alternatives.iter().map(move |key| (probe.id.as_str(), key)))
        });
        pairs.chain(probes)
    }
}

/// Which half of the labels a run scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Half {
    /// Thresholds are tuned on this half only.
    Tuning,
    /// Results are reported on this half.
    Report,
    All,
}

/// The half a label belongs to: a hash of the seed and the label's id (FNV-1a), so the
/// split is fixed for a seed and does not move when labels are added.
pub fn half_of(id: &str, seed: u64) -> Half {
    let hash = mtgs_core::fnv1a(&[&seed.to_le_bytes(), id.as_bytes()]);
    if hash.rotate_right(17) & 1 == 0 { Half::Tuning } else { Half::Report }
}

fn in_half(id: &str, half: Half, seed: u64) -> bool {
    half == Half::All || half_of(id, seed) == half
}

/// Precision, recall and F1 of one slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Metrics {
    fn from_counts(true_positives: u64, false_positives: u64, false_negatives: u64) -> Self {
        let ratio = |num: u64, den: u64| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        let precision = ratio(true_positives, true_positives + false_positives);
        let recall = ratio(true_positives, true_positives + false_negatives);
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        Self { true_positives, false_positives, false_negatives, precision, recall, f1 }
    }
}

/// A finding as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedFinding {
    pub stage: StageId,
    pub kind: ConflictKind,
    pub severity: Severity,
    pub score: f64,
    pub evidence: serde_json::Value,
}

/// A labelled pair the pipeline got wrong, with everything it found about the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairError {
    pub id: String,
    pub a: ToolKey,
    pub b: ToolKey,
    pub reason: String,
    pub findings: Vec<ReportedFinding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub half: Half,
    pub seed: u64,
    pub min_severity: Severity,
    pub conflict_pairs: u64,
    pub non_conflict_pairs: u64,
    pub overall: Metrics,
    pub by_stage: BTreeMap<StageId, Metrics>,
    pub by_kind: BTreeMap<ConflictKind, Metrics>,
    pub false_positives: Vec<PairError>,
    pub false_negatives: Vec<PairError>,
    /// Findings on pairs no label speaks of (not judged).
    pub unlabelled_findings: u64,
    pub probes: u64,
    /// Top-1 routing accuracy on the probes; `None` when routing is off.
    pub routing_top1: Option<f64>,
}

fn unordered(a: &ToolKey, b: &ToolKey) -> (ToolKey, ToolKey) {
    if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) }
}

/// Scores `findings` (everything the pipeline reported for the corpus) against the
/// labelled pairs of `half`.
pub fn score(labels: &Labels, findings: &[Finding], half: Half, seed: u64, min_severity: Severity) -> EvalReport {
    let mut by_pair: HashMap<(ToolKey, ToolKey), Vec<&Finding>> = HashMap::new();
    for finding in findings {
        by_pair.entry(unordered(&finding.tool_a, &finding.tool_b)).or_default().push(finding);
    }
    let pairs: Vec<&LabeledPair> = labels.pairs.iter().filter(|pair| in_half(&pair.id, half, seed)).collect();

    let mut overall = (0, 0, 0);
    let mut stages: BTreeMap<StageId, (u64, u64, u64)> = StageId::ALL.iter().map(|stage| (*stage, (0, 0, 0))).collect();
    let mut kinds: BTreeMap<ConflictKind, (u64, u64, u64)> = BTreeMap::new();
    let mut false_positives = Vec::new();
    let mut false_negatives = Vec::new();
    let mut labelled = std::collections::HashSet::new();
    for pair in &pairs {
        let key = unordered(&pair.a, &pair.b);
        let found: &[&Finding] = by_pair.get(&key).map_or(&[], Vec::as_slice);
        labelled.insert(key);
        let flagged: Vec<&&Finding> = found.iter().filter(|finding| finding.severity >= min_severity).collect();
        let tally = |counts: &mut (u64, u64, u64), hit: bool| match (pair.conflict, hit) {
            (true, true) => counts.0 += 1,
            (false, true) => counts.1 += 1,
            (true, false) => counts.2 += 1,
            (false, false) => {}
        };
        tally(&mut overall, !flagged.is_empty());
        for (stage, counts) in &mut stages {
            tally(counts, flagged.iter().any(|finding| finding.stage == *stage));
        }
        for kind in ConflictKind::ALL {
            let hit = flagged.iter().any(|finding| finding.kind == *kind);
            if hit || pair.conflict {
                tally(kinds.entry(*kind).or_default(), hit);
            }
        }
        let error = || PairError {
            id: pair.id.clone(),
            a: pair.a.clone(),
            b: pair.b.clone(),
            reason: pair.reason.clone(),
            findings: found
                .iter()
                .map(|finding| ReportedFinding {
                    stage: finding.stage,
                    kind: finding.kind,
                    severity: finding.severity,
                    score: finding.score,
                    evidence: finding.evidence.clone(),
                })
                .collect(),
        };
        match (pair.conflict, flagged.is_empty()) {
            (false, false) => false_positives.push(error()),
            (true, true) => false_negatives.push(error()),
            _ => {}
        }
    }
    // Kinds that never fired on a labelled pair say nothing: leave them out.
    kinds.retain(|_, (tp, fp, _)| *tp + *fp > 0);
    let metrics = |(tp, fp, fn_): (u64, u64, u64)| Metrics::from_counts(tp, fp, fn_);
    let unlabelled_findings = by_pair
        .iter()
        .filter(|(key, _)| !labelled.contains(*key))
        .map(|(_, found)| found.iter().filter(|finding| finding.severity >= min_severity).count() as u64)
        .sum();
    EvalReport {
        half,
        seed,
        min_severity,
        conflict_pairs: pairs.iter().filter(|pair| pair.conflict).count() as u64,
        non_conflict_pairs: pairs.iter().filter(|pair| !pair.conflict).count() as u64,
        overall: metrics(overall),
        by_stage: stages.into_iter().map(|(stage, counts)| (stage, metrics(counts))).collect(),
        by_kind: kinds.into_iter().map(|(kind, counts)| (kind, metrics(counts))).collect(),
        false_positives,
        false_negatives,
        unlabelled_findings,
        probes: labels.probes.iter().filter(|probe| in_half(&probe.id, half, seed)).count() as u64,
        routing_top1: None,
    }
}

/// The probes of `half`, in label order: what a routing run is asked to route.
pub fn probes_in_half(labels: &Labels, half: Half, seed: u64) -> Vec<&LabeledProbe> {
    labels.probes.iter().filter(|probe| in_half(&probe.id, half, seed)).collect()
}

/// Top-1 routing accuracy: the share of `probes` routed (`routed[i]` for `probes[i]`) to
/// their expected tool or one of its labelled alternatives.
pub fn routing_accuracy(probes: &[&LabeledProbe], routed: &[Option<ToolKey>]) -> f64 {
    if probes.is_empty() {
        return 0.0;
    }
    let hits = probes
        .iter()
        .zip(routed)
        .filter(|(probe, routed)| {
            routed.as_ref().is_some_and(|tool| *tool == probe.expected || probe.alternatives.contains(tool))
        })
        .count();
    hits as f64 / probes.len() as f64
}

/// Floors the report half must stay at or above (`eval/floors.json`); they only go up.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Floors {
    pub half: Half,
    pub seed: u64,
    pub min_severity: Severity,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Routing top-1 on the half's probes, once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_top1: Option<f64>,
}

impl Floors {
    /// The metrics below their floor, as `name actual < floor` lines.
    pub fn breaches(&self, report: &EvalReport) -> Vec<String> {
        [
            ("precision", report.overall.precision, self.precision),
            ("recall", report.overall.recall, self.recall),
            ("f1", report.overall.f1, self.f1),
        ]
        .into_iter()
        .chain(self.routing_top1.map(|floor| ("routing top-1", report.routing_top1.unwrap_or(0.0), floor)))
        .filter(|(_, actual, floor)| actual + 1e-9 < *floor)
        .map(|(name, actual, floor)| format!("{name} {actual:.3} < floor {floor:.3}"))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use mtgs_core::{ServerName, ToolName};
    use serde_json::json;

    use super::*;

    fn key(server: &str, name: &str) -> ToolKey {
        ToolKey { server: ServerName::parse(server).expect("valid"), name: ToolName::parse(name).expect("valid") }
    }

    fn finding(a: ToolKey, b: ToolKey, severity: Severity) -> Finding {
        Finding {
            tool_a: a,
            tool_b: b,
            stage: StageId::Lexical,
            kind: ConflictKind::NearName,
            severity,
            score: 0.9,
            evidence: json!({}),
        }
    }

    #[test]
    fn the_split_is_fixed_by_the_seed_and_roughly_even() {
        let ids: Vec<String> = (0..1000).map(|i| format!("pair-{i:03}")).collect();
        let tuning = ids.iter().filter(|id| half_of(id, 7) == Half::Tuning).count();
        assert!((400..600).contains(&tuning), "{tuning} of 1000 in the tuning half");
        assert!(ids.iter().all(|id| half_of(id, 7) == half_of(id, 7)));
        assert!(ids.iter().any(|id| half_of(id, 7) != half_of(id, 8)));
    }

    #[test]
    fn pairs_are_scored_by_severity_in_either_order() {
        let labels = Labels {
            version: 1,
            pairs: vec![
                LabeledPair {
                    id: "p1".into(),
                    a: key("a", "x"),
                    b: key("b", "x"),
                    conflict: true,
                    reason: String::new(),
                },
                LabeledPair {
                    id: "p2".into(),
                    a: key("a", "y"),
                    b: key("b", "y"),
                    conflict: true,
                    reason: String::new(),
                },
                LabeledPair {
                    id: "p3".into(),
                    a: key("a", "z"),
                    b: key("b", "z"),
                    conflict: false,
                    reason: String::new(),
                },
            ],
            probes: vec![],
        };
        let findings = [
            finding(key("b", "x"), key("a", "x"), Severity::High),
            finding(key("a", "y"), key("b", "y"), Severity::Low),
            finding(key("a", "z"), key("b", "z"), Severity::Medium),
            finding(key("c", "q"), key("d", "q"), Severity::Critical),
        ];
        let report = score(&labels, &findings, Half::All, 7, Severity::Medium);
        assert_eq!(
            (report.overall.true_positives, report.overall.false_positives, report.overall.false_negatives),
            (1, 1, 1)
        );
        assert_eq!(report.false_negatives[0].id, "p2");
        assert_eq!(report.false_negatives[0].findings.len(), 1, "the sub-threshold finding explains the miss");
        assert_eq!(report.unlabelled_findings, 1);
        let floors = Floors {
            half: Half::All,
            seed: 7,
            min_severity: Severity::Medium,
            precision: 0.5,
            recall: 0.6,
            f1: 0.0,
            routing_top1: None,
        };
        assert_eq!(floors.breaches(&report), ["recall 0.500 < floor 0.600"]);
    }
}
