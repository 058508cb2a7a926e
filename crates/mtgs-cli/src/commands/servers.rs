//! `mtgs servers add|import|list|show`, `mtgs sync` and `mtgs mcp`.

use anyhow::{Context as _, anyhow};
use mtgs_core::{Connection, Role, SyncStatus, parse_host_config};
use serde_json::{Map, Value, json};

use crate::args::{AddServerArgs, ServersCommand, SyncArgs};
use crate::backend::{Backend, local_operator};
use crate::failure::{Exit, Failure};
use crate::output::Printer;
use crate::settings::{LocalSettings, Target};

pub async fn servers(command: ServersCommand, target: &Target, printer: &Printer) -> Result<Exit, Failure> {
    match command {
        ServersCommand::Add(args) => {
            let connection = connection(&args)?;
            let backend = Backend::connect_without_models(target).await?;
            printer.server(&backend.add_server(&args.environment, &args.name, &connection).await?);
        }
        ServersCommand::Import(args) => {
            let text = std::fs::read_to_string(&args.file)
                .with_context(|| format!("cannot read {}", args.file.display()))
                .map_err(Failure::input)?;
            let config: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", args.file.display()))
                .map_err(Failure::input)?;
            let servers = parse_host_config(&config)
                .with_context(|| format!("invalid MCP configuration in {}", args.file.display()))
                .map_err(Failure::input)?;
            let backend = Backend::connect_without_models(target).await?;
            let mut added = Vec::with_capacity(servers.len());
            for (name, connection) in &servers {
                added.push(backend.add_server(&args.environment, name, connection).await?);
            }
            printer.servers(&mtgs_api::McpServerList { servers: added });
        }
        ServersCommand::List(args) => {
            let backend = Backend::connect_without_models(target).await?;
            printer.servers(&backend.servers(args.environment.as_ref()).await?);
        }
        ServersCommand::Show(args) => {
            let backend = Backend::connect_without_models(target).await?;
            printer.server(&backend.server(args.id).await?);
        }
    }
    Ok(Exit::Success)
}

/// The connection `servers add` describes, through the same parser as a host config.
fn connection(args: &AddServerArgs) -> Result<Connection, Failure> {
    let pairs = |values: &[String], separator: char, what: &str| -> Result<Map<String, Value>, Failure> {
        values
            .iter()
            .map(|pair| {
                let (name, value) = pair
                    .split_once(separator)
                    .ok_or_else(|| Failure::input(anyhow!("{what} '{pair}': expected NAME{separator}VALUE")))?;
                Ok((name.trim().to_owned(), Value::String(value.trim().to_owned())))
            })
            .collect()
    };
    let value = match (&args.endpoint, args.command.split_first()) {
        (Some(url), None) => {
            json!({"transport": "http", "url": url, "headers": pairs(&args.headers, ':', "--header")?})
        }
        (None, Some((command, rest))) => json!({
            "transport": "stdio",
            "command": command,
            "args": rest,
            "env": pairs(&args.env_vars, '=', "--env-var")?,
            "cwd": args.cwd,
        }),
        _ => return Err(Failure::input(anyhow!("give --endpoint URL, or the stdio command after `--`"))),
    };
    Connection::parse(&value, "").map_err(Failure::input)
}

/// Syncs the matching servers; exit 3 if one could not be reached, 1 if a tool now
/// waits for approval (a conflict or a drifted definition), else 0.
pub async fn sync(args: &SyncArgs, target: &Target, printer: &Printer) -> Result<Exit, Failure> {
    let backend = Backend::connect(target).await?;
    let servers = backend.servers(args.environment.as_ref()).await?;
    let chosen: Vec<_> = servers
        .servers
        .iter()
        .filter(|server| args.server.as_ref().is_none_or(|name| name.as_str() == server.name))
        .collect();
    if chosen.is_empty() {
        return Err(Failure::input(anyhow!(
            "no live MCP server matches; register one with `mtgs servers add` or `import`"
        )));
    }
    let mut exit = Exit::Success;
    let mut reports = Vec::with_capacity(chosen.len());
    for server in chosen {
        let report = backend.sync(server.id).await?;
        if !printer.json() {
            printer.sync(&report);
        }
        if report.status == SyncStatus::Failed {
            exit = Exit::Unavailable;
        } else if exit == Exit::Success
            && report.statuses.values().any(|status| *status != mtgs_core::ToolStatus::Active)
        {
            exit = Exit::Blocked;
        }
        reports.push(report);
    }
    if printer.json() {
        printer.print_json(&json!({"syncs": reports}));
    }
    Ok(exit)
}

/// `mtgs mcp`: the governance tools on stdio, as the local operator with a developer's
/// rights (an agent may check, register and simulate, not approve or manage keys).
pub async fn mcp(local: &LocalSettings) -> Result<Exit, Failure> {
    let service = mtgs_service::Service::open(&local.service_settings()?)
        .await
        .with_context(|| format!("cannot open the database {}", local.service.database_url))
        .map_err(Failure::unavailable)?;
    let principal = mtgs_core::Principal { role: Role::Developer, ..local_operator() };
    mtgs_server::mcp::serve_stdio(service.acting_as(principal)).await.map_err(Failure::unavailable)?;
    Ok(Exit::Success)
}
