//! Impact simulation: how routing of an environment's requests shifts when candidate tools
//! are added. Every registered tool's probes, the candidates' own probes and any supplied
//! probes are routed against the registry **before** and **after** the candidates join
//! it; the report lists what moved, which tools lose requests to a candidate, where the
//! candidates' own requests go, the confusion-matrix delta and a verdict.
//!
//! With the local router a registered probe is routed twice only when some candidate
//! could win one of its trials: the router's noise is fixed per (request, trial, tool), so
//! a candidate changes a trial only by beating the probe's own tool there, which is
//! checked from two scores. LLM routers cannot be reasoned about that way: a probe is
//! rerouted when a candidate scores within [`REMOTE_MARGIN`] of its own tool.

use std::collections::{BTreeMap, HashMap, HashSet};

use mtgs_core::{Severity, ToolKey, Verdict};
use serde::{Deserialize, Serialize};

use crate::behavioural::BehaviouralStage;
use crate::pipeline::Detector;
use crate::prepared::PreparedTool;
use crate::routing::{Extra, RouteError, RoutingQuery, route};
use crate::stage::ToolIdx;

/// For routers without fixed noise (LLMs): how far below a probe's own tool a candidate
/// may score and still be considered able to take the probe.
pub const REMOTE_MARGIN: f32 = 0.15;

/// A probe a user supplied: a request, and optionally the tool that should serve it.
#[derive(Debug, Clone)]
pub struct SuppliedProbe {
    pub query: RoutingQuery,
    pub expected: Option<ToolKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOrigin {
    /// Written for a registered tool (its `expected`).
    Registered,
    /// Written for a candidate.
    Candidate,
    /// Supplied with the simulation.
    Supplied,
}

/// Where one probe went before and after the candidates joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRouting {
    pub query: String,
    #[serde(skip_serializing)]
    #[serde(default = "supplied")]
    pub origin: ProbeOrigin,
    pub expected: Option<ToolKey>,
    #[serde(rename = "routed_before")]
    pub before: Option<ToolKey>,
    #[serde(rename = "routed_after")]
    pub after: Option<ToolKey>,
}

fn supplied() -> ProbeOrigin {
    ProbeOrigin::Supplied
}

/// One pair of a candidate and a registered tool whose requests cross.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairShift {
    pub candidate: ToolKey,
    pub existing: ToolKey,
    /// The candidate's probes, and how many go to the existing tool after.
    pub candidate_probes: usize,
    pub candidate_to_existing: usize,
    /// The existing tool's probes, and how many the candidate takes.
    pub existing_probes: usize,
    pub existing_to_candidate: usize,
    /// The larger share of either tool's probes routed to the other, as stage 4 measures
    /// a pair.
    pub confusion_rate: f64,
    pub severity: Option<Severity>,
}

/// A cell of the confusion matrix (requests for `expected` routed to `routed`) that moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfusionDelta {
    pub expected: ToolKey,
    pub routed: Option<ToolKey>,
    pub before: usize,
    pub after: usize,
}

