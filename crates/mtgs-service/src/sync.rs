//! Live MCP servers: how to reach them, and syncing their `tools/list` into the registry.
//! Added tools go through the pipeline like a registration; changed tools are an update,
//! and an active tool whose definition changed on the live server (drift, a possible rug
//! pull) leaves `active` and needs approval again, with the before/after diff; tools the
//! server no longer lists become `removed`. A server that cannot be reached fails the sync
//! with the reason and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use mtgs_core::{
    AuditEvent, Connection, EnvironmentName, McpServer, ParsedTool, Permission, RefusedTool, ServerName, SyncRecord,
    SyncReport, SyncStatus, ToolDef, ToolName, ToolStatus, Verdict, json_type,
};
use mtgs_store::ToolFilter;
use serde_json::{Value, json};

use crate::audit::entry;
use crate::registry::Service;
use crate::{Resource, Result, ServiceError, ToolBatch};

/// What a live server answered: who it is (`initialize`'s `serverInfo`) and every tool
/// of `tools/list`, all pages, as JSON.
#[derive(Debug, Clone, Default)]
pub struct ListedTools {
    pub server_info: Value,
    pub tools: Vec<Value>,
}

/// Reaches live MCP servers. Implemented outside the service (the MCP SDK); the error is
/// the reason, shown to the user.
pub trait ToolSource: Send + Sync + fmt::Debug {
    fn list_tools<'a>(
        &'a self,
        connection: &'a Connection,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<ListedTools, String>> + Send + 'a>>;
}

/// Most tools one server may list.
const MAX_LISTED_TOOLS: usize = 10_000;

impl Service {
    /// Registers (or changes) how to reach the server `name` of an environment. Admins
    /// only: a stdio server is a command mtgs runs.
    pub async fn add_server(
        &self,
        environment: &EnvironmentName,
        name: &ServerName,
        connection: &Connection,
    ) -> Result<McpServer> {
        let actor = self.authorize(Permission::ManageServers)?.actor.clone();
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let row = tx.ensure_environment(environment, now).await?;
        let server = tx.set_server_connection(row.id, name, connection, now).await?;
        let registered = entry(
            &actor,
            now,
            AuditEvent::ServerRegistered,
            Some(environment),
            name.to_string(),
            Value::Null,
            json!({"id": server.id, "connection": connection.to_public()}),
        );
        tx.append_audit(&[registered]).await?;
        tx.commit().await?;
        Ok(server)
    }

    /// Live MCP servers, of one environment or all.
    pub async fn mcp_servers(&self, environment: Option<&EnvironmentName>) -> Result<Vec<McpServer>> {
        self.authorize(Permission::Read)?;
        Ok(self.store().mcp_servers(environment).await?)
    }

    pub async fn mcp_server(&self, id: i64) -> Result<McpServer> {
        self.authorize(Permission::Read)?;
        self.store()
            .server(id)
            .await?
            .filter(|server| server.connection.is_some())
            .ok_or_else(|| ServiceError::NotFound { what: Resource::Server, name: id.to_string() })
    }

    /// Syncs one server: lists its tools and makes the registry agree (see the module
    /// documentation). A failed sync is reported in the result, not as an error.
    pub async fn sync_server(&self, id: i64) -> Result<SyncReport> {
        self.authorize(Permission::Sync)?;
        let server = self.mcp_server(id).await?;
        let Some(connection) = &server.connection else {
            return Err(ServiceError::NotFound { what: Resource::Server, name: id.to_string() });
        };
        let source =
            self.inner.settings.tool_source.clone().ok_or_else(|| {
                ServiceError::Internal("this process has no MCP client to reach live servers".to_owned())
            })?;
        let mut report = SyncReport {
            server_id: server.id,
            environment: server.environment.to_string(),
            server: server.name.to_string(),
            status: SyncStatus::Failed,
            error: None,
            server_info: Value::Null,
            added: Vec::new(),
            changed: Vec::new(),
            drifted: Vec::new(),
            removed: Vec::new(),
            unchanged: 0,
            refused: Vec::new(),
            verdict: Verdict::Pass,
            statuses: BTreeMap::new(),
        };
        let listed = match source.list_tools(connection).await {
            Ok(listed) if listed.tools.len() > MAX_LISTED_TOOLS => {
                Err(format!("the server lists {} tools, more than {MAX_LISTED_TOOLS}", listed.tools.len()))
            }
            other => other,
        };
        let listed = match listed {
            Ok(listed) => listed,
            Err(reason) => {
                report.error = Some(reason);
                self.record_sync(&server, &report).await?;
                return Ok(report);
            }
        };
        report.server_info = listed.server_info.clone();

        // What the server lists, valid tools only, first of a name wins.
        let mut listed_tools: Vec<ParsedTool> = Vec::new();
        for (index, value) in listed.tools.iter().enumerate() {
            let name = value.get("name").and_then(Value::as_str).map(str::to_owned);
            match ToolDef::parse(value) {
                Ok(parsed) if listed_tools.iter().any(|tool| tool.def.name == parsed.def.name) => {
                    report.refused.push(RefusedTool { index, name, error: "listed twice".to_owned() });
                }
                Ok(parsed) => listed_tools.push(parsed),
                Err(error) => report.refused.push(RefusedTool {
                    index,
                    name,
                    error: if value.is_object() {
                        error.to_string()
                    } else {
                        format!("expected an object, found {}", json_type(value))
                    },
                }),
            }
        }
        let registered: HashMap<ToolName, mtgs_core::ToolRecord> = self
            .store()
            .tools(&ToolFilter {
                environment: Some(server.environment.clone()),
                server: Some(server.name.clone()),
                ..ToolFilter::default()
            })
            .await?
            .into_iter()
            .filter(|tool| tool.status != ToolStatus::Removed)
            .map(|tool| (tool.def.name.clone(), tool))
            .collect();

        let mut batch = Vec::new();
        let mut drift: HashMap<ToolName, ToolDef> = HashMap::new();
        for tool in &listed_tools {
            match registered.get(&tool.def.name) {
                None => {
                    report.added.push(tool.def.name.to_string());
                    batch.push(tool.clone());
                }
                Some(record) if record.definition_hash != tool.def.canonical_hash() => {
                    report.changed.push(tool.def.name.to_string());
                    if record.status == ToolStatus::Active {
                        report.drifted.push(tool.def.name.to_string());
                        drift.insert(tool.def.name.clone(), record.def.clone());
                    }
                    batch.push(tool.clone());
                }
                Some(_) => report.unchanged += 1,
            }
        }
        let gone: Vec<&mtgs_core::ToolRecord> = registered
            .values()
            .filter(|record| !listed_tools.iter().any(|tool| tool.def.name == record.def.name))
            .collect();
        report.removed = gone.iter().map(|record| record.def.name.to_string()).collect();
        report.removed.sort();

        if !batch.is_empty() {
            let tools =
                ToolBatch { environment: server.environment.clone(), server: server.name.clone(), tools: batch };
            let outcome = crate::batch::register_with_drift(self, tools, &drift).await?;
            report.verdict = outcome.verdict;
            for tool in outcome.tools {
                if let Some(status) = tool.status {
                    report.statuses.insert(tool.name.to_string(), status);
                }
            }
        }
        if !gone.is_empty() {
            self.remove_tools(&server.environment, &gone).await?;
        }
        report.status = SyncStatus::Succeeded;
        self.record_sync(&server, &report).await?;
        Ok(report)
    }

