//! `mtgs eval`: loads a corpus of real servers' tools into a throwaway database, runs the
//! full pipeline over every pair, and scores it against the labels.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use comfy_table::Table;
use mtgs_core::{EnvironmentName, ServerName, ToolKey, parse_tool_list};
use mtgs_service::eval::{EvalReport, Floors, Half, Labels, probes_in_half, routing_accuracy, score};
use mtgs_service::{ConflictFilter, Progress, Service, ServiceSettings, ToolBatch};
use serde_json::{Value, json};

use super::analyze::{advance, progress_bar};
use crate::args::{EvalArgs, EvalHalf};
use crate::failure::{Exit, Failure};
use crate::output::Printer;
use mtgs_embed::EmbedderSettings;

/// One corpus file: a server and its tools.
pub(crate) struct CorpusServer {
    pub(crate) server: ServerName,
    pub(crate) tools: Vec<mtgs_core::ParsedTool>,
}

pub(crate) fn read_corpus(dir: &Path) -> Result<Vec<CorpusServer>, Failure> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the corpus directory {}", dir.display()))
        .map_err(Failure::input)?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && !path.ends_with("skipped.json"))
        .collect();
    paths.sort();
    let mut servers = Vec::with_capacity(paths.len());
    for path in paths {
        let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
        let server = ServerName::parse(stem).map_err(|error| {
            Failure::input(anyhow!("{}: the file name is not a server name: {error}", path.display()))
        })?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::input)?;
        let document: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))
            .map_err(Failure::input)?;
        let tools =
            parse_tool_list(&document).map_err(|error| Failure::input(anyhow!("{}: {error}", path.display())))?;
        servers.push(CorpusServer { server, tools });
    }
    if servers.is_empty() {
        return Err(Failure::input(anyhow!("{} holds no server files (*.json)", dir.display())));
    }
    Ok(servers)
}

fn read_labels(path: &Path, corpus: &[CorpusServer]) -> Result<Labels, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the labels {}", path.display()))
        .map_err(Failure::input)?;
    let labels = Labels::parse(&text).map_err(|error| Failure::input(anyhow!("{}: {error}", path.display())))?;
    let known: std::collections::HashSet<ToolKey> = corpus
        .iter()
        .flat_map(|entry| {
            entry.tools.iter().map(|tool| ToolKey { server: entry.server.clone(), name: tool.def.name.clone() })
        })
        .collect();
    if let Some((id, key)) = labels.tools().find(|(_, key)| !known.contains(key)) {
        return Err(Failure::input(anyhow!("{}: '{id}' names {key}, which the corpus does not hold", path.display())));
    }
    Ok(labels)
}