/// The report of one simulation. Serialised as the simulation's JSON report; tools are
/// `{server, name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    pub router: String,
    pub router_is: String,
    pub trials: u32,
    pub registered_tools: usize,
    /// Registered tools' probes considered, and how many had to be routed again.
    pub registered_probes: usize,
    pub rerouted: usize,
    /// Registered tools' probes whose routed tool changed.
    pub changed: Vec<ProbeRouting>,
    pub candidate_probes: Vec<ProbeRouting>,
    /// The supplied probes.
    pub probes: Vec<ProbeRouting>,
    /// Candidate and registered tools whose requests cross, worst first.
    pub pairs: Vec<PairShift>,
    pub confusion_delta: Vec<ConfusionDelta>,
    /// Supplied probes that name the tool that should serve them.
    pub labelled_probes: usize,
    /// Top-1 accuracy on those probes with the candidates added (`None`: no labelled probe).
    pub accuracy: Option<f64>,
    /// The same, on the environment as it is.
    pub accuracy_before: Option<f64>,
    /// The worst pair's severity.
    pub severity: Option<Severity>,
    pub verdict: Verdict,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulationError {
    #[error("impact simulation needs stage 4 (behavioural), which is off")]
    NoBehaviouralStage,
    #[error(transparent)]
    Route(#[from] RouteError),
}

impl Detector {
    /// Routes the registry's probes, the candidates' and `supplied` before and after
    /// `candidates` join the registry (replacing registered tools with their keys), over
    /// `trials` trials each (stage 4's setting when `None`), on `threads` threads.
    pub fn simulate(
        &self,
        candidates: &[PreparedTool],
        supplied: &[SuppliedProbe],
        trials: Option<u32>,
        threads: usize,
    ) -> Result<SimulationReport, SimulationError> {
        let stage = self.behavioural().ok_or(SimulationError::NoBehaviouralStage)?;
        let simulation = Simulation::new(self, stage, candidates, trials);

        let registered: Vec<(ToolIdx, &PreparedTool)> =
            self.tools().iter().filter(|(_, tool)| !simulation.is_candidate(&tool.key)).collect();
        let chunk = registered.len().div_ceil(threads.max(1)).max(1);
        let partials: Vec<Result<RegisteredOutcome, RouteError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = registered
                .chunks(chunk)
                .map(|slice| {
                    let simulation = &simulation;
                    scope.spawn(move || simulation.registered(slice))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });
        let mut outcome = RegisteredOutcome::default();
        for partial in partials {
            let partial = partial?;
            outcome.probes += partial.probes;
            outcome.rerouted += partial.rerouted;
            outcome.changed.extend(partial.changed);
            for (key, count) in partial.probe_counts {
                outcome.probe_counts.insert(key, count);
            }
        }

        let mut candidate_probes = Vec::new();
        for candidate in candidates {
            for probe in stage.probes_of(candidate) {
                let (before, after) = simulation.both(&probe, None)?;
                candidate_probes.push(ProbeRouting {
                    query: probe.text.clone(),
                    origin: ProbeOrigin::Candidate,
                    expected: Some(candidate.key.clone()),
                    before,
                    after,
                });
            }
        }
        let mut supplied_probes = Vec::new();
        for probe in supplied {
            let expected =
                probe.expected.as_ref().and_then(|key| self.tools().find(key)).and_then(|idx| self.tools().get(idx));
            let (before, after) = simulation.both(&probe.query, expected)?;
            supplied_probes.push(ProbeRouting {
                query: probe.query.text.clone(),
                origin: ProbeOrigin::Supplied,
                expected: probe.expected.clone(),
                before,
                after,
            });
        }

        let thresholds = stage.thresholds();
        let pairs = pair_shifts(candidates, &candidate_probes, &outcome.changed, &outcome.probe_counts, |rate| {
            thresholds.impact.severity(rate)
        });
        let severity = pairs.iter().filter_map(|pair| pair.severity).max();
        let verdict = if severity >= Some(Severity::High) { Verdict::Block } else { Verdict::Pass };
        let confusion_delta = confusion_delta(outcome.changed.iter().chain(&candidate_probes).chain(&supplied_probes));
        let labelled: Vec<&ProbeRouting> = supplied_probes.iter().filter(|probe| probe.expected.is_some()).collect();
        let accuracy_of = |routed: fn(&ProbeRouting) -> &Option<ToolKey>| {
            (!labelled.is_empty()).then(|| {
                let hits = labelled.iter().filter(|probe| routed(probe).is_some() && routed(probe) == &probe.expected);
                hits.count() as f64 / labelled.len() as f64
            })
        };
        let (accuracy, accuracy_before) = (accuracy_of(|probe| &probe.after), accuracy_of(|probe| &probe.before));
        let mut changed = outcome.changed;
        changed.sort_by(|a, b| a.expected.cmp(&b.expected).then_with(|| a.query.cmp(&b.query)));

        Ok(SimulationReport {
            router: stage.router().id().to_owned(),
            router_is: stage.router().describe().to_owned(),
            trials: simulation.trials,
            registered_tools: registered.len(),
            registered_probes: outcome.probes,
            rerouted: outcome.rerouted,
            changed,
            candidate_probes,
            labelled_probes: labelled.len(),
            probes: supplied_probes,
            pairs,
            confusion_delta,
            accuracy,
            accuracy_before,
            severity,
            verdict,
        })
    }
}

#[derive(Debug, Default)]
struct RegisteredOutcome {
    probes: usize,
    rerouted: usize,
    changed: Vec<ProbeRouting>,
    probe_counts: HashMap<ToolKey, usize>,
}

struct Simulation<'a> {
    detector: &'a Detector,
    stage: &'a BehaviouralStage,
    candidates: Vec<Extra<'a>>,
    candidate_keys: HashSet<&'a ToolKey>,
    trials: u32,
}

impl<'a> Simulation<'a> {
    fn new(
        detector: &'a Detector,
        stage: &'a BehaviouralStage,
        candidates: &'a [PreparedTool],
        trials: Option<u32>,
    ) -> Self {
        let index = stage.index();
        Self {
            detector,
            stage,
            candidates: candidates.iter().map(|candidate| index.extra(detector.tools(), candidate)).collect(),
            candidate_keys: candidates.iter().map(|candidate| &candidate.key).collect(),
            trials: trials.unwrap_or(index.settings().trials).max(1),
        }
    }

    fn is_candidate(&self, key: &ToolKey) -> bool {
        self.candidate_keys.contains(key)
    }

    /// Routes `probe` without and with the candidates; `own` (a registered tool the probe
    /// is for) is always considered.
    fn both(
        &self,
        probe: &RoutingQuery,
        own: Option<&'a PreparedTool>,
    ) -> Result<(Option<ToolKey>, Option<ToolKey>), RouteError> {
        let index = self.stage.index();
        let tools = self.detector.tools();
        let settings = index.settings();
        let own: Vec<Extra<'a>> = own.into_iter().map(|tool| index.extra(tools, tool)).collect();
        // Before: the registry as it is (a registered tool a candidate will replace included).
        let before = index.shortlist(tools, probe, settings.shortlist, &own, &|_| false);
        let before = route(self.stage.router(), probe, &before, self.trials)?.tool;
        // After: candidates in, the versions they replace out.
        let mut extras = own;
        extras.retain(|extra| !self.is_candidate(&extra.tool.key));
        extras.extend(self.candidates.iter().cloned());
        let replaced = |idx: ToolIdx| tools.get(idx).is_some_and(|tool| self.is_candidate(&tool.key));
        let after = index.shortlist(tools, probe, settings.shortlist, &extras, &replaced);
        let after = route(self.stage.router(), probe, &after, self.trials)?.tool;
        Ok((before, after))
    }

