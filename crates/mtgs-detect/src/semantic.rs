//! Stage 3, semantic: tools whose names share nothing but whose definitions mean the same
//! (`jira_create_issue` / `linear_createIssue`), found as nearest neighbours of embedding
//! vectors.
//!
//! The core stays pure: an [`Embedder`] (a model, local or remote) is implemented outside
//! this crate and run by the caller, which attaches each tool's vector to its
//! [`PreparedTool`](crate::PreparedTool) before inserting or checking it. The stage only
//! indexes and compares vectors, through a [`VectorIndex`].

use std::collections::{BinaryHeap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use mtgs_core::{ConflictKind, Severity, StageId, ToolDef};
use serde_json::{Value, json};

use crate::prepared::PreparedTool;
use crate::stage::{Admission, Diagnostic, Examination, PairFinding, Stage, ToolIdx};
use crate::text;

/// Characters of a fingerprint: enough for the name, title, the opening of the description
/// and the parameters; a small model reads at most 256 tokens of it anyway.
pub const FINGERPRINT_CHARS: usize = 1_200;
/// Characters of the description a fingerprint takes.
const FINGERPRINT_DESCRIPTION_CHARS: usize = 700;

/// The text embedded for a tool: its name split into words, its title, the opening of its
/// description, and its parameters as `name: description`, one per line, cut at
/// [`FINGERPRINT_CHARS`]. What a person reading the definition would take it to do.
pub fn fingerprint(def: &ToolDef) -> String {
    let mut text = text::name_words(def.name.as_str()).join(" ");
    if let Some(title) = def.title.as_deref().filter(|title| !title.trim().is_empty()) {
        text.push('\n');
        text.push_str(title.trim());
    }
    if let Some(description) = def.description.as_deref() {
        text.push('\n');
        text.extend(description.trim().chars().take(FINGERPRINT_DESCRIPTION_CHARS));
    }
    if let Some(properties) = def.input_schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            text.push('\n');
            text.push_str(&text::name_words(name).join(" "));
            if let Some(description) = property.get("description").and_then(Value::as_str) {
                text.push_str(": ");
                text.extend(description.trim().chars().take(120));
            }
        }
    }
    text.chars().take(FINGERPRINT_CHARS).collect()
}

/// A sentence-embedding model. Implementations live outside the core (the local model,
/// remote providers); calls may block, so async callers run them on a blocking thread.
pub trait Embedder: Send + Sync + Debug {
    /// The model's identity (name, revision, dimensions): vectors of two identities are
    /// never compared, cached under one key, or mixed in one index.
    fn model_id(&self) -> &str;

    fn dimensions(&self) -> usize;

    /// One unit-length vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The model or provider could not be reached or loaded.
    #[error("embedding model unavailable: {0}")]
    Unavailable(String),
    /// The model answered with something unusable (wrong count or dimension).
    #[error("embedding model answered badly: {0}")]
    BadResponse(String),
}

/// A tool's embedding: unit length, shared between the tool and the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Arc<[f32]>);

