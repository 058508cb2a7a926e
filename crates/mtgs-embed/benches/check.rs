//! Check latency against large registries generated deterministically from the real tool
//! definitions in `eval/corpus`: stages 1-2, or stages 1-3 with the real model embedding
//! each candidate and an exact or HNSW vector index.
//!
//! `cargo bench -p mtgs-embed --bench check -- --tools 10000,100000 --queries 1000 --seed 7
//!  [--stages 2|3] [--index exact|hnsw] [--model DIR] [--analyze]` (the bundled model
//!  without `--model`)
//!
//! Registries come from `mtgs_detect::synth` (the generator of `mtgs bench`). Prints, per
//! registry size: build time, then p50 / p99 / max latency of checking tools that are not
//! in the registry (another seed's vendors over the same corpus, so queries have real
//! near-duplicates to find), per stage and in total; with stage 3, the candidate's
//! embedding is timed apart and in the total. `--analyze` then times the all-pairs
//! analysis of the registry (detection only; `mtgs bench run` measures it with the store)
//! and the peak resident memory.
//!
//! Registry tools are not embedded one by one (100k texts take over 20 minutes on 2
//! cores): each takes the real vector of the corpus tool it came from, moved towards its
//! server's domain when the generator shifted that server to other objects (tools of one
//! domain stay close, copies in other domains move apart), plus a little noise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mtgs_detect::semantic::{Embedder, Embedding, SemanticThresholds, fingerprint};
use mtgs_detect::synth::{Origin, SynthSettings, synthesize};
use mtgs_detect::{Detector, PreparedTool};

mod common;

use common::{Rng, corpus, corpus_by_server};

/// The allocator the `mtgs` binary runs detection with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A stand-in vector for a generated tool: its corpus tool's real vector, moved towards a
/// direction of its own for a shifted domain, then jittered (see the module docs).
fn stand_in(corpus_vectors: &[Vec<f32>], origin: Origin, shift: f32, rng: &mut Rng) -> Option<Embedding> {
    let base = corpus_vectors.get(origin.corpus_tool)?;
    if origin.domain == 0 {
        return Some(jitter(base, rng));
    }
    let mut direction = Rng(origin.domain);
    let offset: Vec<f32> = (0..base.len()).map(|_| direction.normal()).collect();
    let norm = offset.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    let moved: Vec<f32> = base.iter().zip(&offset).map(|(x, o)| x + shift * o / norm).collect();
    Some(jitter(&moved, rng))
}

