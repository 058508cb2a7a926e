//! Reading `--file`: one MCP Tool, an array of them, or a tools/list result; `-` is stdin.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use mtgs_core::{ParsedTool, Probe, ServerName, parse_probes, parse_tool_list};
use serde_json::Value;

use crate::failure::Failure;

/// Server name used when `tools check` gets none and the file name gives none.
pub const FALLBACK_SERVER: &str = "local";

pub fn read_tools(path: &Path) -> Result<Vec<ParsedTool>, Failure> {
    let (name, document) = read_json(path, "the tools")?;
    parse_tool_list(&document).with_context(|| format!("invalid tools in {name}")).map_err(Failure::input)
}

/// `--probes`: a JSON array `[{"query": ..., "expected": {"server", "name"}}]`.
pub fn read_probes(path: &Path) -> Result<Vec<Probe>, Failure> {
    let (name, document) = read_json(path, "the probes")?;
    parse_probes(&document, "probes").with_context(|| format!("invalid probes in {name}")).map_err(Failure::input)
}

/// A JSON document from a file, or stdin for `-`, with the name errors should use.
fn read_json(path: &Path, what: &str) -> Result<(String, Value), Failure> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {what} from stdin"))
            .map_err(Failure::input)?;
        ("stdin".to_owned(), text)
    } else {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {name}")).map_err(Failure::input)?;
        (name, text)
    };
    let document: Value =
        serde_json::from_str(&text).with_context(|| format!("{name} is not valid JSON")).map_err(Failure::input)?;
    Ok((name, document))
}

/// `--server` for `tools check` when none is given: the file's stem (`jira.json` → `jira`)
/// when it is a valid server name, else [`FALLBACK_SERVER`] (always for stdin).
pub fn default_server(path: &Path) -> ServerName {
    path.file_stem()
        .filter(|_| path != Path::new("-"))
        .and_then(|stem| stem.to_str())
        .and_then(|stem| ServerName::parse(stem).ok())
        .or_else(|| ServerName::parse(FALLBACK_SERVER).ok())
        .unwrap_or_else(|| unreachable!("'{FALLBACK_SERVER}' is a valid server name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_server_is_the_file_stem_when_it_is_a_valid_name() {
        assert_eq!(default_server(Path::new("/tmp/jira.json")).as_str(), "jira");
        assert_eq!(default_server(Path::new("-")).as_str(), "local");
        assert_eq!(default_server(Path::new("my tools.json")).as_str(), "local");
    }
}
