//! `mtgs conflicts list | show | set-status`.

use mtgs_service::ConflictFilter;

use crate::args::{ConflictsCommand, ListConflictsArgs};
use crate::backend::Backend;
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
        ConflictsCommand::SetStatus { id, status } => printer.conflict(&backend.set_conflict_status(id, status).await?),
    }
    Ok(Exit::Success)
}
