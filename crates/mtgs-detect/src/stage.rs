//! The `Stage` trait every detection stage implements, the table of registered tools the
//! stages index, and the admission rules through which the orchestrator short-circuits.

use std::collections::HashMap;

use mtgs_core::{ConflictKind, Severity, StageId, ToolKey};
use serde_json::Value;

use crate::prepared::PreparedTool;

/// A registered tool's slot in a [`ToolTable`]. Slots of removed tools are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ToolIdx(pub u32);

/// The registered tools of one environment, as the stages see them.
#[derive(Debug, Default, Clone)]
pub struct ToolTable {
    slots: Vec<Option<PreparedTool>>,
    free: Vec<ToolIdx>,
    by_key: HashMap<ToolKey, ToolIdx>,
}

impl ToolTable {
    pub fn get(&self, idx: ToolIdx) -> Option<&PreparedTool> {
        self.slots.get(idx.0 as usize).and_then(Option::as_ref)
    }

    pub fn find(&self, key: &ToolKey) -> Option<ToolIdx> {
        self.by_key.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Slots in use or free: every [`ToolIdx`] is below this.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (ToolIdx, &PreparedTool)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.as_ref().map(|tool| (ToolIdx(index as u32), tool)))
    }

    pub(crate) fn insert(&mut self, tool: PreparedTool) -> ToolIdx {
        let idx = self.free.pop().unwrap_or(ToolIdx(self.slots.len() as u32));
        self.by_key.insert(tool.key.clone(), idx);
        match self.slots.get_mut(idx.0 as usize) {
            Some(slot) => *slot = Some(tool),
            None => self.slots.push(Some(tool)),
        }
        idx
    }

    pub(crate) fn remove(&mut self, key: &ToolKey) -> Option<(ToolIdx, PreparedTool)> {
        let idx = self.by_key.remove(key)?;
        let tool = self.slots.get_mut(idx.0 as usize)?.take()?;
        self.free.push(idx);
        Some((idx, tool))
    }
}

/// Which pairs a stage is shown. The orchestrator applies these; a stage only declares
/// its own, so new stages plug in without changing the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Finds its own pairs among all registered tools (lexical).
    Discover,
    /// Finds its own pairs, but not pairs for which `stage` already found `at_least`
    /// (semantic skips pairs with a CRITICAL lexical finding: nothing left to prove).
    DiscoverUnless { stage: StageId, at_least: Severity },
    /// Examines every pair a discovering stage linked, whenever it was linked, including
    /// pairs linked by stages that run after it (schema).
    LinkedPairs,
    /// Examines only pairs `stage` flagged (behavioural sees what semantic flagged).
    FlaggedBy(StageId),
}

/// What a stage reports about one pair: the strongest kind it saw, with the rest in the
/// evidence. At most one per pair and stage.
#[derive(Debug, Clone, PartialEq)]
pub struct PairFinding {
    pub other: ToolIdx,
    pub kind: ConflictKind,
    pub severity: Severity,
    pub score: f64,
    pub evidence: Value,
}

/// Something a stage could not do fully (a search cut at its budget, a tool it skipped),
/// reported next to the findings. A stage never fails on an odd definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub stage: StageId,
    pub message: String,
}

/// What a stage is asked to examine.
pub struct Examination<'a> {
    pub tools: &'a ToolTable,
    pub candidate: &'a PreparedTool,
    /// Tools to leave out: the candidate's registered self and excluded keys; for
    /// discovering stages also pairs the admission rule closed. Pair stages that search
    /// the registry (stage 4's shortlists) honour it too.
    pub skip: &'a dyn Fn(ToolIdx) -> bool,
    /// For pair stages: the pairs admitted. Empty for discovering stages.
    pub pairs: &'a [ToolIdx],
    /// Findings earlier stages made about the pairs, for stages that weigh them.
    pub earlier: &'a dyn Fn(ToolIdx) -> Vec<(StageId, Severity)>,
    /// Whether findings need their evidence now. An all-pairs analysis hears of most
    /// pairs from both sides and keeps one report of each, so it asks for the evidence
    /// of the kept reports only, through [`Stage::explain`]; a stage may leave
    /// `evidence` null when this is false.
    pub evidence: bool,
}

impl std::fmt::Debug for Examination<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Examination")
            .field("candidate", &self.candidate.key)
            .field("pairs", &self.pairs)
            .field("evidence", &self.evidence)
            .finish()
    }
}

/// One detection stage. Stages own the indexes they search and are told of every tool
/// that enters or leaves the registry.
pub trait Stage: Send + Sync + std::fmt::Debug {
    fn id(&self) -> StageId;

    fn admission(&self) -> Admission;

    /// A tool entered the registry at `idx`.
    fn insert(&mut self, idx: ToolIdx, tool: &PreparedTool);

    /// Many tools entered the registry at once (a detector built from the store). The
    /// default inserts them one by one; a stage whose index builds faster in bulk
    /// overrides it.
    fn insert_many(&mut self, tools: &[(ToolIdx, &PreparedTool)]) {
        for (idx, tool) in tools {
            self.insert(*idx, tool);
        }
    }

    /// The tool at `idx` left the registry.
    fn remove(&mut self, idx: ToolIdx, tool: &PreparedTool);

    /// Stage 4 itself, so impact simulations can route with its index and router.
    fn behavioural(&self) -> Option<&crate::behavioural::BehaviouralStage> {
        None
    }

    fn examine(
        &self,
        examination: &Examination<'_>,
        findings: &mut Vec<PairFinding>,
        diagnostics: &mut Vec<Diagnostic>,
    );

    /// The evidence of `found`, a finding this stage made about `candidate` in an
    /// examination that did not ask for evidence, as that examination would have written
    /// it. Only called while the registry is unchanged since. Stages that always write
    /// their evidence keep the default.
    fn explain(&self, _tools: &ToolTable, _candidate: &PreparedTool, found: &PairFinding) -> Value {
        found.evidence.clone()
    }
}
