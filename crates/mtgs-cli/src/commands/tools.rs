//! `mtgs tools check | register | list`.

use mtgs_service::ToolFilter;

use crate::args::{ListToolsArgs, ToolsCommand};
use crate::backend::{Backend, Batch};
use crate::failure::{Exit, Failure};
use crate::input;
use crate::output::Printer;
use crate::settings::Target;

pub async fn run(command: ToolsCommand, target: &Target, printer: &Printer) -> Result<Exit, Failure> {
    match command {
        ToolsCommand::Check(args) => {
            let server = args.server.unwrap_or_else(|| input::default_server(&args.tools.file));
            let batch =
                Batch { tools: input::read_tools(&args.tools.file)?, environment: args.tools.environment, server };
            let summary = summary(&batch, "checked");
            let response = Backend::connect(target).await?.check(batch).await?;
            printer.check(&response, &summary);
            Ok(verdict_exit(response.verdict))
        }
        ToolsCommand::Register(args) => {
            let batch = Batch {
                tools: input::read_tools(&args.tools.file)?,
                environment: args.tools.environment,
                server: args.server,
            };
            let summary = summary(&batch, "registered");
            let response = Backend::connect(target).await?.register(batch).await?;
            printer.register(&response, &summary);
            Ok(verdict_exit(response.verdict))
        }
        ToolsCommand::List(ListToolsArgs { environment, server, status }) => {
            let list = Backend::connect(target)
                .await?
                .tools(&ToolFilter { environment, server, status, ..ToolFilter::default() })
                .await?;
            printer.tools(&list);
            Ok(Exit::Success)
        }
    }
}

fn summary(batch: &Batch, done: &str) -> String {
    let count = batch.tools.len();
    format!(
        "environment {}, server {}: {count} tool{} {done}",
        batch.environment,
        batch.server,
        if count == 1 { "" } else { "s" }
    )
}

fn verdict_exit(verdict: mtgs_core::Verdict) -> Exit {
    match verdict {
        mtgs_core::Verdict::Pass => Exit::Success,
        mtgs_core::Verdict::Block => Exit::Blocked,
    }
}
