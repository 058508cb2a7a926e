//! Check latency of stages 1 and 2 against large registries, generated deterministically
//! from the real tool definitions in `eval/corpus`.
//!
//! `cargo bench -p mtgs-detect --bench check -- --tools 10000,100000 --queries 1000 --seed 7`
//!
//! Prints, per registry size: build time, then p50 / p99 / max latency of checking tools
//! that are not in the registry (fresh vendors over the same corpus, so every query has
//! real near-duplicates to find).

use std::path::Path;
use std::time::{Duration, Instant};

use mtgs_core::{ServerName, ToolDef};
use mtgs_detect::Detector;
use serde_json::Value;

/// SplitMix64: a deterministic generator without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn corpus() -> Vec<ToolDef> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("eval/corpus exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && !path.ends_with("skipped.json"))
        .collect();
    paths.sort();
    let mut tools = Vec::new();
    for path in paths {
        let document: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        for tool in document["tools"].as_array().into_iter().flatten() {
            tools.push(ToolDef::parse(tool).expect("corpus tools are valid").def);
        }
    }
    tools
}

/// A pronounceable vendor name: two or three consonant-vowel syllables.
fn vendor(rng: &mut Rng) -> String {
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    (0..2 + rng.below(2))
        .flat_map(|_| [CONSONANTS[rng.below(CONSONANTS.len())] as char, VOWELS[rng.below(VOWELS.len())] as char])
        .collect()
}

/// A corpus tool re-published by `vendor`: vendor-prefixed name in a random casing, the
/// vendor named in the description.
fn variant(base: &ToolDef, vendor: &str, rng: &mut Rng) -> ToolDef {
    let mut def = base.clone();
    let words = mtgs_detect::text::name_words(base.name.as_str());
    let name = match rng.below(3) {
        0 => format!("{vendor}_{}", words.join("_")),
        1 => {
            let camel: String = words
                .iter()
                .map(|word| {
                    let mut chars = word.chars();
                    chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
                })
                .collect();
            format!("{vendor}{camel}")
        }
        _ => format!("{}-{vendor}", words.join("-")),
    };
    def.name = mtgs_core::ToolName::parse(&name).expect("generated names are valid");
    def.description = Some(format!("{} (via {vendor})", base.description.as_deref().unwrap_or_default()));
    def
}

fn registry(corpus: &[ToolDef], size: usize, rng: &mut Rng) -> Vec<(ServerName, ToolDef)> {
    let mut tools = Vec::with_capacity(size);
    let mut seen = std::collections::HashSet::new();
    while tools.len() < size {
        let vendor = vendor(rng);
        let base = &corpus[rng.below(corpus.len())];
        let def = variant(base, &vendor, rng);
        if seen.insert((vendor.clone(), def.name.clone())) {
            tools.push((ServerName::parse(&vendor).expect("valid"), def));
        }
    }
    tools
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

    let corpus = corpus();
    println!("corpus: {} real tool definitions; queries per size: {queries}; seed {seed}", corpus.len());
    println!("| tools | build | build rate | check p50 | check p99 | check max | findings/check |");
    println!("|---|---|---|---|---|---|---|");
    for size in sizes {
        let mut rng = Rng(seed);
        let tools = registry(&corpus, size, &mut rng);
        let started = Instant::now();
        let mut detector = Detector::with_default_stages();
        for (server, def) in tools {
            detector.insert(server, def);
        }
        let build = started.elapsed();

        let mut query_rng = Rng(seed ^ 0xDEAD_BEEF);
        let candidates = registry(&corpus, queries, &mut query_rng);
        let mut latencies = Vec::with_capacity(queries);
        let mut findings = 0;
        for (server, def) in candidates {
            let started = Instant::now();
            let result = detector.check(server, def, &[]);
            latencies.push(started.elapsed());
            findings += result.findings.len();
        }
        latencies.sort();
        println!(
            "| {size} | {:.2} s | {:.0} tools/s | {:.3} ms | {:.3} ms | {:.3} ms | {:.1} |",
            build.as_secs_f64(),
            size as f64 / build.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            findings as f64 / queries as f64,
        );
    }
}
