//! The approximate nearest-neighbour index for stage 3: an HNSW graph (usearch) over tool
//! embeddings for registries too large to scan on every check, and the choice between it
//! and the exact scan by registry size.
//!
//! The graph only proposes neighbours. Every vector is also kept here (the [`Embedding`]
//! itself, shared with the tool, so this costs a reference count), and every returned
//! score is the exact cosine recomputed from it: scores are on [`ExactIndex`]'s scale even
//! when the graph stores quantised vectors, and a usearch failure never makes a tool
//! disappear from the results (it is scored exactly instead).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::thread;

use mtgs_detect::ToolIdx;
use mtgs_detect::semantic::{Embedding, ExactIndex, VectorIndex, cosine};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Registry size at and above which [`index_for`] picks [`HnswIndex`] over [`ExactIndex`].
///
/// Measured with `cargo bench -p mtgs-embed --bench index` (384 dimensions, k = 16,
/// clustered synthetic vectors, 1 000 single queries, on a 2-core machine that other
/// builds were loading): the exact scan's p50 / p99 was 0.5 / 0.8 ms at 10k,
/// 1.7–2.3 / 6–8 ms at 25k, 3.6–5.1 / 6.5–11 ms at 50k and 6.8 / 10.6 ms at 100k (a quiet
/// machine did 100k in 4.6 ms). HNSW answered in 0.15–0.35 ms p50 at all of these sizes
/// with recall@16 of 1.000 from 25k up, at the price of a build (about 4–6 s for 25k on
/// two threads, ~10 s for 50k) and a second, half-precision copy of the vectors
/// (32 MiB at 25k). 25k is where the exact scan's p99 first passes a few milliseconds
/// while the graph still loses nothing measurable, so the switch is made there.
pub const DEFAULT_HNSW_THRESHOLD: usize = 25_000;

/// Vectors the graph has room for before its first growth.
const INITIAL_CAPACITY: usize = 1_024;

/// How the graph stores its copy of each vector. Scores are exact whatever the choice
/// (recomputed from the full-precision [`Embedding`]); quantisation only changes which
/// candidates the graph proposes, its memory, and its speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// Four bytes a dimension.
    F32,
    /// IEEE half precision: two bytes a dimension.
    F16,
    /// bfloat16: two bytes a dimension, fewer mantissa bits than F16.
    BF16,
    /// One byte a dimension.
    I8,
}

impl Quantization {
    fn scalar_kind(self) -> ScalarKind {
        match self {
            Quantization::F32 => ScalarKind::F32,
            Quantization::F16 => ScalarKind::F16,
            Quantization::BF16 => ScalarKind::BF16,
            Quantization::I8 => ScalarKind::I8,
        }
    }
}

/// The graph's parameters. [`Default`] holds the values chosen with the `index` bench
/// (384 dimensions, k = 16, clustered vectors; recall is of the exact top 16):
///
/// | at 100k                     | build s | graph MiB | p50 ms | recall@16 |
/// |-----------------------------|---------|-----------|--------|-----------|
/// | M 16, ef_add 128, F16, ef 64 (default) | 15–25 | 145 | 0.24–0.30 | 0.995 |
/// | same, ef 128                | 15–25 | 145 | 0.37–0.54 | 1.000 |
/// | F32, ef 128                 | 38 | 273 | 0.63 | 1.000 |
/// | I8, ef 128                  | 23 | 81 | 0.22 | 1.000 |
/// | M 32, ef 64                 | 18 | 177 | 0.40 | 0.999 |
/// | ef_add 64, ef 128           | 10 | 145 | 0.58 | 0.988 |
///
/// At 1M (F16, defaults otherwise) recall@16 was 0.925 / 0.940 / 0.962 at ef 64 / 128 /
/// 256 for 0.9 / 1.6 / 2.7 ms p50, 1.27 GiB of graph; the exact scan took 86 ms.
/// Timings come from a loaded machine and vary by ±50 % between runs; recall does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswSettings {
    /// Links per node (HNSW's `M`). Default 16, usearch's own: 32 raised recall at ef 64
    /// only from 0.995 to 0.999 at 100k, for 22 % more memory and slower queries.
    pub connectivity: usize,
    /// Candidates examined when linking a new vector (`efConstruction`). Default 128,
    /// usearch's own: 64 halves the build but costs recall (0.988 at ef 128, 100k).
    pub expansion_add: usize,
    /// Candidates examined per query (`ef`), raised to the number of results asked for
    /// when that is larger. Default 64, usearch's own: 128 raised recall@16 from 0.995 to
    /// 1.000 at 100k (0.925 to 0.940 at 1M) for 50 % more time per query, and an
    /// all-pairs analysis, which searches from both tools of every pair, spent a third
    /// of its time at 100k in these searches (the analysis took 64 s at 64, 84-86 s at
    /// 128, with 0.06 % fewer findings).
    pub expansion_search: usize,
    /// How the graph stores vectors. Default [`Quantization::F16`]: half the memory of
    /// F32 and faster, with the same recall. I8 measured as well as F16 on both random
    /// and real-embedding-shaped data (the bench's `--corpus`) with half the memory again;
    /// it is not the default because usearch scales a unit vector by 127 and truncates, so
    /// a coordinate keeps only about six steps per standard deviation: a coarseness whose
    /// effect on other models' vectors we have not measured.
    pub quantization: Quantization,
    /// Queries (and, during [`HnswIndex::build`], insert threads) the graph serves at
    /// once: usearch keeps one search context per slot. A query beyond that is answered
    /// by the exact scan instead of failing. Default 64.
    pub concurrency: usize,
}