pub async fn run(
    args: &EvalArgs,
    embedder: &EmbedderSettings,
    behavioural: Option<mtgs_service::BehaviouralSettings>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let started = Instant::now();
    let corpus = read_corpus(&args.corpus)?;
    let labels = read_labels(&args.labels, &corpus)?;
    let floors: Option<Floors> = match &args.floors {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the floors {}", path.display()))
                .map_err(Failure::input)?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a floors file", path.display()))
                    .map_err(Failure::input)?,
            )
        }
        None => None,
    };
    // A run against floors scores what the floors were recorded for.
    let (half, seed, min_severity) = match &floors {
        Some(floors) => (floors.half, floors.seed, floors.min_severity),
        None => {
            let half = match args.half {
                EvalHalf::Tuning => Half::Tuning,
                EvalHalf::Report => Half::Report,
                EvalHalf::All => Half::All,
            };
            (half, args.seed, args.min_severity)
        }
    };

    let temporary = tempfile::tempdir().context("cannot create a scratch directory").map_err(Failure::unavailable)?;
    let scratch = match &args.scratch {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .map_err(Failure::unavailable)?;
            dir.as_path()
        }
        None => temporary.path(),
    };
    let mut semantic = crate::settings::load_semantic(embedder)?;
    if let (Some(semantic), Some(bands)) = (semantic.as_mut(), &args.semantic_bands) {
        semantic.thresholds = parse_bands(bands)?;
    }
    let mut behavioural = behavioural;
    if let (Some(behavioural), Some(routing)) = (behavioural.as_mut(), &args.routing) {
        let bad = || Failure::input(anyhow!("--routing: expected WEIGHT,TEMPERATURE, found '{routing}'"));
        let (weight, temperature) = routing.split_once(',').ok_or_else(bad)?;
        behavioural.routing.embedding_weight = weight.trim().parse().map_err(|_| bad())?;
        behavioural.routing.temperature = temperature.trim().parse().map_err(|_| bad())?;
        behavioural.router = std::sync::Arc::new(mtgs_detect::routing::LocalRouter::new(&behavioural.routing));
    }
    let routing_on = behavioural.is_some();
    let settings = ServiceSettings {
        database_url: mtgs_service::database_url_in(scratch),
        job_poll_interval: std::time::Duration::from_millis(50),
        job_lease: std::time::Duration::from_secs(600),
        semantic,
        behavioural,
        approval_ttl: mtgs_service::DEFAULT_APPROVAL_TTL,
        tool_source: None,
        sync_interval: None,
    };
    let service = Service::open(&settings)
        .await
        .context("cannot open the scratch database")
        .map_err(Failure::unavailable)?
        .acting_as(crate::backend::local_operator());
    let environment = EnvironmentName::parse("eval").map_err(Failure::input)?;
    let tools: usize = corpus.iter().map(|entry| entry.tools.len()).sum();

    let loading = Instant::now();
    for entry in corpus.iter() {
        let batch =
            ToolBatch { environment: environment.clone(), server: entry.server.clone(), tools: entry.tools.clone() };
        service
            .register(batch)
            .await
            .map_err(|error| Failure::unavailable(anyhow!("registering {}: {error}", entry.server)))?;
    }
    let loading = loading.elapsed();

    let analysing = Instant::now();
    if !args.routing_only {
        let bar = progress_bar("the corpus");
        let report_progress = |progress: Progress| advance(&bar, progress);
        let job = service.analyze_now(&environment, &report_progress).await;
        bar.finish_and_clear();
        let job = job.map_err(|error| Failure::unavailable(anyhow!("analysis failed: {error}")))?;
        if let Some(error) = job.error {
            return Err(Failure::unavailable(anyhow!("analysis failed: {error}")));
        }
    }
    let analysing = analysing.elapsed();

    let conflicts = service
        .conflicts(&environment, &ConflictFilter::default())
        .await
        .map_err(|error| Failure::unavailable(anyhow!("{error}")))?;
    let fixes = match args.recommendations {
        Some(per_kind) => Some(recommendation_report(&service, &conflicts, min_severity, per_kind).await?),
        None => None,
    };
    let findings: Vec<mtgs_core::Finding> = conflicts.iter().map(|conflict| conflict.finding.clone()).collect();
    let mut report = score(&labels, &findings, half, seed, min_severity);

    // Routing: the half's probes against the whole corpus, as a simulation with no candidate.
    let routing = Instant::now();
    let probes = probes_in_half(&labels, half, seed);
    let routed = if routing_on { Some(routed_probes(&service, &environment, &probes).await?) } else { None };
    report.routing_top1 = routed.as_ref().map(|routed| routing_accuracy(&probes, routed));
    let routed_probes: Vec<Value> = match &routed {
        Some(routed) => probes
            .iter()
            .zip(routed)
            .map(|(probe, routed)| {
                let hit =
                    routed.as_ref().is_some_and(|tool| *tool == probe.expected || probe.alternatives.contains(tool));
                json!({"id": probe.id, "query": probe.query, "expected": probe.expected, "routed": routed, "hit": hit})
            })
            .collect(),
        None => Vec::new(),
    };
    let routing = routing.elapsed();
    let pairs =
        if printer.json() { labelled_pairs(&service, &corpus, &labels, &findings, seed).await? } else { Vec::new() };
    let timing = json!({
        "servers": corpus.len(),
        "tools": tools,
        "findings": findings.len(),
        "register_seconds": loading.as_secs_f64(),
        "analyze_seconds": analysing.as_secs_f64(),
        "routing_seconds": routing.as_secs_f64(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });

    if printer.json() {
        printer.print_json(
            &json!({"report": report, "run": timing, "pairs": pairs, "probes": routed_probes, "recommendations": fixes}),
        );
    } else {
        print_report(&report, &timing, args.show.unwrap_or(usize::MAX));
        if let Some(fixes) = &fixes {
            print_recommendations(fixes);
        }
    }
    match floors.map(|floors| floors.breaches(&report)) {
        Some(breaches) if !breaches.is_empty() => {
            eprintln!("error: below the recorded floors: {}", breaches.join("; "));
            Ok(Exit::Blocked)
        }
        _ => Ok(Exit::Success),
    }
}

