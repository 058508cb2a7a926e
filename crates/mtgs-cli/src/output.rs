//! Printing results: comfy-table tables for people, the API's JSON for `--format json`.
//! Both modes print the same `mtgs_api` values, so local and remote output agree.

use std::fmt::Write as _;

use comfy_table::{Cell, ContentArrangement, Table, presets};
use mtgs_api::{
    AnalysisRun, ApiKey, ApiKeyList, Approval, ApprovalList, CheckResponse, Conflict, CreatedApiKey, Health, Lint,
    McpServer, McpServerList, Me, RegisterResponse, Simulation, SyncReport, Tool,
};
use mtgs_core::{ToolKey, ToolStatus, Verdict};
use mtgs_detect::simulation::{ProbeRouting, SimulationReport};
use serde::Serialize;

use crate::args::Format;
use crate::settings::Output;

/// Longest description shown in `tools list`.
const DESCRIPTION_CHARS: usize = 60;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    output: Output,
}

impl Printer {
    pub fn new(output: Output) -> Self {
        Printer { output }
    }

    pub fn json(&self) -> bool {
        self.output.format == Format::Json
    }

    /// Pretty-printed JSON of an API value.
    pub fn print_json(&self, value: &impl Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("error: cannot render JSON: {error}"),
        }
    }

    fn verdict(&self, verdict: Verdict) -> String {
        match (verdict, self.output.color) {
            (Verdict::Pass, true) => "\x1b[32mpass\x1b[0m".to_owned(),
            (Verdict::Block, true) => "\x1b[1;31mblock\x1b[0m".to_owned(),
            (verdict, false) => verdict.to_string(),
        }
    }

    pub fn check(&self, response: &CheckResponse, summary: &str) {
        if self.json() {
            return self.print_json(response);
        }
        let blocking = response.conflicts.iter().filter(|conflict| blocks(conflict)).count();
        println!(
            "verdict: {} ({summary}: {} conflict{}, {blocking} blocking)",
            self.verdict(response.verdict),
            response.conflicts.len(),
            plural(response.conflicts.len())
        );
        if !response.conflicts.is_empty() {
            println!("{}", conflicts_table(&response.conflicts));
        }
        print_lints(&response.lints);
        print_warnings(&response.warnings);
    }

    pub fn register(&self, response: &RegisterResponse, summary: &str) {
        if self.json() {
            return self.print_json(response);
        }
        print_warnings(&response.warnings);
        let held = response.tools.iter().filter(|tool| tool.status == ToolStatus::PendingApproval).count();
        println!("verdict: {} ({summary}: {held} held for approval)", self.verdict(response.verdict));
        let mut table = table(["name", "status", "conflicts", "lints", "approval"]);
        for tool in &response.tools {
            table.add_row([
                Cell::new(&tool.name),
                Cell::new(tool.status),
                Cell::new(tool.conflicts.len()),
                Cell::new(tool.lints.len()),
                Cell::new(tool.approval.map_or("-".to_owned(), |id| id.to_string())),
            ]);
        }
        println!("{table}");
        if held > 0 {
            println!("a reviewer decides with `mtgs approvals approve|reject ID` (see `mtgs approvals show ID`)");
        }
        let conflicts: Vec<Conflict> = response.tools.iter().flat_map(|tool| tool.conflicts.iter().cloned()).collect();
        if !conflicts.is_empty() {
            println!("conflicts:\n{}", conflicts_table(&conflicts));
        }
        let lints: Vec<Lint> = response.tools.iter().flat_map(|tool| tool.lints.iter().cloned()).collect();
        print_lints(&lints);
    }

    pub fn tools(&self, list: &mtgs_api::ToolList) {
        if self.json() {
            return self.print_json(list);
        }
        if list.tools.is_empty() {
            return println!("no tools");
        }
        let mut table = table(["id", "environment", "server", "name", "status", "description"]);
        for tool in &list.tools {
            table.add_row([
                Cell::new(tool.id),
                Cell::new(&tool.environment),
                Cell::new(&tool.server),
                Cell::new(&tool.name),
                Cell::new(tool.status),
                Cell::new(short_description(tool)),
            ]);
        }
        println!("{table}");
    }

    pub fn conflicts(&self, list: &mtgs_api::ConflictList) {
        if self.json() {
            return self.print_json(list);
        }
        if list.conflicts.is_empty() {
            return println!("no conflicts");
        }
        println!("{}", conflicts_table(&list.conflicts));
    }

    /// A conflict's verified fixes, numbered as `conflicts fix --apply --pick N` takes them.
    pub fn recommendations(&self, list: &mtgs_api::RecommendationList) {
        if self.json() {
            return self.print_json(list);
        }
        if list.recommendations.is_empty() {
            return println!("no recommendations for conflict {} (its tools may no longer be live)", list.conflict);
        }
        let mut table = Table::new();
        table.load_style(presets::UTF8_FULL_CONDENSED);
        table.set_header(["#", "fix", "changes", "severity", "resolves", "new conflicts"]);
        for (number, fix) in list.recommendations.iter().enumerate() {
            let verification = &fix.verification;
            let after = verification.severity_after.map_or_else(|| "none".to_owned(), |severity| severity.to_string());
            let new_conflicts = verification
                .new_conflicts
                .iter()
                .map(|conflict| format!("{} {} with {}", conflict.severity, conflict.kind, conflict.tool))
                .collect::<Vec<_>>()
                .join("\n");
            table.add_row([
                (number + 1).to_string(),
                fix.kind.to_string(),
                fix.summary.clone(),
                format!("{} → {after}", verification.severity_before),
                if verification.resolves { "yes" } else { "no" }.to_owned(),
                new_conflicts,
            ]);
        }
        println!("{table}");
        for (number, fix) in list.recommendations.iter().enumerate() {
            if let Some(patched) = &fix.patched_tool {
                let text = serde_json::to_string_pretty(&patched.to_json()).unwrap_or_default();
                println!("fix {}: {}\n{text}", number + 1, fix.target);
            }
        }
    }

    pub fn conflict(&self, conflict: &Conflict) {
        if self.json() {
            return self.print_json(conflict);
        }
        let mut table = Table::new();
        table.load_style(presets::UTF8_FULL_CONDENSED);
        let rows = [
            ("id", id_text(conflict.id)),
            ("environment", conflict.environment.clone()),
            ("tool_a", format!("{}/{}", conflict.tool_a.server, conflict.tool_a.name)),
            ("tool_b", format!("{}/{}", conflict.tool_b.server, conflict.tool_b.name)),
            ("stage", conflict.stage.to_string()),
            ("kind", conflict.kind.to_string()),
            ("severity", conflict.severity.to_string()),
            ("score", format!("{:.2}", conflict.score)),
            ("status", conflict.status.to_string()),
            ("first_seen_at", conflict.first_seen_at.map(utc_time).unwrap_or_default()),
            ("last_seen_at", conflict.last_seen_at.map(utc_time).unwrap_or_default()),
        ];
        for (key, value) in rows {
            table.add_row([key.to_owned(), value]);
        }
        println!("{table}");
        let evidence = serde_json::to_string_pretty(&conflict.evidence).unwrap_or_default();
        println!("evidence:\n{evidence}");
    }

    pub fn analysis(&self, run: &AnalysisRun) {
        if self.json() {
            return self.print_json(run);
        }
        println!(
            "analysis run {} of {}: {} ({}/{})",
            run.id, run.environment, run.status, run.progress.done, run.progress.total
        );
        if let Some(result) = run.result.as_object().filter(|result| !result.is_empty()) {
            let mut line = String::new();
            for (key, value) in result {
                let _ = write!(line, "{}{key} {value}", if line.is_empty() { "" } else { ", " });
            }
            println!("result: {line}");
        }
    }

    /// A finished simulation. JSON: the report's fields at the top level, with `id`,
    /// `environment` and `status`.
    pub fn simulation(&self, simulation: &Simulation) -> Result<(), crate::failure::Failure> {
        let report: Option<SimulationReport> = match &simulation.report {
            Some(value) => Some(serde_json::from_value(value.clone()).map_err(|error| {
                crate::failure::Failure::unavailable(anyhow::anyhow!("unreadable simulation report: {error}"))
            })?),
            None => None,
        };
        if self.json() {
            let mut object = serde_json::Map::new();
            object.insert("id".to_owned(), simulation.id.into());
            object.insert("environment".to_owned(), simulation.environment.clone().into());
            object.insert("status".to_owned(), simulation.status.as_str().into());
            if let Some(error) = &simulation.error {
                object.insert("error".to_owned(), error.clone().into());
            }
            if let Some(serde_json::Value::Object(fields)) = &simulation.report {
                object.extend(fields.clone());
            }
            self.print_json(&object);
            return Ok(());
        }
        println!("simulation {} of {}: {}", simulation.id, simulation.environment, simulation.status);
        let Some(report) = report else { return Ok(()) };
        let severity = report.severity.map_or_else(|| "no confusion".to_owned(), |severity| severity.to_string());
        println!("verdict: {} ({severity})", self.verdict(report.verdict));
        println!(
            "router: {} ({}), {} trial{} per request",
            report.router,
            report.router_is,
            report.trials,
            plural(report.trials as usize)
        );
        println!(
            "registry: {} tools, {} of their {} requests could reach a candidate, {} changed route",
            report.registered_tools,
            report.rerouted,
            report.registered_probes,
            report.changed.len()
        );
        let key = |tool: &Option<ToolKey>| tool.as_ref().map_or_else(|| "(no tool)".to_owned(), ToString::to_string);
        if !report.pairs.is_empty() {
            let mut table = table([
                "candidate",
                "existing tool",
                "candidate → existing",
                "existing → candidate",
                "rate",
                "severity",
            ]);
            for pair in &report.pairs {
                table.add_row([
                    pair.candidate.to_string(),
                    pair.existing.to_string(),
                    format!("{}/{}", pair.candidate_to_existing, pair.candidate_probes),
                    format!("{}/{}", pair.existing_to_candidate, pair.existing_probes),
                    format!("{:.2}", pair.confusion_rate),
                    pair.severity.map_or_else(|| "-".to_owned(), |severity| severity.to_string()),
                ]);
            }
            println!("requests that cross:\n{table}");
        }
        let routes = |title: &str, probes: &[ProbeRouting]| {
            if probes.is_empty() {
                return;
            }
            let mut table = table(["request", "expected", "before", "after"]);
            for probe in probes {
                table.add_row([probe.query.clone(), key(&probe.expected), key(&probe.before), key(&probe.after)]);
            }
            println!("{title}:\n{table}");
        };
        routes("the candidates' own requests", &report.candidate_probes);
        routes("registered tools' requests that change route", &report.changed);
        routes("supplied requests", &report.probes);
        if let (Some(after), Some(before)) = (report.accuracy, report.accuracy_before) {
            println!(
                "top-1 accuracy on {} labelled request{}: {before:.2} before, {after:.2} after",
                report.labelled_probes,
                plural(report.labelled_probes)
            );
        }
        Ok(())
    }

    pub fn health(&self, health: &Health) {
        if self.json() {
            return self.print_json(health);
        }
        let counts = &health.conflicts;
        println!("environment {}: health {}/100", health.environment, health.score);
        println!("tools: {} live, {} pending approval", health.tools, health.pending_approval);
        println!(
            "live conflicts: {} critical, {} high, {} medium, {} low",
            counts.critical, counts.high, counts.medium, counts.low
        );
    }
}

