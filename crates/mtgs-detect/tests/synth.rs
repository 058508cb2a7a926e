//! The benchmark generator over the real eval corpus: every generated tool is one the API
//! would accept (a 100k registry once held a `required` list naming a parameter twice).

use std::path::Path;

use mtgs_core::{ServerName, ToolDef};
use mtgs_detect::synth::{SynthSettings, synthesize};
use serde_json::Value;

fn corpus() -> Vec<(ServerName, Vec<ToolDef>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("eval/corpus exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && !path.ends_with("skipped.json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let document: Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON");
            let stem = path.file_stem().and_then(|stem| stem.to_str()).expect("a file name");
            let tools = document["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|tool| ToolDef::parse(tool).expect("corpus tools are valid").def)
                .collect();
            (ServerName::parse(stem).expect("a server name"), tools)
        })
        .collect()
}

#[test]
fn every_generated_tool_parses_as_a_valid_definition() {
    let corpus = corpus();
    for seed in [7, 8] {
        let synthetic = synthesize(&corpus, &SynthSettings { tools: 30_000, seed, planted: 0.05 });
        assert_eq!(synthetic.tool_count(), 30_000);
        for server in &synthetic.servers {
            for tool in &server.tools {
                if let Err(error) = ToolDef::parse(&tool.to_json()) {
                    panic!("seed {seed}: {}/{} is invalid: {error}", server.name, tool.name);
                }
            }
        }
    }
}