impl Default for HnswSettings {
    fn default() -> Self {
        Self {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
            quantization: Quantization::F16,
            concurrency: 64,
        }
    }
}

/// The graph could not be created or sized. Once an index exists, its operations do not
/// fail: a usearch error there is logged and the affected tool is served exactly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HnswError {
    #[error("the HNSW index could not be created: {0}")]
    Create(String),
    #[error("the HNSW index could not reserve room for {capacity} vectors: {message}")]
    Reserve { capacity: usize, message: String },
}

/// Approximate nearest-neighbour search over tool embeddings: an HNSW graph with exact
/// rescoring. Implements [`VectorIndex`] with the same results as [`ExactIndex`] except
/// that a true neighbour is occasionally missed (with the default settings, recall@16 was
/// 1.000 at 100k and 0.94 at 1M on the bench's clustered vectors).
///
/// `nearest`'s `skip` runs inside usearch's C++ search loop, where a panic cannot unwind:
/// it aborts the process. The stage's `skip` closures only look tools up.
pub struct HnswIndex {
    dimensions: usize,
    settings: HnswSettings,
    graph: Index,
    /// Every tool in the index, with the vector its scores are computed from.
    vectors: HashMap<ToolIdx, Embedding>,
    /// Tools in `vectors` that the graph does not hold (usearch refused to add them):
    /// every query scores them exactly.
    unindexed: HashSet<ToolIdx>,
    /// Keys the graph still holds although they are gone or replaced here (usearch failed
    /// to remove them): never returned from the graph.
    stale: HashSet<ToolIdx>,
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HnswIndex")
            .field("dimensions", &self.dimensions)
            .field("len", &self.vectors.len())
            .field("capacity", &self.graph.capacity())
            .field("settings", &self.settings)
            .field("unindexed", &self.unindexed.len())
            .field("stale", &self.stale.len())
            .finish()
    }
}

impl HnswIndex {
    /// An empty index for vectors of `dimensions`, with room for a first thousand vectors;
    /// it grows (doubling) as tools are inserted.
    pub fn new(dimensions: usize, settings: HnswSettings) -> Result<Self, HnswError> {
        let options = IndexOptions {
            dimensions,
            // Embeddings are unit length, so the inner product is the cosine; usearch
            // reports `1 - dot`, and only its order is used here.
            metric: MetricKind::IP,
            quantization: settings.quantization.scalar_kind(),
            connectivity: settings.connectivity,
            expansion_add: settings.expansion_add,
            expansion_search: settings.expansion_search,
            multi: false,
        };
        let graph = Index::new(&options).map_err(|error| HnswError::Create(error.to_string()))?;
        let index = Self {
            dimensions,
            settings,
            graph,
            vectors: HashMap::new(),
            unindexed: HashSet::new(),
            stale: HashSet::new(),
        };
        index.reserve_exactly(INITIAL_CAPACITY)?;
        Ok(index)
    }

