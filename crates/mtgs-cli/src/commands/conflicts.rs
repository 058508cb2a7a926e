//! `mtgs conflicts list | show | fix | set-status`.

use anyhow::anyhow;
use mtgs_core::{EnvironmentName, ToolDef, Verdict};
use mtgs_service::ConflictFilter;

use crate::args::{ConflictsCommand, ListConflictsArgs};
use crate::backend::{Backend, Batch};
use crate::failure::{Exit, Failure};
use crate::output::Printer;

pub async fn run(command: ConflictsCommand, backend: &Backend, printer: &Printer) -> Result<Exit, Failure> {
    match command {
        ConflictsCommand::List(ListConflictsArgs { environment, severity, stage, status, tool }) => {
            let list = backend
                .conflicts(&environment, &ConflictFilter { severity, stage, status, tool, ..ConflictFilter::default() })
                .await?;
            printer.conflicts(&list);
        }
        ConflictsCommand::Show { id } => printer.conflict(&backend.conflict(id).await?),
        ConflictsCommand::Fix { id, apply, pick } => return fix(backend, printer, id, apply.then_some(pick)).await,
        ConflictsCommand::SetStatus { id, status } => printer.conflict(&backend.set_conflict_status(id, status).await?),
    }
    Ok(Exit::Success)
}

/// Lists the conflict's verified fixes; with `apply`, registers fix number `apply`.
async fn fix(backend: &Backend, printer: &Printer, id: i64, apply: Option<u16>) -> Result<Exit, Failure> {
    let conflict = backend.conflict(id).await?;
    let list = backend.recommendations(id).await?;
    let Some(pick) = apply else {
        printer.recommendations(&list);
        return Ok(Exit::Success);
    };
    let chosen = list.recommendations.get(usize::from(pick) - 1).ok_or_else(|| {
        Failure::input(anyhow!(
            "--pick {pick}: conflict {id} has {} recommendation{}",
            list.recommendations.len(),
            if list.recommendations.len() == 1 { "" } else { "s" }
        ))
    })?;
    let patched: &ToolDef = match &chosen.patched_tool {
        Some(def) => def,
        None => {
            return Err(Failure::input(anyhow!(
                "fix {pick} retires {}: mtgs cannot stop a server publishing a tool; remove it from its server, \
                 and `mtgs sync` (or the next registration of that server) marks it removed",
                chosen.target
            )));
        }
    };
    let tool = ToolDef::parse(&patched.to_json()).map_err(|error| Failure::input(anyhow!("fix {pick}: {error}")))?;
    let environment = EnvironmentName::parse(&conflict.environment)
        .map_err(|error| Failure::input(anyhow!("environment: {error}")))?;
    let batch = Batch { environment, server: chosen.target.server.clone(), tools: vec![tool] };
    let summary = format!("fix {pick} of conflict {id} ({}): {}", chosen.kind, chosen.summary);
    let response = backend.register(batch).await?;
    printer.register(&response, &summary);
    Ok(match response.verdict {
        Verdict::Pass => Exit::Success,
        Verdict::Block => Exit::Blocked,
    })
}