/// Where each probe was routed.
async fn routed_probes(
    service: &Service,
    environment: &EnvironmentName,
    probes: &[&mtgs_service::eval::LabeledProbe],
) -> Result<Vec<Option<ToolKey>>, Failure> {
    let request = mtgs_service::SimulationRequest {
        environment: environment.clone(),
        server: None,
        tools: Vec::new(),
        probes: probes
            .iter()
            .map(|probe| mtgs_core::Probe { query: probe.query.clone(), expected: Some(probe.expected.clone()) })
            .collect(),
        trials: None,
    };
    let job = service
        .simulate_now(&request, &|_| {})
        .await
        .map_err(|error| Failure::unavailable(anyhow!("routing failed: {error}")))?;
    if let Some(error) = job.error {
        return Err(Failure::unavailable(anyhow!("routing failed: {error}")));
    }
    let report: mtgs_detect::simulation::SimulationReport = serde_json::from_value(job.result)
        .map_err(|error| Failure::unavailable(anyhow!("unreadable routing report: {error}")))?;
    Ok(report.probes.into_iter().map(|probe| probe.after).collect())
}

fn parse_bands(text: &str) -> Result<mtgs_detect::semantic::SemanticThresholds, Failure> {
    let bad = || Failure::input(anyhow!("--semantic-bands: expected LOW,MEDIUM,HIGH,RANK, found '{text}'"));
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [low, medium, high, rank] = parts.as_slice() else { return Err(bad()) };
    let number = |part: &str| part.parse::<f32>().map_err(|_| bad());
    Ok(mtgs_detect::semantic::SemanticThresholds {
        low: number(low)?,
        medium: number(medium)?,
        high: number(high)?,
        mutual_rank: rank.parse().map_err(|_| bad())?,
    })
}

/// Every labelled pair with its half, its stage 3 similarity (when stage 3 ran) and what
/// each stage found: the data thresholds are calibrated on (`eval/calibrate.py`).
async fn labelled_pairs(
    service: &Service,
    corpus: &[CorpusServer],
    labels: &Labels,
    findings: &[mtgs_core::Finding],
    seed: u64,
) -> Result<Vec<Value>, Failure> {
    let definitions: std::collections::HashMap<ToolKey, &mtgs_core::ToolDef> = corpus
        .iter()
        .flat_map(|entry| {
            entry
                .tools
                .iter()
                .map(|tool| (ToolKey { server: entry.server.clone(), name: tool.def.name.clone() }, &tool.def))
        })
        .collect();
    let sides: Vec<(ServerName, mtgs_core::ToolDef)> = labels
        .pairs
        .iter()
        .flat_map(|pair| [&pair.a, &pair.b])
        .filter_map(|key| definitions.get(key).map(|def| (key.server.clone(), (*def).clone())))
        .collect();
    if sides.len() != labels.pairs.len() * 2 {
        return Err(Failure::input(anyhow!("a labelled tool is missing from the corpus")));
    }
    let vectors = service
        .embeddings_of(sides)
        .await
        .map_err(|error| Failure::unavailable(anyhow!("embedding failed: {error}")))?;
    Ok(labels
        .pairs
        .iter()
        .zip(vectors.chunks(2))
        .map(|(pair, vectors)| {
            let similarity = match (&vectors[0], &vectors[1]) {
                (Some(a), Some(b)) => Some(mtgs_detect::semantic::cosine(a.as_slice(), b.as_slice())),
                _ => None,
            };
            let found: Vec<Value> = findings
                .iter()
                .filter(|finding| {
                    (finding.tool_a == pair.a && finding.tool_b == pair.b)
                        || (finding.tool_a == pair.b && finding.tool_b == pair.a)
                })
                .map(|finding| json!({"stage": finding.stage, "kind": finding.kind, "severity": finding.severity, "evidence": finding.evidence}))
                .collect();
            json!({
                "id": pair.id,
                "half": mtgs_service::eval::half_of(&pair.id, seed),
                "conflict": pair.conflict,
                "a": pair.a,
                "b": pair.b,
                "same_server": pair.a.server == pair.b.server,
                "similarity": similarity,
                "findings": found,
            })
        })
        .collect())
}