    /// An index holding `items`, built on all available cores (usearch inserts into one
    /// graph from several threads). Items of the wrong dimension are left out, as
    /// [`VectorIndex::insert`] does; of two items with one index, the later wins. Items
    /// the parallel build left unreachable are then linked again (see `relink_stranded`).
    pub fn build(
        dimensions: usize,
        settings: HnswSettings,
        items: impl IntoIterator<Item = (ToolIdx, Embedding)>,
    ) -> Result<Self, HnswError> {
        let mut index = Self::new(dimensions, settings)?;
        for (idx, embedding) in items {
            if embedding.as_slice().len() == dimensions {
                index.vectors.insert(idx, embedding);
            }
        }
        index.reserve_exactly(index.vectors.len())?;
        let threads = thread::available_parallelism().map_or(1, usize::from).clamp(1, settings.concurrency.max(1));
        let items: Vec<(&ToolIdx, &Embedding)> = index.vectors.iter().collect();
        let graph = &index.graph;
        let failed = on_threads(&items, threads, |idx, embedding| {
            graph.add(key(idx), embedding).err().map(|error| (idx, error.to_string()))
        });
        if let Some((first, error)) = failed.first() {
            tracing::warn!(
                refused = failed.len(),
                first = first.0,
                %error,
                "usearch refused vectors while building the HNSW index; they are scored exactly instead",
            );
        }
        index.unindexed.extend(failed.into_iter().map(|(idx, _)| idx));
        index.relink_stranded(threads);
        Ok(index)
    }

    /// usearch 2.26 can strand a node when several threads add at once
    /// (unum-cloud/USearch#735, fix not released): the node is stored, but no link leads to
    /// it, so no search ever returns it and a duplicate of that tool goes unseen. The tests'
    /// clustered vectors lost about one in 1,300 that way; one-at-a-time inserts lost none.
    /// After a parallel build each item is looked for by its own vector, and one not found
    /// is taken out and added again alone, which links it as a sequential insert does.
    fn relink_stranded(&mut self, threads: usize) {
        self.graph.change_expansion_search(STRANDED_SEARCH_EXPANSION);
        let graph = &self.graph;
        let items: Vec<(&ToolIdx, &Embedding)> =
            self.vectors.iter().filter(|(idx, _)| !self.unindexed.contains(*idx)).collect();
        let stranded = on_threads(&items, threads, |idx, embedding| (!reachable(graph, idx, embedding)).then_some(idx));
        self.graph.change_expansion_search(self.settings.expansion_search);
        for idx in &stranded {
            let Some(vector) = self.vectors.get(idx) else { continue };
            if let Err(error) = self.graph.remove(key(*idx)) {
                tracing::warn!(tool = idx.0, %error, "usearch could not remove a stranded vector; it is scored exactly");
                self.stale.insert(*idx);
                self.unindexed.insert(*idx);
            } else if let Err(error) = self.graph.add(key(*idx), vector.as_slice()) {
                tracing::warn!(tool = idx.0, %error, "usearch refused a stranded vector again; it is scored exactly");
                self.unindexed.insert(*idx);
            }
        }
        if !stranded.is_empty() {
            tracing::debug!(stranded = stranded.len(), "re-linked vectors the parallel HNSW build had stranded");
        }
    }

    /// Makes room for `additional` more vectors without growing on the way.
    pub fn reserve(&mut self, additional: usize) -> Result<(), HnswError> {
        let wanted = self.graph.size().saturating_add(additional);
        if wanted > self.graph.capacity() { self.reserve_exactly(wanted) } else { Ok(()) }
    }

    /// Vectors the graph has room for before it next grows.
    pub fn capacity(&self) -> usize {
        self.graph.capacity()
    }

    /// Bytes usearch has allocated for the graph and its copy of the vectors.
    pub fn memory_usage(&self) -> usize {
        self.graph.memory_usage()
    }

    pub fn settings(&self) -> &HnswSettings {
        &self.settings
    }

    /// Changes the candidates examined per query (see [`HnswSettings::expansion_search`]);
    /// takes effect at once, no rebuild.
    pub fn set_expansion_search(&mut self, expansion: usize) {
        self.graph.change_expansion_search(expansion);
        self.settings.expansion_search = expansion;
    }

    fn reserve_exactly(&self, capacity: usize) -> Result<(), HnswError> {
        let threads = self.settings.concurrency.max(1);
        self.graph
            .reserve_capacity_and_threads(capacity.max(INITIAL_CAPACITY), threads)
            .map_err(|error| HnswError::Reserve { capacity, message: error.to_string() })
    }

    /// Takes `idx` out of the graph and out of this index's bookkeeping.
    fn detach(&mut self, idx: ToolIdx) {
        let unindexed = self.unindexed.remove(&idx);
        let held = self.vectors.remove(&idx).is_some();
        let in_graph = (held && !unindexed) || self.stale.contains(&idx);
        if !in_graph {
            return;
        }
        match self.graph.remove(key(idx)) {
            Ok(_) => {
                self.stale.remove(&idx);
            }
            Err(error) => {
                tracing::warn!(tool = idx.0, %error, "usearch could not remove a vector; it is ignored in searches");
                self.stale.insert(idx);
            }
        }
    }

