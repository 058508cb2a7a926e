//! The orchestrator: a registry of prepared tools, the stages that index it, and the runs
//! that check one tool against it or analyse every pair in it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mtgs_core::{Finding, ServerName, Severity, StageId, ToolDef, ToolKey};
use rustc_hash::FxHashSet as HashSet;

use crate::prepared::PreparedTool;
use crate::stage::{Admission, Diagnostic, Examination, PairFinding, Stage, ToolIdx, ToolTable};

/// The outcome of checking one tool: findings (with `tool_a` the checked tool) and what
/// the stages could not do fully.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckResult {
    pub findings: Vec<Finding>,
    pub diagnostics: Vec<Diagnostic>,
    /// Time spent in each stage that ran, in pipeline order: what a benchmark reports per
    /// stage, and where a slow check went.
    pub timings: StageTimings,
}

/// Wall time per stage (a stage run more than once in a check is summed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings(Vec<(StageId, Duration)>);

impl StageTimings {
    fn add(&mut self, stage: StageId, elapsed: Duration) {
        match self.0.iter_mut().find(|(id, _)| *id == stage) {
            Some((_, total)) => *total += elapsed,
            None => self.0.push((stage, elapsed)),
        }
    }

    /// Adds another check's timings (stage by stage).
    pub fn absorb(&mut self, other: &StageTimings) {
        for (stage, elapsed) in &other.0 {
            self.add(*stage, *elapsed);
        }
    }

    /// Each stage that ran with its time, in pipeline order.
    pub fn stages(&self) -> &[(StageId, Duration)] {
        &self.0
    }

    pub fn total(&self) -> Duration {
        self.0.iter().map(|(_, elapsed)| *elapsed).sum()
    }
}

impl CheckResult {
    /// The most severe finding per pair, highest first.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|finding| finding.severity).max()
    }
}

/// The detection state of one environment: its live tools and every stage's index over
/// them. Checks read it; registrations update it incrementally.
#[derive(Debug)]
pub struct Detector {
    tools: ToolTable,
    stages: Vec<Box<dyn Stage>>,
}

