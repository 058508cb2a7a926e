//! `mtgs audit verify` and `mtgs audit export`: the hash-chained audit log, from the local
//! database or, with `--url`, from the server's `/v1/audit-logs` routes.

use anyhow::anyhow;
use mtgs_core::{ChainBreak, ChainReport, audit_cef, audit_json};
use mtgs_service::{AuditFilter, Service};

use crate::args::{AuditCommand, AuditExportArgs, Format};
use crate::backend::Remote;
use crate::failure::{Exit, Failure};
use crate::settings::Target;

pub async fn run(command: AuditCommand, target: &Target, format: Format) -> Result<Exit, Failure> {
    match target {
        Target::Local(settings) => {
            // The audit log needs no model: open the service without stages 3 and 4.
            let mut service_settings = settings.service.clone();
            service_settings.behavioural = None;
            let service = Service::open(&service_settings)
                .await
                .map_err(|error| Failure::unavailable(anyhow!("{error}")))?
                .acting_as(crate::backend::local_operator());
            match command {
                AuditCommand::Verify => {
                    let report =
                        service.verify_audit_log().await.map_err(|error| Failure::unavailable(anyhow!("{error}")))?;
                    Ok(print_verification(&report))
                }
                AuditCommand::Export(args) => {
                    let filter =
                        AuditFilter { from: args.from, to: args.to, event: args.event, ..AuditFilter::default() };
                    let entries =
                        service.audit_log(&filter).await.map_err(|error| Failure::unavailable(anyhow!("{error}")))?;
                    for entry in &entries {
                        match format {
                            Format::Cef => println!("{}", audit_cef(entry, env!("CARGO_PKG_VERSION"))),
                            Format::Json | Format::Table => println!("{}", audit_json(entry)),
                        }
                    }
                    Ok(Exit::Success)
                }
            }
        }
        Target::Remote { url, token } => {
            let remote = Remote::new(url, token.clone())?;
            match command {
                AuditCommand::Verify => {
                    let body = remote.get_json("/v1/audit-logs/verify", &[]).await?;
                    let report = ChainReport {
                        entries: body["entries"].as_u64().unwrap_or_default(),
                        head: body["head"].as_str().unwrap_or_default().to_owned(),
                        broken: body["broken"].as_object().map(|broken| ChainBreak {
                            seq: broken.get("seq").and_then(serde_json::Value::as_i64).unwrap_or_default(),
                            reason: broken
                                .get("reason")
                                .and_then(serde_json::Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        }),
                    };
                    Ok(print_verification(&report))
                }
                AuditCommand::Export(args) => {
                    let mut query = query(&args);
                    query.push(("format", if format == Format::Cef { "cef" } else { "json" }.to_owned()));
                    print!("{}", remote.get_text("/v1/audit-logs/export", &query).await?);
                    Ok(Exit::Success)
                }
            }
        }
    }
}

fn query(args: &AuditExportArgs) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(from) = args.from {
        query.push(("from", from.to_string()));
    }
    if let Some(to) = args.to {
        query.push(("to", to.to_string()));
    }
    if let Some(event) = args.event {
        query.push(("event", event.as_str().to_owned()));
    }
    query
}

fn print_verification(report: &ChainReport) -> Exit {
    match &report.broken {
        None => {
            println!("audit log intact: {} entries, head {}", report.entries, report.head);
            Exit::Success
        }
        Some(broken) => {
            println!("audit log broken at entry {}: {}", broken.seq, broken.reason);
            println!("{} entries verified before it, last good hash {}", report.entries.saturating_sub(1), report.head);
            Exit::Blocked
        }
    }
}