    /// Grows the graph geometrically before it runs out of room.
    fn ensure_room_for_one(&self) {
        let capacity = self.graph.capacity();
        if self.graph.size() < capacity {
            return;
        }
        let grown = capacity.saturating_mul(2).max(INITIAL_CAPACITY);
        if let Err(error) = self.reserve_exactly(grown) {
            tracing::warn!(%error, "the HNSW index could not grow; new tools are scored exactly");
        }
    }

    /// The exact top `k` of `candidates`, by the same order as [`ExactIndex`].
    fn exact_nearest<'a>(
        &'a self,
        query: &[f32],
        k: usize,
        candidates: impl Iterator<Item = &'a ToolIdx>,
    ) -> Vec<(ToolIdx, f32)> {
        let scored = candidates
            .filter_map(|idx| self.vectors.get(idx).map(|vector| (*idx, cosine(query, vector.as_slice()))))
            .collect();
        top(scored, k)
    }
}

impl VectorIndex for HnswIndex {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn len(&self) -> usize {
        self.vectors.len()
    }

    fn insert(&mut self, idx: ToolIdx, vector: &Embedding) {
        if vector.as_slice().len() != self.dimensions {
            return;
        }
        self.detach(idx);
        self.vectors.insert(idx, vector.clone());
        if self.stale.contains(&idx) {
            // The graph still holds the old vector under this key and refuses a second.
            self.unindexed.insert(idx);
            return;
        }
        self.ensure_room_for_one();
        if let Err(error) = self.graph.add(key(idx), vector.as_slice()) {
            tracing::warn!(tool = idx.0, %error, "usearch refused a vector; the tool is scored exactly instead");
            self.unindexed.insert(idx);
        }
    }

    /// Into an empty index, builds the graph on all cores ([`HnswIndex::build`]);
    /// otherwise one at a time.
    fn insert_many(&mut self, items: Vec<(ToolIdx, Embedding)>) {
        if self.vectors.is_empty() && items.len() > 1 {
            match Self::build(self.dimensions, self.settings, items.iter().cloned()) {
                Ok(built) => {
                    *self = built;
                    return;
                }
                Err(error) => tracing::warn!(%error, "building the HNSW graph in bulk failed; inserting one by one"),
            }
        }
        for (idx, vector) in items {
            self.insert(idx, &vector);
        }
    }

    fn remove(&mut self, idx: ToolIdx) {
        self.detach(idx);
    }

    fn nearest(&self, query: &Embedding, k: usize, skip: &dyn Fn(ToolIdx) -> bool) -> Vec<(ToolIdx, f32)> {
        let query = query.as_slice();
        if query.len() != self.dimensions || k == 0 || self.vectors.is_empty() {
            return Vec::new();
        }
        // A quantised graph ranks candidates slightly differently from the exact scores:
        // ask for more so that the exact top k is among them.
        let fetch = if self.settings.quantization == Quantization::F32 { k } else { k.saturating_mul(2) };
        let stale = &self.stale;
        let from_graph = self.graph.filtered_search(query, fetch, |key| {
            let idx = tool(key);
            !skip(idx) && (stale.is_empty() || !stale.contains(&idx))
        });
        let mut scored = match from_graph {
            Ok(matches) => matches
                .keys
                .iter()
                .filter_map(|key| {
                    let idx = tool(*key);
                    self.vectors.get(&idx).map(|vector| (idx, cosine(query, vector.as_slice())))
                })
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(%error, "HNSW search failed; answering with the exact scan");
                return self.exact_nearest(query, k, self.vectors.keys().filter(|idx| !skip(**idx)));
            }
        };
        let found_in_graph = scored.len();
        scored.extend(
            self.unindexed
                .iter()
                .filter(|idx| !skip(**idx))
                .filter_map(|idx| self.vectors.get(idx).map(|vector| (*idx, cosine(query, vector.as_slice())))),
        );
        let found = scored.len();
        // The graph can come back short when `skip` rules out most of what it visits;
        // count what exists before paying for the exact scan.
        if found < k && found < self.vectors.len() {
            let eligible = self.vectors.keys().filter(|idx| !skip(**idx)).count();
            if eligible > found {
                tracing::debug!(found_in_graph, eligible, "HNSW search came back short; using the exact scan");
                return self.exact_nearest(query, k, self.vectors.keys().filter(|idx| !skip(**idx)));
            }
        }
        top(scored, k)
    }
}

/// The `k` best of `scored`, most similar first, ties by index (as [`ExactIndex`] orders).
fn top(mut scored: Vec<(ToolIdx, f32)>, k: usize) -> Vec<(ToolIdx, f32)> {
    let order = |a: &(ToolIdx, f32), b: &(ToolIdx, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, order);
    }
    scored.truncate(k);
    scored.sort_by(order);
    scored
}

