//! Build time, query latency, recall and memory of the HNSW index against the exact scan,
//! on clustered synthetic unit vectors (topics, groups of near-duplicate tools within
//! them, and fresh tools as queries), to choose `HnswSettings`' defaults and
//! `DEFAULT_HNSW_THRESHOLD`.
//!
//! `cargo bench -p mtgs-embed --bench index -- --sizes 10000,100000 --queries 1000 --seed 7`
//!
//! Other flags: `--dims 384`, `--k 16`, `--connectivity 16`, `--expansion-add 128`,
//! `--expansion-search 64,128,256` (a list: one row each, same graph),
//! `--quantization f32|f16|bf16|i8`, `--inserts 1000` (one-at-a-time inserts timed after
//! the queries), `--corpus` (group centres are the bundled model's embeddings of the
//! real tools in `eval/corpus` instead of random points: the anisotropy of real sentence
//! embeddings, which quantisation is sensitive to; 384 dimensions).

use std::time::{Duration, Instant};

use mtgs_detect::ToolIdx;
use mtgs_detect::semantic::{Embedding, ExactIndex, SemanticThresholds, VectorIndex, fingerprint};
use mtgs_embed::hnsw::{HnswIndex, HnswSettings, Quantization};

mod common;

use common::Rng;

/// `point` plus isotropic noise of total length `noise`, normalised.
fn near(rng: &mut Rng, point: &[f32], noise: f32) -> Embedding {
    let per_dimension = noise / (point.len() as f32).sqrt();
    Embedding::new(point.iter().map(|x| x + per_dimension * rng.normal()).collect()).expect("non-zero")
}

/// Topics, and within them groups of about twenty near-duplicate tools (one function
/// published by many vendors); members sit at varying distances from their group's centre.
struct Registry {
    groups: Vec<Embedding>,
}

impl Registry {
    fn new(rng: &mut Rng, size: usize, dims: usize) -> Self {
        let topics: Vec<Embedding> = (0..64).map(|_| near(rng, &vec![0.0; dims], 1.0)).collect();
        let groups = (0..(size / 20).max(50))
            .map(|_| {
                let topic = &topics[rng.below(topics.len())];
                near(rng, topic.as_slice(), 1.0)
            })
            .collect();
        Self { groups }
    }

    /// Groups centred on real tools: one group per corpus tool, cycled, each centre moved
    /// a little so that the groups of one corpus tool are distinct.
    fn from_corpus(rng: &mut Rng, size: usize, corpus: &[Embedding]) -> Self {
        let groups =
            (0..(size / 20).max(50)).map(|group| near(rng, corpus[group % corpus.len()].as_slice(), 0.3)).collect();
        Self { groups }
    }

    fn tool(&self, rng: &mut Rng) -> Embedding {
        let group = &self.groups[rng.below(self.groups.len())];
        let noise = 0.15 + 0.65 * rng.unit();
        near(rng, group.as_slice(), noise)
    }
}

/// The bundled model's embeddings of the fingerprints of every tool in `eval/corpus`.
fn corpus_embeddings() -> Vec<Embedding> {
    let texts: Vec<String> = common::corpus().iter().map(fingerprint).collect();
    let encoder = pocket_encoder::Encoder::new().expect("the bundled model loads");
    let start = Instant::now();
    let vectors: Vec<Embedding> = texts
        .chunks(256)
        .flat_map(|chunk| encoder.embed(chunk).expect("the bundled model embeds"))
        .map(|vector| Embedding::new(vector).expect("non-zero"))
        .collect();
    println!("corpus: {} tools embedded in {:.1} s", vectors.len(), start.elapsed().as_secs_f64());
    vectors
}

struct Args {
    sizes: Vec<usize>,
    queries: usize,
    seed: u64,
    dims: usize,
    k: usize,
    settings: HnswSettings,
    expansion_search: Vec<usize>,
    inserts: usize,
    corpus: bool,
}