    /// Marks tools the server no longer lists `removed` (TOOL_DELETED each); a pending
    /// approval request for one is superseded.
    async fn remove_tools(&self, environment: &EnvironmentName, tools: &[&mtgs_core::ToolRecord]) -> Result<()> {
        let state = self.environment_state(environment);
        let _writes = state.writes.lock().await;
        let now = self.now();
        let actor = self.actor().to_owned();
        let mut tx = self.store().begin().await?;
        let row = tx.ensure_environment(environment, now).await?;
        let mut entries = Vec::with_capacity(tools.len());
        for tool in tools {
            tx.set_tool_status(tool.id, ToolStatus::Removed, now).await?;
            if let Some(pending) = tx
                .latest_approval(tool.id)
                .await?
                .filter(|approval| approval.status == mtgs_core::ApprovalStatus::Pending)
            {
                let superseded = mtgs_store::ApprovalDecision {
                    status: mtgs_core::ApprovalStatus::Superseded,
                    decided_by: &actor,
                    decided_at: now,
                    comment: Some("the tool was removed from its server"),
                };
                tx.decide_approval(pending.id, &superseded).await?;
            }
            entries.push(entry(
                &actor,
                now,
                AuditEvent::ToolDeleted,
                Some(environment),
                format!("{}/{}", tool.server, tool.def.name),
                json!({"status": tool.status, "definition_hash": tool.definition_hash}),
                json!({"status": ToolStatus::Removed}),
            ));
        }
        tx.append_audit(&entries).await?;
        tx.bump_generation(row.id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_sync(&self, server: &McpServer, report: &SyncReport) -> Result<()> {
        let now = self.now();
        let record = SyncRecord {
            at: now,
            status: report.status,
            summary: if report.status == SyncStatus::Succeeded { report.summary() } else { Value::Null },
            error: report.error.clone(),
        };
        let synced = entry(
            self.actor(),
            now,
            AuditEvent::ServerSynced,
            Some(&server.environment),
            server.name.to_string(),
            Value::Null,
            json!({"status": report.status, "error": report.error, "summary": record.summary}),
        );
        let mut tx = self.store().begin().await?;
        tx.record_sync(server.id, &record).await?;
        tx.append_audit(&[synced]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Syncs every live server whose last sync is older than `interval` (or that never
    /// synced), as the job runner does between jobs. Returns how many it tried.
    pub async fn sync_due(&self, interval: std::time::Duration) -> Result<usize> {
        self.authorize(Permission::Sync)?;
        let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let now = self.now();
        let due: Vec<McpServer> = self
            .store()
            .mcp_servers(None)
            .await?
            .into_iter()
            .filter(|server| server.last_sync.as_ref().is_none_or(|sync| now.saturating_sub(sync.at) >= interval))
            .collect();
        for server in &due {
            match self.sync_server(server.id).await {
                Ok(report) if report.status == SyncStatus::Failed => {
                    tracing::warn!(server = %server.name, error = report.error.as_deref().unwrap_or(""), "sync failed");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(server = %server.name, %error, "sync failed"),
            }
        }
        Ok(due.len())
    }
}

/// The fields of a definition that differ (`description`, `inputSchema`, …), and both
/// versions: what a reviewer of a drifted tool looks at.
pub(crate) fn definition_diff(before: &ToolDef, after: &ToolDef) -> Value {
    let (before, after) = (before.to_json(), after.to_json());
    let empty = serde_json::Map::new();
    let (left, right) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut changed: Vec<&str> =
        left.keys().chain(right.keys()).filter(|key| left.get(*key) != right.get(*key)).map(String::as_str).collect();
    changed.sort_unstable();
    changed.dedup();
    json!({"changed": changed, "before": before, "after": after})
}
