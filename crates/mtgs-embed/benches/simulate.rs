//! Impact simulation and stage 4 against registries generated deterministically from the
//! real tool definitions in `eval/corpus` (vendor-renamed variants, as the check bench
//! builds them), with the local router.
//!
//! `cargo bench -p mtgs-embed --bench simulate -- --tools 1000,10000 --candidates 20 --seed 7 [--vectors]`
//!
//! Prints, per registry size: the detector build time (probes written for every tool),
//! then p50 / max wall time of simulating one candidate (a fresh vendor's variant of a
//! corpus tool, so it has real look-alikes) against the whole registry: every registered
//! tool's five probes considered, the candidate's own routed before and after. Without
//! `--vectors` routing is BM25 alone (`--embedder off`); with it every tool and probe
//! carries a random unit vector of 384 dimensions, which costs what real ones cost
//! (embedding them is measured by the check bench, not here).

use std::time::{Duration, Instant};

use mtgs_detect::behavioural::BehaviouralStage;
use mtgs_detect::probes::{ProbeSettings, generate};
use mtgs_detect::routing::{RoutingQuery, RoutingSettings};
use mtgs_detect::semantic::{Embedding, ExactIndex, VectorIndex};
use mtgs_detect::{Detector, Examination, PreparedTool, Stage};

mod common;

use common::{Rng, corpus, registry};

const DIMENSIONS: usize = 384;

fn random_vector(rng: &mut Rng) -> Embedding {
    Embedding::new((0..DIMENSIONS).map(|_| rng.normal()).collect()).expect("non-zero")
}

fn prepare(server: mtgs_core::ServerName, def: mtgs_core::ToolDef, vectors: bool, rng: &mut Rng) -> PreparedTool {
    let tool = PreparedTool::new(server, def);
    let probes = generate(&tool.key, &tool.def, &ProbeSettings::default())
        .into_iter()
        .map(|text| RoutingQuery::new(text, vectors.then(|| random_vector(rng))))
        .collect();
    let embedding = vectors.then(|| random_vector(rng));
    tool.with_embedding(embedding).with_probes(probes)
}

fn main() {
    let mut sizes = vec![1_000, 10_000];
    let mut candidates = 20;
    let mut seed = 7;
    let mut vectors = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tools" => {
                sizes = args.next().expect("--tools N,M").split(',').map(|n| n.parse().expect("a number")).collect();
            }
            "--candidates" => candidates = args.next().expect("--candidates N").parse().expect("a number"),
            "--seed" => seed = args.next().expect("--seed N").parse().expect("a number"),
            "--vectors" => vectors = true,
            _ => {} // cargo bench passes --bench
        }
    }
    let corpus = corpus();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!("corpus {} tools, {threads} threads, vectors: {vectors}", corpus.len());
    for size in sizes {
        let mut rng = Rng(seed);
        let tools = registry(&corpus, size + candidates, &mut rng);
        let started = Instant::now();
        let prepared: Vec<PreparedTool> = tools[..size]
            .iter()
            .map(|(server, def, _)| prepare(server.clone(), def.clone(), vectors, &mut rng))
            .collect();
        let index: Box<dyn VectorIndex> = Box::new(ExactIndex::new(if vectors { DIMENSIONS } else { 0 }));
        let mut detector = Detector::with_default_stages()
            .with_behavioural(BehaviouralStage::local(index, RoutingSettings::default()));
        detector.insert_many(prepared);
        let built = started.elapsed();

        let mut times: Vec<Duration> = Vec::new();
        let mut pair_times: Vec<Duration> = Vec::new();
        let mut rerouted = 0;
        let mut blocked = 0;
        let stage = detector.behavioural().expect("stage 4");
        for (server, def, base) in &tools[size..] {
            let candidate = prepare(server.clone(), def.clone(), vectors, &mut rng);
            let started = Instant::now();
            let report = detector.simulate(std::slice::from_ref(&candidate), &[], None, threads).expect("simulated");
            times.push(started.elapsed());
            rerouted += report.rerouted;
            blocked += usize::from(report.verdict == mtgs_core::Verdict::Block);

            // Stage 4 on one flagged pair: the candidate and a registered variant of the
            // same corpus tool (its closest look-alike).
            let twin = tools[..size].iter().position(|(_, _, other)| other == base).unwrap_or(0);
            let twin_key = mtgs_core::ToolKey { server: tools[twin].0.clone(), name: tools[twin].1.name.clone() };
            let Some(twin_idx) = detector.tools().find(&twin_key) else { continue };
            let examination = Examination {
                tools: detector.tools(),
                candidate: &candidate,
                skip: &|_| false,
                pairs: &[twin_idx],
                earlier: &|_| Vec::new(),
                evidence: true,
            };
            let (mut findings, mut diagnostics) = (Vec::new(), Vec::new());
            let started = Instant::now();
            stage.examine(&examination, &mut findings, &mut diagnostics);
            pair_times.push(started.elapsed());
        }
        times.sort();
        pair_times.sort();
        println!(
            "{size:>7} tools: build {:.1} s; simulate one candidate p50 {:.0} ms, max {:.0} ms over {} candidates \
             ({:.0} of {} registered probes rerouted on average, {blocked} blocked)",
            built.as_secs_f64(),
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            times.len(),
            rerouted as f64 / times.len() as f64,
            size * 5,
        );
        if !pair_times.is_empty() {
            println!(
                "{size:>7} tools: stage 4 on one flagged pair p50 {:.1} ms, max {:.1} ms",
                pair_times[pair_times.len() / 2].as_secs_f64() * 1000.0,
                pair_times[pair_times.len() - 1].as_secs_f64() * 1000.0
            );
        }
    }
}