    /// Whether any candidate could take one of `probe`'s trials from its own tool.
    fn reachable(&self, probe: &RoutingQuery, own: &Extra<'_>) -> bool {
        let index = self.stage.index();
        let router = self.stage.router();
        let own_score = index.score(probe, own);
        self.candidates.iter().any(|candidate| {
            let score = index.score(probe, candidate);
            (0..self.trials).any(|trial| {
                let theirs = router.perturbed(probe, trial, &candidate.tool.key, score);
                let ours = router.perturbed(probe, trial, &own.tool.key, own_score);
                match (theirs, ours) {
                    (Some(theirs), Some(ours)) => theirs > ours,
                    _ => score >= own_score - REMOTE_MARGIN,
                }
            })
        })
    }

    fn registered(&self, tools: &[(ToolIdx, &'a PreparedTool)]) -> Result<RegisteredOutcome, RouteError> {
        let index = self.stage.index();
        let mut outcome = RegisteredOutcome::default();
        for (_, tool) in tools {
            let own = index.extra(self.detector.tools(), tool);
            let probes = self.stage.probes_of(tool);
            outcome.probes += probes.len();
            outcome.probe_counts.insert(tool.key.clone(), probes.len());
            for probe in &probes {
                if !self.reachable(probe, &own) {
                    continue;
                }
                outcome.rerouted += 1;
                let (before, after) = self.both(probe, Some(tool))?;
                if before != after {
                    outcome.changed.push(ProbeRouting {
                        query: probe.text.clone(),
                        origin: ProbeOrigin::Registered,
                        expected: Some(tool.key.clone()),
                        before,
                        after,
                    });
                }
            }
        }
        Ok(outcome)
    }
}

fn pair_shifts(
    candidates: &[PreparedTool],
    candidate_probes: &[ProbeRouting],
    changed: &[ProbeRouting],
    probe_counts: &HashMap<ToolKey, usize>,
    severity: impl Fn(f64) -> Option<Severity>,
) -> Vec<PairShift> {
    // (candidate, existing) → (candidate's probes routed to existing, existing's routed to candidate)
    let mut crossings: BTreeMap<(ToolKey, ToolKey), (usize, usize)> = BTreeMap::new();
    let candidate_keys: HashSet<&ToolKey> = candidates.iter().map(|candidate| &candidate.key).collect();
    for probe in candidate_probes {
        if let (Some(candidate), Some(routed)) = (&probe.expected, &probe.after)
            && !candidate_keys.contains(routed)
        {
            crossings.entry((candidate.clone(), routed.clone())).or_default().0 += 1;
        }
    }
    for probe in changed {
        if let (Some(existing), Some(routed)) = (&probe.expected, &probe.after)
            && candidate_keys.contains(routed)
        {
            crossings.entry((routed.clone(), existing.clone())).or_default().1 += 1;
        }
    }
    let mut pairs: Vec<PairShift> = crossings
        .into_iter()
        .map(|((candidate, existing), (to_existing, to_candidate))| {
            let candidate_probes =
                candidate_probes.iter().filter(|probe| probe.expected.as_ref() == Some(&candidate)).count();
            let existing_probes = probe_counts.get(&existing).copied().unwrap_or_default();
            let rate = crate::behavioural::confusion_rate(to_existing, candidate_probes, to_candidate, existing_probes);
            PairShift {
                candidate,
                existing,
                candidate_probes,
                candidate_to_existing: to_existing,
                existing_probes,
                existing_to_candidate: to_candidate,
                confusion_rate: rate,
                severity: severity(rate),
            }
        })
        .collect();
    pairs.sort_by(|a, b| b.confusion_rate.total_cmp(&a.confusion_rate).then_with(|| a.existing.cmp(&b.existing)));
    pairs
}

fn confusion_delta<'p>(probes: impl Iterator<Item = &'p ProbeRouting>) -> Vec<ConfusionDelta> {
    let mut cells: BTreeMap<(ToolKey, Option<ToolKey>), (usize, usize)> = BTreeMap::new();
    for probe in probes {
        let Some(expected) = &probe.expected else { continue };
        cells.entry((expected.clone(), probe.before.clone())).or_default().0 += 1;
        cells.entry((expected.clone(), probe.after.clone())).or_default().1 += 1;
    }
    cells
        .into_iter()
        .filter(|(_, (before, after))| before != after)
        .map(|((expected, routed), (before, after))| ConfusionDelta { expected, routed, before, after })
        .collect()
}
