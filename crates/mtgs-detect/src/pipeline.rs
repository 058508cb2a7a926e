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
    ///
    /// Each pair is found from both of its sides; the stronger report per pair and stage
    /// is kept (the one from the pair's lower key on a tie). Everything after the stages
    /// runs on the workers too: each sorts what it found by the pair's key ranks, then
    /// each merges one range of ranks from every worker's list, so no single thread sorts
    /// or drops millions of findings.
    pub fn analyze(&self, threads: usize, progress: &(dyn Fn(usize, usize) + Sync)) -> Vec<Finding> {
        let threads = threads.max(1);
        // Each slot's rank among the keys: findings are ordered and merged by integers
        // instead of four strings per comparison.
        let mut by_key: Vec<(&ToolKey, ToolIdx)> = self.tools.iter().map(|(idx, tool)| (&tool.key, idx)).collect();
        by_key.sort_unstable();
        let mut rank = vec![0u32; self.tools.slots()];
        for (position, (_, idx)) in by_key.iter().enumerate() {
            rank[idx.0 as usize] = position as u32;
        }
        let total = by_key.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let strongest_first = |a: &Keyed, b: &Keyed| {
            a.key
                .cmp(&b.key)
                .then_with(|| {
                    (b.found.severity, b.found.score)
                        .partial_cmp(&(a.found.severity, a.found.score))
                        .unwrap_or(Ordering::Equal)
                })
                .then_with(|| b.from_low.cmp(&a.from_low))
        };

        // Workers take blocks of tools as they finish the last, so one that draws tools
        // with many neighbours does not leave the others idle at the end.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let partials: Vec<Vec<Keyed>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (done, rank, next, by_key) = (&done, &rank, &next, &by_key);
                    scope.spawn(move || {
                        let mut found: Vec<Keyed> = Vec::new();
                        let blocks = std::iter::from_fn(|| {
                            let start = next.fetch_add(ANALYSIS_BLOCK, std::sync::atomic::Ordering::Relaxed);
                            by_key.get(start..(start + ANALYSIS_BLOCK).min(by_key.len()))
                        });
                        for &(_, idx) in blocks.flatten() {
                            let Some(candidate) = self.tools.get(idx) else { continue };
                            let (ledger, _, _) = self.ledger(candidate, &HashSet::from_iter([idx]), false);
                            let own = rank[idx.0 as usize];
                            for (other, pairs) in ledger {
                                let theirs = rank[other.0 as usize];
                                for (stage, pair) in pairs {
                                    found.push(Keyed {
                                        key: (own.min(theirs), own.max(theirs), stage),
                                        from_low: own < theirs,
                                        candidate: idx,
                                        found: pair,
                                    });
                                }
                            }
                            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            progress(finished, total);
                        }
                        found.sort_unstable_by(strongest_first);
                        found
                    })
                })
                .collect();
            handles.into_iter().map(join).collect()
        });

        // Each worker merges the findings of one range of low ranks from every list. A pair
        // is keyed by its lower rank, so low ranks hold more of them: the ranges are cut
        // where the reports, not the ranks, split evenly.
        let mut per_rank = vec![0usize; total];
        for keyed in partials.iter().flatten() {
            per_rank[keyed.key.0 as usize] += 1;
        }
        let reports: usize = per_rank.iter().sum();
        let mut bounds: Vec<u32> = Vec::with_capacity(threads - 1);
        let mut seen = 0;
        for (rank, count) in per_rank.iter().enumerate() {
            while bounds.len() < threads - 1 && seen >= reports * (bounds.len() + 1) / threads {
                bounds.push(rank as u32);
            }
            seen += count;
        }
        while bounds.len() < threads - 1 {
            bounds.push(total as u32);
        }
        let mut parts: Vec<Vec<Vec<Keyed>>> = (0..threads).map(|_| Vec::new()).collect();
        for mut list in partials {
            for (part, bound) in bounds.iter().enumerate().rev() {
                let at = list.partition_point(|keyed| keyed.key.0 < *bound);
                parts[part + 1].push(list.split_off(at));
            }
            parts[0].push(list);
        }
        let merged: Vec<Vec<Finding>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|lists| {
                    scope.spawn(move || {
                        let mut keyed: Vec<Keyed> = lists.into_iter().flatten().collect();
                        // Sorted runs, one per worker: the stable sort merges them.
                        keyed.sort_by(strongest_first);
                        keyed.dedup_by(|later, kept| later.key == kept.key);
                        keyed.into_iter().filter_map(|keyed| self.finding(keyed)).collect::<Vec<Finding>>()
                    })
                })
                .collect();
            handles.into_iter().map(join).collect()
        });
        merged.into_iter().flatten().collect()
    }

    /// The finding a kept analysis report stands for, its keys in order, with the
    /// evidence the analysis left out written now.
    fn finding(&self, mut keyed: Keyed) -> Option<Finding> {
        let candidate = self.tools.get(keyed.candidate)?;
        if keyed.found.evidence.is_null()
            && let Some(stage) = self.stages.iter().find(|stage| stage.id() == keyed.key.2)
        {
            keyed.found.evidence = stage.explain(&self.tools, candidate, &keyed.found);
        }
        let candidate = &candidate.key;
        let other = &self.tools.get(keyed.found.other)?.key;
        let (tool_a, tool_b) = if candidate <= other { (candidate, other) } else { (other, candidate) };
        Some(Finding {
            tool_a: tool_a.clone(),
            tool_b: tool_b.clone(),
            stage: keyed.key.2,
            kind: keyed.found.kind,
            severity: keyed.found.severity,
            score: keyed.found.score,
            evidence: keyed.found.evidence,
        })
    }

    fn examine(&self, candidate: &PreparedTool, skipped: &HashSet<ToolIdx>) -> CheckResult {
        let (ledger, diagnostics, timings) = self.ledger(candidate, skipped, true);
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

    /// What every stage found about `candidate`, per other tool: the stages run in order
    /// under their admission rules. Without `evidence`, stages may leave it out (see
    /// [`Examination::evidence`]).
    fn ledger(
        &self,
        candidate: &PreparedTool,
        skipped: &HashSet<ToolIdx>,
        evidence: bool,
    ) -> (Ledger, Vec<Diagnostic>, StageTimings) {
        let mut ledger: Ledger = BTreeMap::new();
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
                    let found = self.run_stage(
                        stage.as_ref(),
                        candidate,
                        &skip,
                        &[],
                        &ledger,
                        evidence,
                        &mut diagnostics,
                        &mut timings,
                    );
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
                            evidence,
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
                        evidence,
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
                        evidence,
                        &mut diagnostics,
                        &mut timings,
                    );
                    record(&mut ledger, stage.id(), found, |idx| pairs.contains(&idx));
                }
            }
        }

        (ledger, diagnostics, timings)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_stage(
        &self,
        stage: &dyn Stage,
        candidate: &PreparedTool,
        skip: &dyn Fn(ToolIdx) -> bool,
        pairs: &[ToolIdx],
        ledger: &Ledger,
        evidence: bool,
        diagnostics: &mut Vec<Diagnostic>,
        timings: &mut StageTimings,
    ) -> Vec<PairFinding> {
        let started = Instant::now();
        let earlier = |idx: ToolIdx| {
            ledger.get(&idx).map(|found| found.iter().map(|(id, f)| (*id, f.severity)).collect()).unwrap_or_default()
        };
        let examination = Examination { tools: &self.tools, candidate, skip, pairs, earlier: &earlier, evidence };
        let mut found = Vec::new();
        stage.examine(&examination, &mut found, diagnostics);
        timings.add(stage.id(), started.elapsed());
        found
    }
}

/// Tools an analysis worker takes at a time.
const ANALYSIS_BLOCK: usize = 64;

/// What the stages found about one candidate, per other tool: each stage's report.
type Ledger = BTreeMap<ToolIdx, Vec<(StageId, PairFinding)>>;

/// One side's report of a pair in an analysis, keyed by the pair's key ranks (low first)
/// and the stage.
struct Keyed {
    key: (u32, u32, StageId),
    /// Seen from the pair's lower key (preferred on a tie, for a stable result).
    from_low: bool,
    candidate: ToolIdx,
    found: PairFinding,
}

/// A worker's result, its panic carried on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Adds a stage's findings to the ledger: one per pair (the strongest, should a stage
/// report a pair twice), and only for pairs the stage was admitted to.
fn record(ledger: &mut Ledger, stage: StageId, found: Vec<PairFinding>, admitted: impl Fn(ToolIdx) -> bool) {
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