impl Detector {
    /// A detector running `stages` in the order given (cheapest first).
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        Self { tools: ToolTable::default(), stages }
    }

    /// Stages 1 and 2: lexical and schema.
    pub fn with_default_stages() -> Self {
        Self::new(vec![Box::new(crate::lexical::LexicalStage::default()), Box::new(crate::schema::SchemaStage)])
    }

    /// Stages 1 to 3: lexical, schema, and semantic over `index` (tools carry the
    /// embeddings the caller computed).
    pub fn with_semantic(
        index: Box<dyn crate::semantic::VectorIndex>,
        thresholds: crate::semantic::SemanticThresholds,
    ) -> Self {
        Self::new(vec![
            Box::new(crate::lexical::LexicalStage::default()),
            Box::new(crate::schema::SchemaStage),
            Box::new(crate::semantic::SemanticStage::new(index, thresholds)),
        ])
    }

    /// Adds stage 4 (behavioural) after the stages already configured.
    #[must_use]
    pub fn with_behavioural(mut self, stage: crate::behavioural::BehaviouralStage) -> Self {
        self.stages.push(Box::new(stage));
        self
    }

    /// Stage 4, when configured.
    pub fn behavioural(&self) -> Option<&crate::behavioural::BehaviouralStage> {
        self.stages.iter().find_map(|stage| stage.behavioural())
    }

    pub fn tools(&self) -> &ToolTable {
        &self.tools
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Adds a tool, replacing the one with the same server and name.
    pub fn insert(&mut self, server: ServerName, def: ToolDef) -> ToolIdx {
        self.insert_prepared(PreparedTool::new(server, def))
    }

    /// Adds a prepared tool (with its embedding, if any), replacing the one with the same key.
    pub fn insert_prepared(&mut self, tool: PreparedTool) -> ToolIdx {
        self.remove(&tool.key);
        let idx = self.tools.insert(tool);
        if let Some(tool) = self.tools.get(idx) {
            for stage in &mut self.stages {
                stage.insert(idx, tool);
            }
        }
        idx
    }

    /// Adds many prepared tools at once (each replacing the one with its key), letting
    /// stages index them in bulk: how a detector is built from the store.
    pub fn insert_many(&mut self, tools: Vec<PreparedTool>) {
        // Of two tools with one key, the later wins (as with repeated `insert_prepared`).
        let last: HashMap<ToolKey, usize> = tools.iter().enumerate().map(|(i, tool)| (tool.key.clone(), i)).collect();
        let mut indices = Vec::with_capacity(last.len());
        for (position, tool) in tools.into_iter().enumerate() {
            if last.get(&tool.key) != Some(&position) {
                continue;
            }
            self.remove(&tool.key);
            indices.push(self.tools.insert(tool));
        }
        let inserted: Vec<(ToolIdx, &PreparedTool)> =
            indices.iter().filter_map(|idx| self.tools.get(*idx).map(|tool| (*idx, tool))).collect();
        for stage in &mut self.stages {
            stage.insert_many(&inserted);
        }
    }

    /// Removes a tool; `false` if it was not registered.
    pub fn remove(&mut self, key: &ToolKey) -> bool {
        self.take(key).is_some()
    }

    /// Removes a tool and hands it back (to put it back later: a what-if).
    pub fn take(&mut self, key: &ToolKey) -> Option<PreparedTool> {
        let (idx, tool) = self.tools.remove(key)?;
        for stage in &mut self.stages {
            stage.remove(idx, &tool);
        }
        Some(tool)
    }

    /// Checks a tool that is not (or not yet) registered against the registry. A
    /// registered tool with the same key, and any tool in `exclude`, is left out: checking
    /// a new version of a tool does not compare it with its old self.
    pub fn check(&self, server: ServerName, def: ToolDef, exclude: &[ToolKey]) -> CheckResult {
        self.check_prepared(&PreparedTool::new(server, def), exclude)
    }

    /// [`Detector::check`] for a prepared tool (with its embedding, if any).
    pub fn check_prepared(&self, candidate: &PreparedTool, exclude: &[ToolKey]) -> CheckResult {
        let mut skipped: HashSet<ToolIdx> = exclude.iter().filter_map(|key| self.tools.find(key)).collect();
        skipped.extend(self.tools.find(&candidate.key));
        self.examine(candidate, &skipped)
    }

    /// Checks a registered tool against every other registered tool.
    pub fn check_registered(&self, idx: ToolIdx) -> CheckResult {
        let Some(candidate) = self.tools.get(idx) else {
            return CheckResult::default();
        };
        self.examine(candidate, &HashSet::from_iter([idx]))
    }

    /// Every pair of registered tools, each reported once (`tool_a` < `tool_b`), in a
    /// stable order. Work is split across `threads`; `progress(done, total)` is called as
    /// tools complete.
    pub fn analyze(&self, threads: usize, progress: &(dyn Fn(usize, usize) + Sync)) -> Vec<Finding> {
        let indices: Vec<ToolIdx> = self.tools.iter().map(|(idx, _)| idx).collect();
        let total = indices.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let chunk = total.div_ceil(threads.max(1)).max(1);
        // Each finding keyed by its pair's slots (low first) and stage: cheap to sort.
        // The bool: seen from the pair's low slot (preferred on a tie, for a stable result).
        type Keyed = ((u32, u32, StageId), bool, Finding);
        let partials: Vec<Vec<Keyed>> = std::thread::scope(|scope| {
            let handles: Vec<_> = indices
                .chunks(chunk)
                .map(|slice| {
                    let done = &done;
                    scope.spawn(move || {
                        let mut found: Vec<Keyed> = Vec::new();
                        for &idx in slice {
                            for mut finding in self.check_registered(idx).findings {
                                let Some(other) = self.tools.find(&finding.tool_b) else { continue };
                                if finding.tool_a > finding.tool_b {
                                    std::mem::swap(&mut finding.tool_a, &mut finding.tool_b);
                                }
                                let slots = (idx.0.min(other.0), idx.0.max(other.0), finding.stage);
                                found.push((slots, idx.0 < other.0, finding));
                            }
                            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            progress(finished, total);
                        }
                        found
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });

        // Each pair is seen from both sides; keep the stronger report per pair and stage
        // (oriented low key first), then order by keys.
        let mut keyed: Vec<Keyed> = partials.into_iter().flatten().collect();
        keyed.sort_unstable_by(|(a, a_low, x), (b, b_low, y)| {
            a.cmp(b)
                .then_with(|| (y.severity, y.score).partial_cmp(&(x.severity, x.score)).unwrap_or(Ordering::Equal))
                .then_with(|| b_low.cmp(a_low))
        });
        keyed.dedup_by(|(later, _, _), (kept, _, _)| later == kept);
        // Ordered by keys through each slot's rank among the keys: integers to compare
        // instead of four strings per comparison.
        let mut by_key: Vec<(&ToolKey, u32)> = self.tools.iter().map(|(idx, tool)| (&tool.key, idx.0)).collect();
        by_key.sort_unstable();
        let mut rank = vec![0u32; self.tools.slots()];
        for (position, (_, slot)) in by_key.into_iter().enumerate() {
            rank[slot as usize] = position as u32;
        }
        let ranked = |(lo, hi, stage): (u32, u32, StageId)| {
            let (lo, hi) = (rank[lo as usize], rank[hi as usize]);
            (lo.min(hi), lo.max(hi), stage)
        };
        keyed.sort_unstable_by_key(|(slots, _, _)| ranked(*slots));
        keyed.into_iter().map(|(_, _, finding)| finding).collect()
    }

    fn examine(&self, candidate: &PreparedTool, skipped: &HashSet<ToolIdx>) -> CheckResult {
        let mut ledger: BTreeMap<ToolIdx, Vec<(StageId, PairFinding)>> = BTreeMap::new();
        let mut diagnostics = Vec::new();
        let mut timings = StageTimings::default();
        // Pair stages that already ran, with the pairs each has examined, so pairs linked
        // by a later discovering stage still reach them.
        let mut pair_stages_run: Vec<(usize, HashSet<ToolIdx>)> = Vec::new();
        let excluded = |idx: ToolIdx| skipped.contains(&idx);

        for (position, stage) in self.stages.iter().enumerate() {
            match stage.admission() {
                Admission::Discover | Admission::DiscoverUnless { .. } => {
                    let closed: HashSet<ToolIdx> = match stage.admission() {
                        Admission::DiscoverUnless { stage: earlier, at_least } => ledger
                            .iter()
                            .filter(|(_, found)| found.iter().any(|(id, f)| *id == earlier && f.severity >= at_least))
                            .map(|(idx, _)| *idx)
                            .collect(),
                        _ => HashSet::default(),
                    };
                    let skip = |idx: ToolIdx| skipped.contains(&idx) || closed.contains(&idx);
                    let found =
                        self.run_stage(stage.as_ref(), candidate, &skip, &[], &ledger, &mut diagnostics, &mut timings);
                    record(&mut ledger, stage.id(), found, |idx| !skip(idx));
                    for (earlier_position, examined) in &mut pair_stages_run {
                        let fresh: Vec<ToolIdx> =
                            ledger.keys().filter(|idx| !examined.contains(idx)).copied().collect();
                        if fresh.is_empty() {
                            continue;
                        }
                        examined.extend(fresh.iter().copied());
                        let earlier_stage = self.stages[*earlier_position].as_ref();
                        let found = self.run_stage(
                            earlier_stage,
                            candidate,
                            &excluded,
                            &fresh,
                            &ledger,
                            &mut diagnostics,
                            &mut timings,
                        );
                        record(&mut ledger, earlier_stage.id(), found, |idx| fresh.contains(&idx));
                    }
                }
                Admission::LinkedPairs => {
                    let pairs: Vec<ToolIdx> = ledger.keys().copied().collect();
                    let found = self.run_stage(
                        stage.as_ref(),
                        candidate,
                        &excluded,
                        &pairs,
                        &ledger,
                        &mut diagnostics,
                        &mut timings,
                    );
                    record(&mut ledger, stage.id(), found, |idx| pairs.contains(&idx));
                    pair_stages_run.push((position, pairs.into_iter().collect()));
                }
                Admission::FlaggedBy(flagging) => {
                    let pairs: Vec<ToolIdx> = ledger
                        .iter()
                        .filter(|(_, found)| found.iter().any(|(id, _)| *id == flagging))
                        .map(|(idx, _)| *idx)
                        .collect();
                    let found = self.run_stage(
                        stage.as_ref(),
                        candidate,
                        &excluded,
                        &pairs,
                        &ledger,
                        &mut diagnostics,
                        &mut timings,
                    );
                    record(&mut ledger, stage.id(), found, |idx| pairs.contains(&idx));
                }
            }
        }

        let mut findings = Vec::new();
        for (idx, found) in ledger {
            let Some(other) = self.tools.get(idx) else { continue };
            for (stage, pair) in found {
                findings.push(Finding {
                    tool_a: candidate.key.clone(),
                    tool_b: other.key.clone(),
                    stage,
                    kind: pair.kind,
                    severity: pair.severity,
                    score: pair.score,
                    evidence: pair.evidence,
                });
            }
        }
        findings.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then_with(|| a.tool_b.cmp(&b.tool_b)).then(a.stage.cmp(&b.stage))
        });
        CheckResult { findings, diagnostics, timings }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_stage(
        &self,
        stage: &dyn Stage,
        candidate: &PreparedTool,
        skip: &dyn Fn(ToolIdx) -> bool,
        pairs: &[ToolIdx],
        ledger: &BTreeMap<ToolIdx, Vec<(StageId, PairFinding)>>,
        diagnostics: &mut Vec<Diagnostic>,
        timings: &mut StageTimings,
    ) -> Vec<PairFinding> {
        let started = Instant::now();
        let earlier = |idx: ToolIdx| {
            ledger.get(&idx).map(|found| found.iter().map(|(id, f)| (*id, f.severity)).collect()).unwrap_or_default()
        };
        let examination = Examination { tools: &self.tools, candidate, skip, pairs, earlier: &earlier };
        let mut found = Vec::new();
        stage.examine(&examination, &mut found, diagnostics);
        timings.add(stage.id(), started.elapsed());
        found
    }
}

/// Adds a stage's findings to the ledger: one per pair (the strongest, should a stage
/// report a pair twice), and only for pairs the stage was admitted to.
fn record(
    ledger: &mut BTreeMap<ToolIdx, Vec<(StageId, PairFinding)>>,
    stage: StageId,
    found: Vec<PairFinding>,
    admitted: impl Fn(ToolIdx) -> bool,
) {
    let mut strongest: HashMap<ToolIdx, PairFinding> = HashMap::new();
    for finding in found.into_iter().filter(|finding| admitted(finding.other)) {
        match strongest.get(&finding.other) {
            Some(kept) if (kept.severity, kept.score) >= (finding.severity, finding.score) => {}
            _ => {
                strongest.insert(finding.other, finding);
            }
        }
    }
    for (idx, finding) in strongest {
        ledger.entry(idx).or_default().push((stage, finding));
    }
}
