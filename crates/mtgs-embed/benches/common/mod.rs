//! What the benches and tests of mtgs-embed share: a deterministic generator and the real
//! tool definitions of `eval/corpus`. Included with `mod common;` (benches) or
//! `#[path = "../benches/common/mod.rs"] mod common;` (tests).

#![allow(dead_code)]

use std::path::Path;

use mtgs_core::{ServerName, ToolDef};
use serde_json::Value;

/// SplitMix64: a deterministic generator without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.unit().max(f32::MIN_POSITIVE);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Every tool definition in `eval/corpus`, servers in file-name order.
pub fn corpus() -> Vec<ToolDef> {
    corpus_by_server().into_iter().flat_map(|(_, tools)| tools).collect()
}

/// The servers of `eval/corpus` (named by file) with their tools, in file-name order:
/// what `mtgs_detect::synth` recombines (its tool indices follow [`corpus`]'s order).
pub fn corpus_by_server() -> Vec<(ServerName, Vec<ToolDef>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("eval/corpus exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && !path.ends_with("skipped.json"))
        .collect();
    paths.sort();
    let mut servers = Vec::new();
    for path in paths {
        let document: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
        let name = ServerName::parse(stem).unwrap_or_else(|_| ServerName::parse("corpus").expect("valid"));
        let tools = document["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tool| ToolDef::parse(tool).expect("corpus tools are valid").def)
            .collect();
        servers.push((name, tools));
    }
    servers
}

/// A pronounceable vendor name: two or three consonant-vowel syllables.
pub fn vendor(rng: &mut Rng) -> String {
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    (0..2 + rng.below(2))
        .flat_map(|_| [CONSONANTS[rng.below(CONSONANTS.len())] as char, VOWELS[rng.below(VOWELS.len())] as char])
        .collect()
}

/// A corpus tool re-published by `vendor`: vendor-prefixed name in a random casing, the
/// vendor named in the description.
pub fn variant(base: &ToolDef, vendor: &str, rng: &mut Rng) -> ToolDef {
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

/// `size` variants: server, definition, and the corpus index of the tool each varies.
pub fn registry(corpus: &[ToolDef], size: usize, rng: &mut Rng) -> Vec<(ServerName, ToolDef, usize)> {
    let mut tools = Vec::with_capacity(size);
    let mut seen = std::collections::HashSet::new();
    while tools.len() < size {
        let vendor = vendor(rng);
        let base = rng.below(corpus.len());
        let def = variant(&corpus[base], &vendor, rng);
        if seen.insert((vendor.clone(), def.name.clone())) {
            tools.push((ServerName::parse(&vendor).expect("valid"), def, base));
        }
    }
    tools
}
