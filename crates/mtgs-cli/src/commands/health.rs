//! `mtgs health --env E`.

use crate::args::EnvironmentArgs;
use crate::backend::Backend;
use crate::failure::{Exit, Failure};
use crate::output::Printer;

pub async fn run(args: &EnvironmentArgs, backend: &Backend, printer: &Printer) -> Result<Exit, Failure> {
    printer.health(&backend.health(&args.environment).await?);
    Ok(Exit::Success)
}