fn metrics_row(table: &mut Table, label: &str, metrics: &mtgs_service::eval::Metrics) {
    table.add_row(vec![
        label.to_owned(),
        metrics.true_positives.to_string(),
        metrics.false_positives.to_string(),
        metrics.false_negatives.to_string(),
        format!("{:.3}", metrics.precision),
        format!("{:.3}", metrics.recall),
        format!("{:.3}", metrics.f1),
    ]);
}

fn print_report(report: &EvalReport, timing: &Value, show: usize) {
    println!(
        "{} servers, {} tools, {} findings; {} half (seed {}): {} conflict and {} non-conflict pairs; flagged = severity >= {}",
        timing["servers"],
        timing["tools"],
        timing["findings"],
        serde_json::to_value(report.half).unwrap_or_default().as_str().unwrap_or_default(),
        report.seed,
        report.conflict_pairs,
        report.non_conflict_pairs,
        report.min_severity
    );
    let mut table = Table::new();
    table.set_header(vec!["slice", "tp", "fp", "fn", "precision", "recall", "f1"]);
    metrics_row(&mut table, "overall", &report.overall);
    for (stage, metrics) in &report.by_stage {
        metrics_row(&mut table, &format!("stage {stage}"), metrics);
    }
    for (kind, metrics) in &report.by_kind {
        metrics_row(&mut table, &format!("kind {kind}"), metrics);
    }
    println!("{table}");
    for (title, errors) in [("false positives", &report.false_positives), ("false negatives", &report.false_negatives)]
    {
        println!("{title} ({}):", errors.len());
        for error in errors.iter().take(show) {
            let found: Vec<String> = error
                .findings
                .iter()
                .map(|finding| format!("{} {}/{} {}", finding.severity, finding.stage, finding.kind, finding.evidence))
                .collect();
            let found = if found.is_empty() { "nothing found".to_owned() } else { found.join("; ") };
            println!("  {} {} ~ {}: {} — {}", error.id, error.a, error.b, error.reason, found);
        }
    }
    match report.routing_top1 {
        Some(accuracy) => println!("routing top-1 on {} probes: {accuracy:.3}", report.probes),
        None => println!("routing top-1 on {} probes: not measured (--router off)", report.probes),
    }
    println!(
        "wall time: register {:.1} s, analyse {:.1} s, route {:.1} s, total {:.1} s",
        timing["register_seconds"].as_f64().unwrap_or_default(),
        timing["analyze_seconds"].as_f64().unwrap_or_default(),
        timing["routing_seconds"].as_f64().unwrap_or_default(),
        timing["total_seconds"].as_f64().unwrap_or_default()
    );
}

