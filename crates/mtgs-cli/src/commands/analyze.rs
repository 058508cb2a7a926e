//! `mtgs analyze --env E`: an all-pairs analysis with a progress bar on stderr.

use std::time::Duration;

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use mtgs_core::JobStatus;
use mtgs_service::Progress;

use crate::args::EnvironmentArgs;
use crate::backend::Backend;
use crate::failure::{Exit, Failure};
use crate::output::Printer;

/// A bar on stderr for an analysis of `label`; indicatif hides it when stderr is not a
/// terminal.
pub(super) fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{spinner} analysing {msg} [{bar:30}] {pos}/{len} tools ({eta})")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Moves `bar` to where a `Progress` report says.
pub(super) fn advance(bar: &ProgressBar, progress: Progress) {
    bar.set_length(progress.total);
    bar.set_position(progress.done);
}

pub async fn run(args: &EnvironmentArgs, backend: &Backend, printer: &Printer) -> Result<Exit, Failure> {
    let bar = progress_bar(args.environment.as_str());
    let report = |progress: Progress| advance(&bar, progress);
    let run = backend.analyze(&args.environment, &report).await;
    bar.finish_and_clear();
    let run = run?;
    printer.analysis(&run);
    match run.status {
        JobStatus::Failed => Err(Failure::unavailable(anyhow!(
            "analysis run {} of {} failed: {}",
            run.id,
            run.environment,
            run.error.as_deref().unwrap_or("no reason given")
        ))),
        _ => Ok(Exit::Success),
    }
}