impl Printer {
    /// A new key: the key alone on stdout (so `$(mtgs keys create …)` captures it), or
    /// the record with `key` in JSON.
    pub fn created_key(&self, created: &CreatedApiKey) {
        if self.json() {
            return self.print_json(created);
        }
        println!("{}", created.key);
        eprintln!(
            "created API key {} ({}, role {}): store it now, it is not shown again",
            created.record.prefix, created.record.name, created.record.role
        );
    }

    pub fn keys(&self, list: &ApiKeyList) {
        if self.json() {
            return self.print_json(list);
        }
        if list.keys.is_empty() {
            return println!("no API keys");
        }
        let mut table = table(["id", "prefix", "name", "role", "created by", "created", "last used", "revoked"]);
        for key in &list.keys {
            table.add_row([
                key.id.to_string(),
                key.prefix.clone(),
                key.name.clone(),
                key.role.to_string(),
                key.created_by.clone(),
                time_text(Some(key.created_at)),
                time_text(key.last_used_at),
                time_text(key.revoked_at),
            ]);
        }
        println!("{table}");
    }

    pub fn key(&self, key: &ApiKey) {
        if self.json() {
            return self.print_json(key);
        }
        let state = match key.revoked_at {
            Some(at) => format!("revoked {} by {}", time_text(Some(at)), key.revoked_by.as_deref().unwrap_or("-")),
            None => "active".to_owned(),
        };
        println!("API key {} {} ({}, role {}): {state}", key.id, key.prefix, key.name, key.role);
    }

