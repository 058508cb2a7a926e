//! `mtgs bench gen` and `mtgs bench run`: synthetic registries from the eval corpus, and
//! what registration, analysis and checks cost as the registry grows. Measured through
//! the ordinary service path on a throwaway SQLite database, with the stages the global
//! flags select (`--embedder off` for stages 1-2; `--router off` for no stage 4).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use mtgs_core::{EnvironmentName, ParsedTool, ServerName, StageId, ToolDef};
use mtgs_detect::synth::{SynthSettings, Synthetic, synthesize};
use mtgs_service::{Service, ServiceSettings, ToolBatch};
use serde_json::json;

use crate::args::{BenchCommand, BenchGenArgs, BenchRunArgs, SynthArgs};
use crate::failure::{Exit, Failure};
use crate::output::Printer;
use crate::settings::LocalSettings;

fn corpus(args: &SynthArgs) -> Result<Vec<(ServerName, Vec<ToolDef>)>, Failure> {
    Ok(crate::commands::eval::read_corpus(&args.corpus)?
        .into_iter()
        .map(|server| (server.server, server.tools.into_iter().map(|tool| tool.def).collect()))
        .collect())
}

fn generate(args: &SynthArgs, tools: usize, seed: u64) -> Result<Synthetic, Failure> {
    if !(0.0..=1.0).contains(&args.planted) {
        return Err(Failure::input(anyhow!("--planted: expected a share between 0 and 1, found {}", args.planted)));
    }
    Ok(synthesize(&corpus(args)?, &SynthSettings { tools, seed, planted: args.planted }))
}

pub async fn run(command: BenchCommand, local: &LocalSettings, printer: &Printer) -> Result<Exit, Failure> {
    match command {
        BenchCommand::Gen(args) => write_registry(&args),
        BenchCommand::Run(args) => bench(&args, local, printer).await,
    }
}

fn write_registry(args: &BenchGenArgs) -> Result<Exit, Failure> {
    let synthetic = generate(&args.synth, args.tools, args.synth.seed)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))
        .map_err(Failure::input)?;
    let write = |name: String, value: serde_json::Value| {
        std::fs::write(args.out.join(&name), format!("{value:#}\n"))
            .with_context(|| format!("cannot write {name}"))
            .map_err(Failure::unavailable)
    };
    for server in &synthetic.servers {
        let tools: Vec<serde_json::Value> = server.tools.iter().map(ToolDef::to_json).collect();
        write(format!("{}.json", server.name), json!({"tools": tools}))?;
    }
    let planted: Vec<_> = synthetic
        .planted
        .iter()
        .map(|(planted, original)| json!({"planted": planted.to_string(), "original": original.to_string()}))
        .collect();
    write("planted.json".to_owned(), json!({"seed": args.synth.seed, "planted": planted}))?;
    eprintln!(
        "wrote {} tools on {} servers ({} planted near-duplicates) to {}",
        synthetic.tool_count(),
        synthetic.servers.len(),
        synthetic.planted.len(),
        args.out.display()
    );
    Ok(Exit::Success)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