/// `find` over `items` on `threads` threads, what it returns in `items`' order.
fn on_threads<R: Send>(
    items: &[(&ToolIdx, &Embedding)],
    threads: usize,
    find: impl Fn(ToolIdx, &[f32]) -> Option<R> + Sync,
) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let find = &find;
    thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().filter_map(|(idx, embedding)| find(**idx, embedding.as_slice())).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut found = Vec::new();
        for worker in workers {
            match worker.join() {
                Ok(part) => found.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        found
    })
}

/// Candidates examined when looking an item up by its own vector after a parallel build.
/// Greedy descent to a reachable vector's own node needs few; one not found with this
/// many is added again, which costs a sequential insert and loses nothing.
const STRANDED_SEARCH_EXPANSION: usize = 16;

/// Results asked for when looking an item up by its own vector.
const STRANDED_LOOKUP: usize = 4;

/// usearch distance (`1 - dot`) below which two vectors are the same up to quantisation.
const SAME_VECTOR_DISTANCE: f32 = 1e-3;

/// Whether a search for `vector` returns `idx`, or cannot tell: when every result is the
/// same vector (identical tools), the item need not be among them to be reachable.
fn reachable(graph: &Index, idx: ToolIdx, vector: &[f32]) -> bool {
    match graph.search(vector, STRANDED_LOOKUP) {
        Ok(matches) => {
            matches.keys.contains(&key(idx))
                || (matches.keys.len() == STRANDED_LOOKUP
                    && matches.distances.iter().all(|distance| *distance <= SAME_VECTOR_DISTANCE))
        }
        Err(_) => true,
    }
}

fn key(idx: ToolIdx) -> u64 {
    u64::from(idx.0)
}

fn tool(key: u64) -> ToolIdx {
    // Keys are only ever made by `key`, so they fit.
    ToolIdx(u32::try_from(key).unwrap_or(u32::MAX))
}

/// The exact scan or the HNSW graph, chosen by registry size.
#[derive(Debug)]
pub enum AnyIndex {
    Exact(ExactIndex),
    Hnsw(HnswIndex),
}

impl AnyIndex {
    /// [`ExactIndex`] when `expected_len` is below `threshold`, otherwise an [`HnswIndex`]
    /// with default settings and room for `expected_len` vectors. Should usearch fail to
    /// create the graph, the exact scan is used (and a warning logged): slower, never
    /// wrong.
    pub fn for_size(dimensions: usize, expected_len: usize, threshold: usize) -> Self {
        if expected_len < threshold {
            return AnyIndex::Exact(ExactIndex::new(dimensions));
        }
        let hnsw = HnswIndex::new(dimensions, HnswSettings::default()).and_then(|mut index| {
            index.reserve(expected_len)?;
            Ok(index)
        });
        match hnsw {
            Ok(index) => AnyIndex::Hnsw(index),
            Err(error) => {
                tracing::warn!(%error, "falling back to the exact scan");
                AnyIndex::Exact(ExactIndex::new(dimensions))
            }
        }
    }

    /// Whether this is the approximate index.
    pub fn is_approximate(&self) -> bool {
        matches!(self, AnyIndex::Hnsw(_))
    }

    fn inner(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Exact(index) => index,
            AnyIndex::Hnsw(index) => index,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn VectorIndex {
        match self {
            AnyIndex::Exact(index) => index,
            AnyIndex::Hnsw(index) => index,
        }
    }
}

impl VectorIndex for AnyIndex {
    fn dimensions(&self) -> usize {
        self.inner().dimensions()
    }

    fn len(&self) -> usize {
        self.inner().len()
    }

    fn insert(&mut self, idx: ToolIdx, vector: &Embedding) {
        self.inner_mut().insert(idx, vector);
    }

    fn insert_many(&mut self, items: Vec<(ToolIdx, Embedding)>) {
        self.inner_mut().insert_many(items);
    }

    fn remove(&mut self, idx: ToolIdx) {
        self.inner_mut().remove(idx);
    }

    fn nearest(&self, query: &Embedding, k: usize, skip: &dyn Fn(ToolIdx) -> bool) -> Vec<(ToolIdx, f32)> {
        self.inner().nearest(query, k, skip)
    }
}

/// The index for a registry expected to hold `expected_len` tools: the exact scan below
/// `threshold` (normally [`DEFAULT_HNSW_THRESHOLD`]), the HNSW graph at or above it.
pub fn index_for(dimensions: usize, expected_len: usize, threshold: usize) -> Box<dyn VectorIndex> {
    Box::new(AnyIndex::for_size(dimensions, expected_len, threshold))
}
