//! The `mtgs` binary: parses the command line, runs one command on the local database or
//! against a server, prints the result and exits with the documented code (see `--help`
//! and CLI.md). Thin: the work is in `mtgs-service`, `mtgs-server` and `mtgs-api`.

mod args;
mod backend;
mod commands;
mod env_vars;
mod failure;
mod input;
mod output;
mod settings;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command};
use crate::failure::{Exit, Failure};

/// mimalloc instead of glibc's malloc: detection allocates and frees many small objects
/// across threads (see docs/benchmarks.md for what it changed).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints usage errors to stderr (exit 2) and --help/--version to stdout (exit 0).
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(Exit::Input as u8));
        }
    };
    // Output piped into `head` ends the process quietly instead of a print panicking;
    // `serve` writes no pipe output that matters and keeps running on its sockets' EPIPE.
    if !matches!(cli.command, Command::Serve(_)) {
        sigpipe::reset();
    }
    init_logging(matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(&Failure::unavailable(anyhow::Error::new(error).context("cannot start the runtime")));
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => exit.into(),
        Err(failure) => report(&failure),
    }
}

fn report(failure: &Failure) -> ExitCode {
    eprintln!("error: {failure}");
    failure.exit.into()
}

/// Logs go to stderr: `info` for the server, warnings only for one-shot commands, unless
/// `MTGS_LOG` says otherwise.
fn init_logging(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env(env_vars::LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let ansi =
        std::io::stderr().is_terminal() && std::env::var_os(env_vars::NO_COLOR).is_none_or(|value| value.is_empty());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