    pub fn approvals(&self, list: &ApprovalList) {
        if self.json() {
            return self.print_json(list);
        }
        if list.approvals.is_empty() {
            return println!("no approval requests");
        }
        let mut table =
            table(["id", "status", "environment", "tool", "requested by", "requested", "expires", "decided by"]);
        for approval in &list.approvals {
            table.add_row([
                approval.id.to_string(),
                approval.status.to_string(),
                approval.environment.clone(),
                format!("{}/{}", approval.tool.server, approval.tool.name),
                approval.requested_by.clone(),
                time_text(Some(approval.requested_at)),
                time_text(Some(approval.expires_at)),
                approval.decided_by.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        println!("{table}");
    }

    pub fn approval(&self, approval: &Approval) {
        if self.json() {
            return self.print_json(approval);
        }
        println!(
            "approval {}: {} (environment {}, tool {}/{})",
            approval.id, approval.status, approval.environment, approval.tool.server, approval.tool.name
        );
        println!("requested by {} at {}", approval.requested_by, time_text(Some(approval.requested_at)));
        println!("expires at {}", time_text(Some(approval.expires_at)));
        if let Some(decided_by) = &approval.decided_by {
            println!("decided by {decided_by} at {}", time_text(approval.decided_at));
        }
        if let Some(comment) = &approval.comment {
            println!("comment: {comment}");
        }
        if approval.reason.get("drift").and_then(serde_json::Value::as_bool) == Some(true) {
            println!("why: the definition changed on the live server after it was active (drift)");
        }
        if let Some(conflicts) = approval
            .reason
            .get("conflicts")
            .and_then(serde_json::Value::as_array)
            .filter(|conflicts| !conflicts.is_empty())
        {
            println!("blocking conflicts:");
            for conflict in conflicts {
                let text = |key: &str| conflict.get(key).and_then(serde_json::Value::as_str).unwrap_or("-").to_owned();
                let id =
                    conflict.get("id").and_then(serde_json::Value::as_i64).map_or("-".to_owned(), |id| id.to_string());
                println!(
                    "  #{id} {} {} {}: {} ↔ {}",
                    text("severity"),
                    text("stage"),
                    text("kind"),
                    text("tool_a"),
                    text("tool_b")
                );
            }
        }
        if !approval.diff.is_null() {
            println!("definition change:");
            self.print_json(&approval.diff);
        }
    }

    pub fn servers(&self, list: &McpServerList) {
        if self.json() {
            return self.print_json(list);
        }
        if list.servers.is_empty() {
            return println!("no live MCP servers");
        }
        let mut table = table(["id", "environment", "name", "transport", "endpoint", "last sync", "status"]);
        for server in &list.servers {
            let endpoint = server.connection.get("url").or_else(|| server.connection.get("command"));
            table.add_row([
                server.id.to_string(),
                server.environment.clone(),
                server.name.clone(),
                server.connection["transport"].as_str().unwrap_or("-").to_owned(),
                endpoint.and_then(serde_json::Value::as_str).unwrap_or("-").to_owned(),
                time_text(server.last_sync.as_ref().map(|sync| sync.at)),
                server.last_sync.as_ref().map_or("never".to_owned(), |sync| sync.status.to_string()),
            ]);
        }
        println!("{table}");
    }

    pub fn server(&self, server: &McpServer) {
        if self.json() {
            return self.print_json(server);
        }
        println!("server {} {} (environment {})", server.id, server.name, server.environment);
        println!("connection: {}", server.connection);
        match &server.last_sync {
            Some(sync) => {
                println!("last sync: {} at {}", sync.status, time_text(Some(sync.at)));
                if let Some(error) = &sync.error {
                    println!("error: {error}");
                }
            }
            None => println!("never synced"),
        }
    }

    pub fn sync(&self, report: &SyncReport) {
        if self.json() {
            return self.print_json(report);
        }
        let server = format!("{}/{}", report.environment, report.server);
        if let Some(error) = &report.error {
            return println!("sync of {server} failed: {error} (nothing changed)");
        }
        println!(
            "synced {server}: {} added, {} changed ({} drifted), {} removed, {} unchanged",
            report.added.len(),
            report.changed.len(),
            report.drifted.len(),
            report.removed.len(),
            report.unchanged
        );
        for name in &report.drifted {
            println!("  {name}: the definition changed on the server after approval; it needs approval again");
        }
        for (name, status) in &report.statuses {
            if *status != ToolStatus::Active {
                println!("  {name}: {status}");
            }
        }
        for refused in &report.refused {
            println!(
                "  refused tool #{} {}: {}",
                refused.index,
                refused.name.as_deref().unwrap_or("(unnamed)"),
                refused.error
            );
        }
    }

    pub fn me(&self, me: &Me) {
        if self.json() {
            return self.print_json(me);
        }
        let name = me.name.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
        println!("{}{name}: role {} via {}", me.actor, me.role, me.method);
        println!("may: {}", me.permissions.join(", "));
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC, `-` for none.
fn time_text(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".to_owned() };
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// A conflict that makes a verdict `block`: live, critical or high.
fn blocks(conflict: &Conflict) -> bool {
    conflict.severity.blocks() && conflict.status.is_live()
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}

fn conflicts_table(conflicts: &[Conflict]) -> Table {
    let mut table = table(["id", "severity", "stage", "kind", "tool_a", "tool_b", "score", "status"]);
    for conflict in conflicts {
        table.add_row([
            id_text(conflict.id),
            conflict.severity.to_string(),
            conflict.stage.to_string(),
            conflict.kind.to_string(),
            format!("{}/{}", conflict.tool_a.server, conflict.tool_a.name),
            format!("{}/{}", conflict.tool_b.server, conflict.tool_b.name),
            format!("{:.2}", conflict.score),
            conflict.status.to_string(),
        ]);
    }
    table
}

fn print_lints(lints: &[Lint]) {
    if lints.is_empty() {
        return;
    }
    let mut table = table(["tool", "level", "code", "field", "message"]);
    for lint in lints {
        let level = match lint.level {
            mtgs_core::LintLevel::Info => "info",
            mtgs_core::LintLevel::Warning => "warning",
        };
        table.add_row([lint.tool.as_str(), level, &lint.code, &lint.field, &lint.message]);
    }
    println!("lints:\n{table}");
}

/// `-` for a finding no conflict tracks yet.
fn id_text(id: Option<i64>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn short_description(tool: &Tool) -> String {
    let description = tool.definition.get("description").and_then(|value| value.as_str()).unwrap_or_default();
    let first_line = description.lines().next().unwrap_or_default().trim();
    if first_line.chars().count() > DESCRIPTION_CHARS {
        let cut: String = first_line.chars().take(DESCRIPTION_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        first_line.to_owned()
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

/// Stages that could not do their whole job, on stderr.
fn print_warnings(warnings: &[mtgs_api::Warning]) {
    for warning in warnings {
        eprintln!("warning: {}: {}", warning.stage, warning.message);
    }
}

#[cfg(test)]
mod tests {
    use super::utc_time;

    #[test]
    fn times_render_in_utc() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
    }
}
