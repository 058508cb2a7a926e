//! `mtgs audit verify` and `mtgs audit export`: the hash-chained audit log of the local
//! database. (The API's audit routes arrive with authentication, #6; until then these
//! commands read the database directly.)

use anyhow::anyhow;
use mtgs_core::{audit_cef, audit_json};
use mtgs_service::{AuditFilter, Service};

use crate::args::{AuditCommand, Format};
use crate::failure::{Exit, Failure};
use crate::settings::Target;

pub async fn run(command: AuditCommand, target: &Target, format: Format) -> Result<Exit, Failure> {
    let Target::Local(settings) = target else {
        return Err(Failure::input(anyhow!(
            "audit commands read the local database; over --url the audit routes need authentication, which is not built yet"
        )));
    };
    // The audit log needs no model: open the service without stage 3 or 4.
    let mut service_settings = settings.service.clone();
    service_settings.behavioural = None;
    let service = Service::open(&service_settings).await.map_err(|error| Failure::unavailable(anyhow!("{error}")))?;
    match command {
        AuditCommand::Verify => {
            let report = service.verify_audit_log().await.map_err(|error| Failure::unavailable(anyhow!("{error}")))?;
            match &report.broken {
                None => {
                    println!("audit log intact: {} entries, head {}", report.entries, report.head);
                    Ok(Exit::Success)
                }
                Some(broken) => {
                    println!("audit log broken at entry {}: {}", broken.seq, broken.reason);
                    println!("{} entries verified before it, last good hash {}", report.entries - 1, report.head);
                    Ok(Exit::Blocked)
                }
            }
        }
        AuditCommand::Export(args) => {
            let filter = AuditFilter { from: args.from, to: args.to, event: args.event };
            let entries = service.audit_log(&filter).await.map_err(|error| Failure::unavailable(anyhow!("{error}")))?;
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