/// How often a verified fix lowers a conflict's severity, over a sample of the corpus's
/// conflicts: per conflict kind, per fix kind, and examples.
async fn recommendation_report(
    service: &Service,
    conflicts: &[mtgs_core::Conflict],
    min_severity: mtgs_core::Severity,
    per_kind: usize,
) -> Result<Value, Failure> {
    let mut sampled: std::collections::BTreeMap<String, Vec<&mtgs_core::Conflict>> = Default::default();
    for conflict in conflicts.iter().filter(|conflict| conflict.finding.severity >= min_severity) {
        let of_kind = sampled.entry(conflict.finding.kind.to_string()).or_default();
        if of_kind.len() < per_kind {
            of_kind.push(conflict);
        }
    }
    let bar = progress_bar("recommendations");
    let total: usize = sampled.values().map(Vec::len).sum();
    bar.set_length(total as u64);
    let mut by_conflict = Vec::new();
    let mut by_fix: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut examples: Vec<Value> = Vec::new();
    for (kind, of_kind) in &sampled {
        let (mut lowered, mut lowered_cleanly) = (0u64, 0u64);
        for conflict in of_kind {
            let fixes = service
                .recommendations(conflict.id)
                .await
                .map_err(|error| Failure::unavailable(anyhow!("recommendations for {}: {error}", conflict.id)))?;
            bar.inc(1);
            for fix in &fixes {
                let tally = by_fix.entry(fix.kind.to_string()).or_default();
                tally.0 += 1;
                tally.1 += u64::from(fix.verification.resolves);
            }
            let best = fixes.first().filter(|fix| fix.verification.resolves);
            lowered += u64::from(best.is_some());
            lowered_cleanly += u64::from(
                fixes.iter().any(|fix| fix.verification.resolves && fix.verification.new_conflicts.is_empty()),
            );
            if let Some(fix) = best
                && !examples.iter().any(|example| example["conflict_kind"] == kind.as_str())
            {
                examples.push(json!({
                    "conflict_kind": kind,
                    "pair": [conflict.finding.tool_a.to_string(), conflict.finding.tool_b.to_string()],
                    "fix": fix,
                }));
            }
        }
        let share = if of_kind.is_empty() { 0.0 } else { lowered as f64 / of_kind.len() as f64 };
        by_conflict.push(json!({
            "conflict_kind": kind,
            "sampled": of_kind.len(),
            "lowered": lowered,
            "lowered_without_new_conflicts": lowered_cleanly,
            "share": (share * 1000.0).round() / 1000.0,
        }));
    }
    bar.finish_and_clear();
    let by_fix: Vec<Value> = by_fix
        .into_iter()
        .map(|(kind, (offered, resolving))| json!({"fix_kind": kind, "offered": offered, "lowering": resolving}))
        .collect();
    Ok(json!({"min_severity": min_severity, "per_kind": per_kind, "by_conflict_kind": by_conflict,
              "by_fix_kind": by_fix, "examples": examples}))
}

fn print_recommendations(fixes: &Value) {
    println!(
        "\nverified recommendations (up to {} conflicts per kind at {} or above):",
        fixes["per_kind"], fixes["min_severity"]
    );
    println!("| conflict kind | sampled | a fix lowers it | without new conflicts | share |");
    println!("|---|---:|---:|---:|---:|");
    for row in fixes["by_conflict_kind"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {} | {} | {} |",
            row["conflict_kind"].as_str().unwrap_or_default(),
            row["sampled"],
            row["lowered"],
            row["lowered_without_new_conflicts"],
            row["share"]
        );
    }
    println!("| fix kind | offered | lowers the severity |");
    println!("|---|---:|---:|");
    for row in fixes["by_fix_kind"].as_array().into_iter().flatten() {
        println!("| {} | {} | {} |", row["fix_kind"].as_str().unwrap_or_default(), row["offered"], row["lowering"]);
    }
    for example in fixes["examples"].as_array().into_iter().flatten() {
        let fix = &example["fix"];
        let verification = &fix["verification"];
        println!(
            "- {} {}: {} ({} → {})",
            example["conflict_kind"].as_str().unwrap_or_default(),
            example["pair"],
            fix["summary"].as_str().unwrap_or_default(),
            verification["severity_before"].as_str().unwrap_or_default(),
            verification["severity_after"].as_str().unwrap_or("none"),
        );
    }
}