impl Embedding {
    /// Normalises `vector` to unit length; `None` for an empty or all-zero vector.
    pub fn new(vector: Vec<f32>) -> Option<Self> {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if vector.is_empty() || norm == 0.0 || !norm.is_finite() {
            return None;
        }
        Some(Self(vector.into_iter().map(|x| x / norm).collect()))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes at a time: the compiler vectorises this for the target CPU.
    let mut sums = [0.0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// Nearest-neighbour search over tool embeddings.
pub trait VectorIndex: Send + Sync + Debug {
    fn dimensions(&self) -> usize;

    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds (or replaces) the vector of `idx`.
    fn insert(&mut self, idx: ToolIdx, vector: &Embedding);

    /// Adds many vectors; the default inserts them one by one. Indexes that build faster
    /// in bulk (an HNSW graph, on several threads) override it.
    fn insert_many(&mut self, items: Vec<(ToolIdx, Embedding)>) {
        for (idx, vector) in items {
            self.insert(idx, &vector);
        }
    }

    fn remove(&mut self, idx: ToolIdx);

    /// Up to `k` tools most similar to `query`, most similar first, leaving out `skip`.
    fn nearest(&self, query: &Embedding, k: usize, skip: &dyn Fn(ToolIdx) -> bool) -> Vec<(ToolIdx, f32)>;
}

/// Exact search: every vector compared, in one contiguous array. The baseline every
/// approximate index is measured against.
#[derive(Debug, Clone)]
pub struct ExactIndex {
    dimensions: usize,
    vectors: Vec<f32>,
    owners: Vec<ToolIdx>,
    positions: HashMap<ToolIdx, usize>,
}

impl ExactIndex {
    pub fn new(dimensions: usize) -> Self {
        Self { dimensions, vectors: Vec::new(), owners: Vec::new(), positions: HashMap::new() }
    }
}

impl VectorIndex for ExactIndex {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn len(&self) -> usize {
        self.owners.len()
    }

    fn insert(&mut self, idx: ToolIdx, vector: &Embedding) {
        if vector.as_slice().len() != self.dimensions {
            return;
        }
        self.remove(idx);
        self.positions.insert(idx, self.owners.len());
        self.owners.push(idx);
        self.vectors.extend_from_slice(vector.as_slice());
    }

    fn remove(&mut self, idx: ToolIdx) {
        let Some(position) = self.positions.remove(&idx) else { return };
        let last = self.owners.len() - 1;
        if position != last {
            // Move the last vector into the hole.
            let (dims, moved) = (self.dimensions, self.owners[last]);
            self.vectors.copy_within(last * dims..(last + 1) * dims, position * dims);
            self.owners[position] = moved;
            self.positions.insert(moved, position);
        }
        self.owners.pop();
        self.vectors.truncate(last * self.dimensions);
    }

    fn nearest(&self, query: &Embedding, k: usize, skip: &dyn Fn(ToolIdx) -> bool) -> Vec<(ToolIdx, f32)> {
        if query.as_slice().len() != self.dimensions || k == 0 {
            return Vec::new();
        }
        // The best k so far in a min-heap; `skip` is asked only about vectors that would
        // enter it, so a scan costs one dot product per vector and no allocation per vector.
        let mut best: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        for (vector, owner) in self.vectors.chunks_exact(self.dimensions).zip(&self.owners) {
            let ranked = Ranked { score: cosine(query.as_slice(), vector), idx: *owner };
            if best.len() == k && best.peek().is_some_and(|worst| ranked >= *worst) {
                continue;
            }
            if skip(*owner) {
                continue;
            }
            best.push(ranked);
            if best.len() > k {
                best.pop();
            }
        }
        best.into_sorted_vec().into_iter().map(|ranked| (ranked.idx, ranked.score)).collect()
    }
}

/// A scored tool ordered best first: higher score, then lower index. The heap's top is
/// the greatest, which is the worst kept.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f32,
    idx: ToolIdx,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.score.total_cmp(&self.score).then(self.idx.cmp(&other.idx))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Ranked {}

/// When similarity becomes a finding, calibrated on the eval tuning half
/// (`docs/semantic-calibration.md` has the curve).
///
/// Similarity alone does not separate conflicts: a server's own siblings
/// (`git_diff_staged` / `git_diff_unstaged`) sit above most cross-server conflicts, and a
/// registry of 2,000 tools holds thousands of cross-server pairs above 0.5. What does
/// separate them is *mutual* nearness: two tools that are each other's closest match on
/// another server do the same job. So a pair is
/// - LOW from `low` up (visible, never blocking);
/// - MEDIUM when, across servers, each tool is among the other's `mutual_rank` most similar
///   tools of the other's server set, at `medium` or above;
/// - HIGH at `high` or above, across servers (near-identical definitions);
///
/// and capped at LOW within one server, or when the names state different actions
/// (`create_*` / `delete_*` read alike to a sentence encoder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemanticThresholds {
    pub low: f32,
    pub medium: f32,
    pub high: f32,
    /// How near (1 = the nearest) each tool must be to the other for MEDIUM.
    pub mutual_rank: usize,
}

impl Default for SemanticThresholds {
    fn default() -> Self {
        Self { low: 0.5, medium: 0.55, high: 0.85, mutual_rank: 3 }
    }
}

/// Stage 3. Skips pairs the lexical stage already proved CRITICAL.
#[derive(Debug)]
pub struct SemanticStage {
    index: Box<dyn VectorIndex>,
    thresholds: SemanticThresholds,
    /// Neighbours examined per check.
    neighbours: usize,
    /// Each tool's nearest tools of other servers, as [`SemanticStage::rank_from`] reads
    /// them, until the index changes. In an analysis every tool's neighbours ask for
    /// the ranks of theirs: one search per tool instead of one per pair asked.
    ranked: std::sync::Mutex<rustc_hash::FxHashMap<ToolIdx, Neighbours>>,
}

/// Tools near one tool with their similarity, most similar first.
type Neighbours = Arc<[(ToolIdx, f32)]>;

/// Neighbours a [`SemanticStage::rank_from`] list keeps beyond `mutual_rank`, so that
/// leaving out a candidate's own closed pairs rarely leaves it short.
const RANK_SLACK: usize = 5;

impl SemanticStage {
    pub fn new(index: Box<dyn VectorIndex>, thresholds: SemanticThresholds) -> Self {
        Self { index, thresholds, neighbours: 16, ranked: std::sync::Mutex::default() }
    }

    /// The nearest tools to `vector` outside `outside` (the tool at `tool_idx` and its own
    /// server's), best first: from the memo when the index has not changed since.
    fn cross_server_nearest(
        &self,
        tool_idx: ToolIdx,
        vector: &Embedding,
        outside: &dyn Fn(ToolIdx) -> bool,
    ) -> Neighbours {
        let memo = || self.ranked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = memo().get(&tool_idx) {
            return found.clone();
        }
        let found: Neighbours = self.index.nearest(vector, self.thresholds.mutual_rank + RANK_SLACK, outside).into();
        memo().insert(tool_idx, found.clone());
        found
    }

    /// The memo is only good for the index it was searched in.
    fn forget_ranks(&mut self) {
        let memo = self.ranked.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !memo.is_empty() {
            memo.clear();
        }
    }

    /// 1 + how many tools of servers other than `tool`'s are more similar to `tool` than
    /// `similarity`, counting at most up to `mutual_rank + 1`.
    fn rank_from(
        &self,
        tool: &PreparedTool,
        tool_idx: ToolIdx,
        similarity: f32,
        examination: &Examination<'_>,
    ) -> usize {
        let Some(vector) = &tool.embedding else { return usize::MAX };
        let wanted = self.thresholds.mutual_rank;
        let outside = |idx: ToolIdx| {
            idx == tool_idx || examination.tools.get(idx).is_none_or(|other| other.key.server == tool.key.server)
        };
        let nearest = self.cross_server_nearest(tool_idx, vector, &outside);
        // The examination's own exclusions (the candidate, its closed pairs) come out
        // here; the list is best first, so counting stops at the first tool that is not
        // more similar.
        let mut closer = 0;
        for (idx, other) in nearest.iter() {
            if (examination.skip)(*idx) {
                continue;
            }
            if closer == wanted || *other <= similarity {
                return 1 + closer;
            }
            closer += 1;
        }
        // Out of neighbours: the list held every tool there is, or the exclusions took
        // more than the slack.
        if closer == wanted || nearest.len() < wanted + RANK_SLACK {
            return 1 + closer;
        }
        // Search again, the exclusions left out by the index itself.
        let skip = |idx: ToolIdx| outside(idx) || (examination.skip)(idx);
        1 + self.index.nearest(vector, wanted, &skip).into_iter().filter(|(_, other)| *other > similarity).count()
    }
}

impl Stage for SemanticStage {
    fn id(&self) -> StageId {
        StageId::Semantic
    }

    fn admission(&self) -> Admission {
        Admission::DiscoverUnless { stage: StageId::Lexical, at_least: Severity::Critical }
    }

    fn insert(&mut self, idx: ToolIdx, tool: &PreparedTool) {
        if let Some(embedding) = &tool.embedding {
            self.forget_ranks();
            self.index.insert(idx, embedding);
        }
    }

    fn insert_many(&mut self, tools: &[(ToolIdx, &PreparedTool)]) {
        self.forget_ranks();
        let items =
            tools.iter().filter_map(|(idx, tool)| tool.embedding.clone().map(|vector| (*idx, vector))).collect();
        self.index.insert_many(items);
    }

    fn remove(&mut self, idx: ToolIdx, _tool: &PreparedTool) {
        self.forget_ranks();
        self.index.remove(idx);
    }

    fn examine(
        &self,
        examination: &Examination<'_>,
        findings: &mut Vec<PairFinding>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let candidate = examination.candidate;
        let Some(query) = &candidate.embedding else {
            diagnostics.push(Diagnostic {
                stage: StageId::Semantic,
                message: format!("{} has no embedding; the semantic stage did not run for it", candidate.key),
            });
            return;
        };
        if query.as_slice().len() != self.index.dimensions() {
            diagnostics.push(Diagnostic {
                stage: StageId::Semantic,
                message: format!(
                    "{} has a {}-dimensional embedding; the index holds {} dimensions",
                    candidate.key,
                    query.as_slice().len(),
                    self.index.dimensions()
                ),
            });
            return;
        }
        let thresholds = self.thresholds;
        // Rank among tools of other servers, 1 = the nearest.
        let mut cross_rank = 0;
        for (idx, similarity) in self.index.nearest(query, self.neighbours, examination.skip) {
            let Some(other) = examination.tools.get(idx) else { continue };
            let same_server = other.key.server == candidate.key.server;
            if !same_server {
                cross_rank += 1;
            }
            if similarity < thresholds.low {
                break;
            }
            let mutual = !same_server
                && similarity >= thresholds.medium
                && cross_rank <= thresholds.mutual_rank
                && self.rank_from(other, idx, similarity, examination) <= thresholds.mutual_rank;
            let different_action = crate::lexical::names_differ_in_action(candidate, other);
            let severity = if same_server || different_action {
                Severity::Low
            } else if similarity >= thresholds.high {
                Severity::High
            } else if mutual {
                Severity::Medium
            } else {
                Severity::Low
            };
            let rounded = (f64::from(similarity) * 1000.0).round() / 1000.0;
            findings.push(PairFinding {
                other: idx,
                kind: ConflictKind::SemanticSimilarity,
                severity,
                score: rounded,
                evidence: json!({
                    "similarity": rounded,
                    "mutual_nearest": mutual,
                    "same_server": same_server,
                    "different_action": different_action,
                }),
            });
        }
    }
}
