//! Every tool definition that the real MCP servers in `eval/corpus` publish is accepted.

use std::path::Path;

use mtgs_core::ToolDef;
use serde_json::Value;

#[test]
fn every_tool_real_servers_publish_is_accepted() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/corpus");
    let mut tools = 0;
    let mut refused = Vec::new();
    for entry in std::fs::read_dir(&corpus).expect("eval/corpus exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_none_or(|ext| ext != "json") || path.ends_with("skipped.json") {
            continue;
        }
        let document: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        for tool in document["tools"].as_array().expect("a tools array") {
            tools += 1;
            if let Err(error) = ToolDef::parse(tool) {
                refused.push(format!("{}: {}: {error}", path.display(), tool["name"]));
            }
        }
    }
    assert!(tools > 1_000, "the corpus holds {tools} tools");
    assert!(refused.is_empty(), "refused real tools:\n{}", refused.join("\n"));
}
