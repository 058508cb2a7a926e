//! One module per command; each resolves its arguments, calls the backend and prints.

mod analyze;
mod audit;
mod bench;
mod conflicts;
pub(crate) mod eval;
mod governance;
mod health;
mod serve;
mod servers;
mod simulate;
mod tools;

use crate::args::{Cli, Command};
use crate::backend::Backend;
use crate::failure::{Exit, Failure};
use crate::output::Printer;
use crate::settings::{self, Settings};

pub async fn run(cli: Cli) -> Result<Exit, Failure> {
    if let Command::Serve(args) = &cli.command {
        return serve::run(args, &settings::local_settings(&cli.global)?).await;
    }
    if let Command::Bench(command) = cli.command {
        let printer = Printer::new(Settings::resolve(&cli.global)?.output);
        return bench::run(command, &settings::local_settings(&cli.global)?, &printer).await;
    }
    if let Command::Mcp = &cli.command {
        return servers::mcp(&settings::local_settings(&cli.global)?).await;
    }
    if let Command::Eval(args) = &cli.command {
        let embedder = settings::embedder_settings(&cli.global.embed)?;
        let behavioural = settings::behavioural_settings(&cli.global.route)?;
        return eval::run(args, &embedder, behavioural, &Printer::new(Settings::resolve(&cli.global)?.output)).await;
    }
    if cli.global.format == crate::args::Format::Cef && !matches!(cli.command, Command::Audit(_)) {
        return Err(Failure::input(anyhow::anyhow!("--format cef applies to `mtgs audit export` only")));
    }
    let settings = Settings::resolve(&cli.global)?;
    let printer = Printer::new(settings.output);
    // Commands that read a file validate it before connecting, so a bad file is exit 2
    // whether or not the database or server is there.
    match cli.command {
        Command::Serve(_) | Command::Eval(_) | Command::Mcp | Command::Bench(_) => unreachable!("handled above"),
        Command::Servers(command) => servers::servers(command, &settings.target, &printer).await,
        Command::Sync(args) => servers::sync(&args, &settings.target, &printer).await,
        Command::Tools(command) => tools::run(command, &settings.target, &printer).await,
        Command::Conflicts(command) => {
            conflicts::run(command, &Backend::connect(&settings.target).await?, &printer).await
        }
        Command::Analyze(args) => analyze::run(&args, &Backend::connect(&settings.target).await?, &printer).await,
        Command::Health(args) => health::run(&args, &Backend::connect(&settings.target).await?, &printer).await,
        Command::Simulate(args) => simulate::run(args, &settings.target, &printer).await,
        Command::Audit(command) => audit::run(command, &settings.target, cli.global.format).await,
        Command::Keys(command) => {
            governance::keys(command, &Backend::connect_without_models(&settings.target).await?, &printer).await
        }
        Command::Approvals(command) => {
            governance::approvals(command, &Backend::connect_without_models(&settings.target).await?, &printer).await
        }
        Command::Whoami => {
            governance::whoami(&Backend::connect_without_models(&settings.target).await?, &printer).await
        }
    }
}
