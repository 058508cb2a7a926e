//! `mtgs keys create|list|revoke`, `mtgs approvals list|show|approve|reject` and
//! `mtgs whoami`. Locally they act as the data directory's operator (an admin), so the
//! first key of a fresh install is created with `mtgs keys create --role admin`.

use mtgs_service::ApprovalFilter;

use crate::args::{ApprovalsCommand, KeysCommand, ListApprovalsArgs};
use crate::backend::Backend;
use crate::failure::{Exit, Failure};
use crate::output::Printer;

pub async fn keys(command: KeysCommand, backend: &Backend, printer: &Printer) -> Result<Exit, Failure> {
    match command {
        KeysCommand::Create(args) => printer.created_key(&backend.create_key(args.name.as_deref(), args.role).await?),
        KeysCommand::List => printer.keys(&backend.keys().await?),
        KeysCommand::Revoke(args) => printer.key(&backend.revoke_key(args.id).await?),
    }
    Ok(Exit::Success)
}

pub async fn approvals(command: ApprovalsCommand, backend: &Backend, printer: &Printer) -> Result<Exit, Failure> {
    match command {
        ApprovalsCommand::List(ListApprovalsArgs { status, environment }) => {
            printer.approvals(&backend.approvals(&ApprovalFilter { status, environment }).await?);
        }
        ApprovalsCommand::Show(args) => printer.approval(&backend.approval(args.id).await?),
        ApprovalsCommand::Approve(args) => {
            printer.approval(&backend.decide(args.id, true, args.comment.as_deref()).await?);
        }
        ApprovalsCommand::Reject(args) => {
            printer.approval(&backend.decide(args.id, false, args.comment.as_deref()).await?);
        }
    }
    Ok(Exit::Success)
}

pub async fn whoami(backend: &Backend, printer: &Printer) -> Result<Exit, Failure> {
    printer.me(&backend.me().await?);
    Ok(Exit::Success)
}
