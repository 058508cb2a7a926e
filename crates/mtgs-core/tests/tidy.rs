//! Workspace invariants held as tests: dependencies point one way, the pure crates stay
//! free of I/O crates, and every Rust file says what it is for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Crate name → names in its `[dependencies]` table (not dev-dependencies).
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let mut crates = BTreeMap::new();
    for entry in std::fs::read_dir(workspace().join("crates")).expect("crates/ exists") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        let name = text
            .lines()
            .find_map(|line| line.strip_prefix("name = \""))
            .map(|rest| rest.trim_end_matches('"').to_owned())
            .expect("package name");
        let mut in_dependencies = false;
        let mut names = Vec::new();
        for line in text.lines() {
            if line.starts_with('[') {
                in_dependencies = line == "[dependencies]";
                continue;
            }
            if in_dependencies
                && let Some((dependency, _)) = line.split_once(['.', ' ', '='])
                && !dependency.is_empty()
            {
                names.push(dependency.to_owned());
            }
        }
        crates.insert(name, names);
    }
    crates
}

#[test]
fn crate_dependencies_point_one_way() {
    // Which workspace crates each crate may depend on (ARCHITECTURE.md, code map).
    let allowed: &[(&str, &[&str])] = &[
        ("mtgs-core", &[]),
        ("mtgs-detect", &["mtgs-core"]),
        ("mtgs-store", &["mtgs-core"]),
        ("mtgs-service", &["mtgs-core", "mtgs-detect", "mtgs-store"]),
        ("mtgs-api", &["mtgs-core"]),
        ("mtgs-server", &["mtgs-core", "mtgs-api", "mtgs-service"]),
        ("mtgs-embed", &["mtgs-core", "mtgs-detect"]),
        ("mtgs-mcp", &["mtgs-core", "mtgs-service"]),
        (
            "mtgs-cli",
            &["mtgs-core", "mtgs-detect", "mtgs-api", "mtgs-service", "mtgs-server", "mtgs-embed", "mtgs-mcp"],
        ),
    ];
    let crates = dependencies();
    for (name, dependencies) in &crates {
        let permitted = allowed.iter().find(|(crate_name, _)| crate_name == name).map(|(_, permitted)| *permitted);
        let permitted =
            permitted.unwrap_or_else(|| panic!("{name} is not in this test's table: add it with its edges"));
        for dependency in dependencies.iter().filter(|d| d.starts_with("mtgs-")) {
            assert!(permitted.contains(&dependency.as_str()), "{name} must not depend on {dependency}");
        }
    }
}

#[test]
fn the_pure_crates_depend_on_no_io_crate() {
    let forbidden = ["tokio", "sqlx", "axum", "reqwest", "clap", "rmcp", "tower", "hyper"];
    for (name, dependencies) in dependencies().iter().filter(|(name, _)| *name == "mtgs-core" || *name == "mtgs-detect")
    {
        for dependency in dependencies {
            assert!(!forbidden.contains(&dependency.as_str()), "{name} is pure but depends on {dependency}");
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_doc_comment() {
    fn visit(dir: &Path, missing: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with("target") && !path.ends_with("node_modules") {
                    visit(&path, missing);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("readable");
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    let mut missing = Vec::new();
    visit(&workspace().join("crates"), &mut missing);
    assert!(missing.is_empty(), "files without a `//!` header saying what they are for:\n{}", missing.join("\n"));
}