fn list(value: &str) -> Vec<usize> {
    value.split(',').map(|part| part.trim().replace('_', "").parse().expect("a number")).collect()
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: vec![10_000, 100_000],
        queries: 1_000,
        seed: 7,
        dims: 384,
        k: 16,
        settings: HnswSettings::default(),
        expansion_search: vec![HnswSettings::default().expansion_search],
        inserts: 1_000,
        corpus: false,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        if flag == "--bench" {
            continue;
        }
        if flag == "--corpus" {
            args.corpus = true;
            continue;
        }
        let value = raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => args.sizes = list(&value),
            "--queries" => args.queries = list(&value)[0],
            "--seed" => args.seed = value.parse().expect("a seed"),
            "--dims" => args.dims = list(&value)[0],
            "--k" => args.k = list(&value)[0],
            "--connectivity" => args.settings.connectivity = list(&value)[0],
            "--expansion-add" => args.settings.expansion_add = list(&value)[0],
            "--expansion-search" => args.expansion_search = list(&value),
            "--inserts" => args.inserts = list(&value)[0],
            "--quantization" => {
                args.settings.quantization = match value.as_str() {
                    "f32" => Quantization::F32,
                    "f16" => Quantization::F16,
                    "bf16" => Quantization::BF16,
                    "i8" => Quantization::I8,
                    other => panic!("unknown quantization {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let position = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[position].as_secs_f64() * 1_000.0
}

/// Resident memory of this process, in MiB (Linux).
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn time_each<T>(items: &[T], mut run: impl FnMut(&T)) -> Vec<Duration> {
    let mut times: Vec<Duration> = items
        .iter()
        .map(|item| {
            let start = Instant::now();
            run(item);
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn main() {
    let mut args = parse_args();
    let corpus = if args.corpus { corpus_embeddings() } else { Vec::new() };
    if let Some(first) = corpus.first() {
        args.dims = first.as_slice().len();
    }
    let nothing = |_: ToolIdx| false;
    // The semantic stage's lowest band: the neighbours that can become findings, so the
    // recall that matters most.
    let similar = SemanticThresholds::default().low;
    println!(
        "dims {}, k {}, {} queries, seed {}, connectivity {}, expansion_add {}, quantization {:?}, {} threads",
        args.dims,
        args.k,
        args.queries,
        args.seed,
        args.settings.connectivity,
        args.settings.expansion_add,
        args.settings.quantization,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    println!(
        "| size | build s | graph MiB | RSS +MiB | exact p50 ms | exact p99 ms | ef | hnsw p50 ms | hnsw p99 ms | recall@{} | recall ≥ {similar} (pairs) |",
        args.k
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &size in &args.sizes {
        let mut rng = Rng(args.seed ^ size as u64);
        let registry = if corpus.is_empty() {
            Registry::new(&mut rng, size, args.dims)
        } else {
            Registry::from_corpus(&mut rng, size, &corpus)
        };
        let tools: Vec<Embedding> = (0..size).map(|_| registry.tool(&mut rng)).collect();
        let queries: Vec<Embedding> = (0..args.queries).map(|_| registry.tool(&mut rng)).collect();

        let mut exact = ExactIndex::new(args.dims);
        for (position, tool) in tools.iter().enumerate() {
            exact.insert(ToolIdx(position as u32), tool);
        }
        let mut truths = Vec::with_capacity(queries.len());
        let exact_times = time_each(&queries, |query| truths.push(exact.nearest(query, args.k, &nothing)));
        drop(exact);

        let before = resident_mib();
        let start = Instant::now();
        let items = tools.iter().cloned().enumerate().map(|(position, tool)| (ToolIdx(position as u32), tool));
        let mut hnsw = HnswIndex::build(args.dims, args.settings, items).expect("usearch builds the index");
        let build = start.elapsed().as_secs_f64();
        let grown = before.zip(resident_mib()).map(|(before, after)| after - before);
        let graph_mib = hnsw.memory_usage() as f64 / (1024.0 * 1024.0);

        for &expansion in &args.expansion_search {
            hnsw.set_expansion_search(expansion);
            let mut found = 0usize;
            let mut wanted = 0usize;
            let (mut similar_found, mut similar_wanted) = (0usize, 0usize);
            let mut position = 0;
            let hnsw_times = time_each(&queries, |query| {
                let results = hnsw.nearest(query, args.k, &nothing);
                let truth = &truths[position];
                position += 1;
                wanted += truth.len();
                found += results.iter().filter(|(idx, _)| truth.iter().any(|(other, _)| other == idx)).count();
                for (idx, similarity) in truth.iter().filter(|(_, similarity)| *similarity >= similar) {
                    similar_wanted += 1;
                    similar_found +=
                        usize::from(results.iter().any(|(found, score)| found == idx && score == similarity));
                }
            });
            println!(
                "| {size} | {build:.1} | {graph_mib:.0} | {} | {:.3} | {:.3} | {expansion} | {:.3} | {:.3} | {:.3} | {:.3} ({similar_wanted}) |",
                grown.map_or("?".to_owned(), |mib| format!("{mib:.0}")),
                percentile(&exact_times, 0.50),
                percentile(&exact_times, 0.99),
                percentile(&hnsw_times, 0.50),
                percentile(&hnsw_times, 0.99),
                found as f64 / wanted.max(1) as f64,
                similar_found as f64 / similar_wanted.max(1) as f64,
            );
        }

        if args.inserts > 0 {
            let fresh: Vec<Embedding> = (0..args.inserts).map(|_| registry.tool(&mut rng)).collect();
            let mut next = size as u32;
            let insert_times = time_each(&fresh, |tool| {
                hnsw.insert(ToolIdx(next), tool);
                next += 1;
            });
            println!(
                "  size {size}: one-at-a-time insert p50 {:.3} ms, p99 {:.3} ms",
                percentile(&insert_times, 0.50),
                percentile(&insert_times, 0.99),
            );
        }
    }
}
