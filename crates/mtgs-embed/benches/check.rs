//! Check latency against large registries generated deterministically from the real tool
//! definitions in `eval/corpus`: stages 1-2, or stages 1-3 with the real model embedding
//! each candidate and an exact or HNSW vector index.
//!
//! `cargo bench -p mtgs-embed --bench check -- --tools 10000,100000 --queries 1000 --seed 7
//!  [--stages 2|3] [--index exact|hnsw] [--model DIR]` (the bundled model without `--model`)
//!
//! Prints, per registry size: build time, then p50 / p99 / max latency of checking tools
//! that are not in the registry (fresh vendors over the same corpus, so every query has
//! real near-duplicates to find); with stage 3, the candidate's embedding is timed apart
//! and in the total. Registry tools are not embedded one by one (100k texts take an hour
//! on 2 cores): each takes the real vector of the corpus tool it varies, plus a little
//! noise, as its vendor-renamed twin would have.

use std::time::{Duration, Instant};

use mtgs_detect::semantic::{Embedder, Embedding, SemanticThresholds, fingerprint};
use mtgs_detect::{Detector, PreparedTool};

mod common;

use common::{Rng, corpus, registry};

/// `vector` moved by a little deterministic noise, at unit length.
fn jitter(vector: &[f32], rng: &mut Rng) -> Embedding {
    let scale = 0.6 / (vector.len() as f32).sqrt();
    let noisy = vector.iter().map(|x| x + scale * ((rng.below(2001) as f32 / 1000.0) - 1.0)).collect();
    Embedding::new(noisy).expect("non-zero")
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| -> String {
        args.iter().position(|arg| arg == flag).and_then(|i| args.get(i + 1).cloned()).unwrap_or(default.to_owned())
    };
    let sizes: Vec<usize> =
        value("--tools", "10000,100000").split(',').map(|n| n.trim().parse().expect("--tools takes numbers")).collect();
    let queries: usize = value("--queries", "1000").parse().expect("--queries takes a number");
    let seed: u64 = value("--seed", "7").parse().expect("--seed takes a number");
    let semantic = value("--stages", "3") == "3";
    let hnsw = value("--index", "exact") == "hnsw";

    let corpus = corpus();
    let embedder: Option<Box<dyn Embedder>> = semantic.then(|| -> Box<dyn Embedder> {
        match args.iter().position(|arg| arg == "--model").and_then(|i| args.get(i + 1)) {
            Some(dir) => Box::new(
                mtgs_embed::BertEmbedder::load(std::path::Path::new(dir), 128, mtgs_embed::default_workers())
                    .expect("the model loads"),
            ),
            None => Box::new(mtgs_embed::BundledEmbedder::load(mtgs_embed::default_workers()).expect("loads")),
        }
    });
    let corpus_vectors: Vec<Vec<f32>> = match &embedder {
        Some(embedder) => {
            let texts: Vec<String> = corpus.iter().map(fingerprint).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let started = Instant::now();
            let vectors = embedder.embed(&refs).expect("the corpus embeds");
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "model {}: embedded {} corpus fingerprints in {elapsed:.1} s ({:.0} texts/s, {} workers)",
                embedder.model_id(),
                texts.len(),
                texts.len() as f64 / elapsed,
                mtgs_embed::default_workers()
            );
            vectors
        }
        None => Vec::new(),
    };
    println!(
        "corpus: {} real tool definitions; queries per size: {queries}; seed {seed}; stages 1-{}; index {}",
        corpus.len(),
        if semantic { 3 } else { 2 },
        if hnsw { "hnsw" } else { "exact" }
    );
    println!(
        "| tools | build | embed p50 | embed p99 | detect p50 | detect p99 | total p50 | total p99 | total max | findings/check |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        let mut rng = Rng(seed);
        let tools = registry(&corpus, size, &mut rng);
        let started = Instant::now();
        let mut detector = match &embedder {
            Some(embedder) => {
                let threshold = if hnsw { 0 } else { usize::MAX };
                Detector::with_semantic(
                    mtgs_embed::hnsw::index_for(embedder.dimensions(), size, threshold),
                    SemanticThresholds::default(),
                )
            }
            None => Detector::with_default_stages(),
        };
        let prepared: Vec<PreparedTool> = tools
            .into_iter()
            .map(|(server, def, base)| {
                let embedding = corpus_vectors.get(base).map(|vector| jitter(vector, &mut rng));
                PreparedTool::new(server, def).with_embedding(embedding)
            })
            .collect();
        detector.insert_many(prepared);
        let build = started.elapsed();

        let mut query_rng = Rng(seed ^ 0xDEAD_BEEF);
        let candidates = registry(&corpus, queries, &mut query_rng);
        let (mut embeds, mut detects, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        let mut findings = 0;
        for (server, def, _) in candidates {
            let started = Instant::now();
            let embedding = embedder.as_ref().map(|embedder| {
                let vector = embedder.embed(&[fingerprint(&def).as_str()]).expect("embeds").remove(0);
                Embedding::new(vector).expect("non-zero")
            });
            let embedded = started.elapsed();
            let result = detector.check_prepared(&PreparedTool::new(server, def).with_embedding(embedding), &[]);
            let total = started.elapsed();
            embeds.push(embedded);
            detects.push(total - embedded);
            totals.push(total);
            findings += result.findings.len();
        }
        for latencies in [&mut embeds, &mut detects, &mut totals] {
            latencies.sort();
        }
        let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
        println!(
            "| {size} | {:.2} s | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} |",
            build.as_secs_f64(),
            ms(percentile(&embeds, 0.5)),
            ms(percentile(&embeds, 0.99)),
            ms(percentile(&detects, 0.5)),
            ms(percentile(&detects, 0.99)),
            ms(percentile(&totals, 0.5)),
            ms(percentile(&totals, 0.99)),
            ms(totals.last().copied().unwrap_or_default()),
            findings as f64 / queries as f64,
        );
    }
}
