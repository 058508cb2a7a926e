//! `mtgs simulate --env E [--file F --server S] [--probes P] [--trials N]`: how routing of
//! the environment's requests shifts when the file's tools are added.

use anyhow::anyhow;
use mtgs_core::{JobStatus, Verdict, check_trials};
use mtgs_service::SimulationRequest;

use crate::args::SimulateArgs;
use crate::backend::Backend;
use crate::failure::{Exit, Failure};
use crate::input;
use crate::output::Printer;
use crate::settings::Target;

pub async fn run(args: SimulateArgs, target: &Target, printer: &Printer) -> Result<Exit, Failure> {
    // Files are read and validated before connecting: a bad file is exit 2 either way.
    let (server, tools) = match &args.file {
        Some(file) => {
            let server = args.server.clone().unwrap_or_else(|| input::default_server(file));
            (Some(server), input::read_tools(file)?.into_iter().map(|tool| tool.def).collect())
        }
        None if args.server.is_some() => return Err(Failure::input(anyhow!("--server needs --file"))),
        None => (None, Vec::new()),
    };
    let probes = match &args.probes {
        Some(path) => input::read_probes(path)?,
        None => Vec::new(),
    };
    let trials = args
        .trials
        .map(|trials| check_trials(trials, "--trials").map_err(|error| Failure::input(anyhow!("{error}"))))
        .transpose()?;
    let request = SimulationRequest { environment: args.environment, server, tools, probes, trials };
    let simulation = Backend::connect(target).await?.simulate(&request).await?;
    printer.simulation(&simulation)?;
    match simulation.status {
        JobStatus::Failed => Err(Failure::unavailable(anyhow!(
            "simulation {} of {} failed: {}",
            simulation.id,
            simulation.environment,
            simulation.error.as_deref().unwrap_or("no reason given")
        ))),
        _ => {
            let verdict = simulation.report.as_ref().and_then(|report| report.get("verdict")).and_then(|v| v.as_str());
            Ok(if verdict == Some(Verdict::Block.as_str()) { Exit::Blocked } else { Exit::Success })
        }
    }
}