/// The process's peak resident memory so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn bench(args: &BenchRunArgs, local: &LocalSettings, printer: &Printer) -> Result<Exit, Failure> {
    let environment = EnvironmentName::parse("bench").map_err(Failure::input)?;
    let mut rows = Vec::new();
    for &size in &args.tools {
        let synthetic = generate(&args.synth, size, args.synth.seed)?;
        // Candidates for single checks: other vendors over the same corpus.
        let candidates = generate(&args.synth, args.checks, args.synth.seed.wrapping_add(1_000_003))?;
        let scratch = tempfile::tempdir().context("cannot create a scratch directory").map_err(Failure::unavailable)?;
        let directory = match &args.keep {
            Some(keep) => {
                let directory = keep.join(size.to_string());
                if directory.exists() {
                    return Err(Failure::input(anyhow!("--keep: {} exists already", directory.display())));
                }
                std::fs::create_dir_all(&directory)
                    .with_context(|| format!("cannot create {}", directory.display()))
                    .map_err(Failure::input)?;
                directory
            }
            None => scratch.path().to_owned(),
        };
        let settings = ServiceSettings {
            database_url: mtgs_service::database_url_in(&directory),
            job_poll_interval: Duration::from_millis(50),
            job_lease: Duration::from_secs(3_600),
            ..local.service_settings()?
        };
        let service = Service::open(&settings)
            .await
            .context("cannot open the scratch database")
            .map_err(Failure::unavailable)?
            .acting_as(crate::backend::local_operator());

        // Stage 3's vectors, computed once and cached as registration would: the embedding
        // throughput. Registration then finds them cached.
        let embedding = if local.service_settings()?.semantic.is_some() {
            let tools: Vec<(ServerName, ToolDef)> = synthetic
                .servers
                .iter()
                .flat_map(|server| server.tools.iter().map(|def| (server.name.clone(), def.clone())))
                .collect();
            let texts = tools.len();
            let started = Instant::now();
            let vectors = service
                .embeddings_of(tools)
                .await
                .map_err(|error| Failure::unavailable(anyhow!("embedding: {error}")))?;
            if vectors.iter().any(Option::is_none) {
                return Err(Failure::unavailable(anyhow!("the embedding model failed; see the log")));
            }
            Some((texts, started.elapsed()))
        } else {
            None
        };

        let registering = Instant::now();
        for server in &synthetic.servers {
            // Parsed as the API parses a request: a generated tool the API would refuse
            // must not slip into the registry.
            let tools = server
                .tools
                .iter()
                .map(|def| {
                    ToolDef::parse(&def.to_json()).map_err(|error| {
                        Failure::input(anyhow!("generated tool {}/{} is invalid: {error}", server.name, def.name))
                    })
                })
                .collect::<Result<Vec<ParsedTool>, Failure>>()?;
            let batch = ToolBatch { environment: environment.clone(), server: server.name.clone(), tools };
            service.register(batch).await.map_err(|error| Failure::unavailable(anyhow!("registering: {error}")))?;
        }
        let registering = registering.elapsed();

        let analysing = Instant::now();
        let job = service
            .analyze_now(&environment, &|_| {})
            .await
            .map_err(|error| Failure::unavailable(anyhow!("analysis failed: {error}")))?;
        let analysing = analysing.elapsed();
        if job.status != mtgs_core::JobStatus::Succeeded {
            let reason = job.error.unwrap_or_else(|| format!("ended {}", job.status));
            return Err(Failure::unavailable(anyhow!("the analysis of {size} tools failed: {reason}")));
        }
        let findings = job.result["findings"].as_u64().unwrap_or_default();
        let phases = job.result["seconds"].clone();

        let mut latencies = Vec::with_capacity(args.checks);
        let mut per_stage: BTreeMap<StageId, Vec<Duration>> = BTreeMap::new();
        for server in &candidates.servers {
            for def in &server.tools {
                let batch = ToolBatch {
                    environment: environment.clone(),
                    server: server.name.clone(),
                    tools: vec![ParsedTool { def: def.clone(), lints: Vec::new() }],
                };
                let started = Instant::now();
                let outcome = service
                    .check(batch)
                    .await
                    .map_err(|error| Failure::unavailable(anyhow!("check failed: {error}")))?;
                latencies.push(started.elapsed());
                for (stage, elapsed) in outcome.timings.stages() {
                    per_stage.entry(*stage).or_default().push(*elapsed);
                }
            }
        }
        latencies.sort();
        let stages: serde_json::Map<String, serde_json::Value> = per_stage
            .iter_mut()
            .map(|(stage, times)| {
                times.sort();
                (
                    stage.as_str().to_owned(),
                    json!({"p50_ms": ms(percentile(times, 0.5)), "p99_ms": ms(percentile(times, 0.99))}),
                )
            })
            .collect();
        let row = json!({
            "tools": synthetic.tool_count(),
            "servers": synthetic.servers.len(),
            "register_s": registering.as_secs_f64(),
            "register_tools_per_s": synthetic.tool_count() as f64 / registering.as_secs_f64(),
            "analyze_s": analysing.as_secs_f64(),
            "analyze_findings": findings,
            "analyze_phases_s": phases,
            "peak_rss_mib": peak_rss_mib(),
            "checks": latencies.len(),
            "check_p50_ms": ms(percentile(&latencies, 0.5)),
            "check_p99_ms": ms(percentile(&latencies, 0.99)),
            "check_max_ms": ms(latencies.last().copied().unwrap_or_default()),
            "check_stages": stages,
            "embed_texts": embedding.map(|(texts, _)| texts),
            "embed_s": embedding.map(|(_, elapsed)| elapsed.as_secs_f64()),
            "embed_texts_per_s": embedding.map(|(texts, elapsed)| texts as f64 / elapsed.as_secs_f64()),
        });
        if !printer.json() {
            println!(
                "{:>7} tools on {:>5} servers: register {:>7.1} s ({:>6.0} tools/s), analyze {:>7.1} s ({} findings), peak RSS {:>6.0} MiB, check p50 {:>6.1} ms p99 {:>6.1} ms max {:>6.1} ms",
                synthetic.tool_count(),
                synthetic.servers.len(),
                registering.as_secs_f64(),
                synthetic.tool_count() as f64 / registering.as_secs_f64(),
                analysing.as_secs_f64(),
                findings,
                peak_rss_mib().unwrap_or_default(),
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99)),
                ms(latencies.last().copied().unwrap_or_default()),
            );
            println!(
                "{:>30} load {:.1} s, detect {:.1} s, record {:.1} s",
                "analyze",
                phases["load"].as_f64().unwrap_or_default(),
                phases["detect"].as_f64().unwrap_or_default(),
                phases["record"].as_f64().unwrap_or_default(),
            );
            for (stage, value) in &stages {
                println!(
                    "{:>30} check p50 {:>6.2} ms p99 {:>6.2} ms",
                    stage,
                    value["p50_ms"].as_f64().unwrap_or_default(),
                    value["p99_ms"].as_f64().unwrap_or_default()
                );
            }
            if let Some((texts, elapsed)) = embedding {
                println!(
                    "{:>30} {texts} fingerprints in {:.1} s ({:.0} texts/s)",
                    "embedding",
                    elapsed.as_secs_f64(),
                    texts as f64 / elapsed.as_secs_f64()
                );
            }
        }
        rows.push(row);
    }
    if printer.json() {
        printer.print_json(&json!({"runs": rows}));
    }
    Ok(Exit::Success)
}