/// The process's peak resident memory so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

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
    let analyze = args.iter().any(|arg| arg == "--analyze");

    let corpus = corpus();
    let servers = corpus_by_server();
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
    // How far a domain shift moves a tool's vector, measured: real vectors of shifted
    // tools against their corpus tool's; a stand-in moves by `shift` along a random
    // direction, so its cosine with the original is 1 / sqrt(1 + shift²).
    let shift = match &embedder {
        Some(embedder) => {
            let sample = synthesize(&servers, &SynthSettings { tools: 20_000, seed: seed + 1, planted: 0.0 });
            let shifted: Vec<(&mtgs_core::ToolDef, Origin)> = sample
                .servers
                .iter()
                .flat_map(|server| server.tools.iter().zip(server.origins.iter().copied()))
                .filter(|(_, origin)| origin.domain != 0)
                .take(200)
                .collect();
            let texts: Vec<String> = shifted.iter().map(|(def, _)| fingerprint(def)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = embedder.embed(&refs).expect("the sample embeds");
            let cosines: Vec<f32> = vectors
                .iter()
                .zip(&shifted)
                .map(|(vector, (_, origin))| {
                    let base = &corpus_vectors[origin.corpus_tool];
                    vector.iter().zip(base).map(|(x, y)| x * y).sum::<f32>()
                })
                .collect();
            let mean = cosines.iter().sum::<f32>() / cosines.len().max(1) as f32;
            let shift = (1.0 / mean.clamp(0.05, 0.999).powi(2) - 1.0).sqrt();
            println!(
                "domain shift: {} shifted tools embedded for real have mean cosine {mean:.3} with their corpus tool; stand-ins move by {shift:.2}",
                cosines.len()
            );
            shift
        }
        None => 0.0,
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
    let mut stage_rows = Vec::new();
    let mut analyses = Vec::new();
    let mut breakdown = Vec::new();
    for size in sizes {
        let mut rng = Rng(seed);
        let synthetic = synthesize(&servers, &SynthSettings { tools: size, seed, planted: 0.05 });
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
        let prepared: Vec<PreparedTool> = synthetic
            .servers
            .iter()
            .flat_map(|server| {
                server
                    .tools
                    .iter()
                    .zip(&server.origins)
                    .map(|(def, origin)| (server.name.clone(), def.clone(), *origin))
            })
            .map(|(server, def, origin)| {
                let embedding = stand_in(&corpus_vectors, origin, shift, &mut rng);
                PreparedTool::new(server, def).with_embedding(embedding)
            })
            .collect();
        detector.insert_many(prepared);
        let build = started.elapsed();

        let candidates =
            synthesize(&servers, &SynthSettings { tools: queries, seed: seed ^ 0xDEAD_BEEF, planted: 0.0 });
        let (mut embeds, mut detects, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        let mut per_stage: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
        let mut findings = 0;
        for server in &candidates.servers {
            for def in &server.tools {
                let started = Instant::now();
                let embedding = embedder.as_ref().map(|embedder| {
                    let vector = embedder.embed(&[fingerprint(def).as_str()]).expect("embeds").remove(0);
                    Embedding::new(vector).expect("non-zero")
                });
                let embedded = started.elapsed();
                let candidate = PreparedTool::new(server.name.clone(), def.clone()).with_embedding(embedding);
                let result = detector.check_prepared(&candidate, &[]);
                let total = started.elapsed();
                embeds.push(embedded);
                detects.push(total - embedded);
                totals.push(total);
                findings += result.findings.len();
                for (stage, elapsed) in result.timings.stages() {
                    per_stage.entry(stage.as_str()).or_default().push(*elapsed);
                }
            }
        }
        for latencies in [&mut embeds, &mut detects, &mut totals] {
            latencies.sort();
        }
        let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
        let checks = totals.len().max(1);
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
            findings as f64 / checks as f64,
        );
        for (stage, times) in &mut per_stage {
            times.sort();
            stage_rows.push(format!(
                "| {size} | {stage} | {:.2} ms | {:.2} ms |",
                ms(percentile(times, 0.5)),
                ms(percentile(times, 0.99))
            ));
        }
        if analyze {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let started = Instant::now();
            let found = detector.analyze(threads, &|_, _| {});
            let elapsed = started.elapsed();
            // A digest of every finding in order: a change meant to be faster only shows
            // it left the results alone when this stays the same.
            let mut digest = std::hash::DefaultHasher::new();
            for finding in &found {
                std::hash::Hash::hash(&format!("{finding:?}"), &mut digest);
            }
            let mut by_kind: BTreeMap<(String, String), usize> = BTreeMap::new();
            for finding in &found {
                *by_kind.entry((format!("{:?}", finding.kind), format!("{:?}", finding.severity))).or_default() += 1;
            }
            for ((kind, severity), count) in by_kind {
                breakdown.push(format!("| {size} | {kind} | {severity} | {count} |"));
            }
            analyses.push(format!(
                "| {size} | {:.1} s | {} | {:.0} MiB | {:016x} |",
                elapsed.as_secs_f64(),
                found.len(),
                peak_rss_mib(),
                std::hash::Hasher::finish(&digest)
            ));
        }
    }
    println!();
    println!("| tools | stage | p50 | p99 |");
    println!("|---|---|---|---|");
    for row in stage_rows {
        println!("{row}");
    }
    if analyze {
        println!();
        println!("| tools | analyze (detection, all pairs) | findings | peak RSS so far | digest of the findings |");
        println!("|---|---|---|---|---|");
        for row in analyses {
            println!("{row}");
        }
        println!();
        println!("| tools | kind | severity | findings |");
        println!("|---|---|---|---|");
        for row in breakdown {
            println!("{row}");
        }
    }
}
