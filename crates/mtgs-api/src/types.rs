//! Request and response bodies of the `/v1` routes, and their conversions from domain values.

use mtgs_core::{
    ApprovalStatus, AuthMethod, ConflictKind, ConflictStatus, JobKind, JobStatus, LintLevel, Role, Severity, StageId,
    ToolStatus, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `POST /v1/tools/check`, `POST /v1/tools` and `POST /v1/webhooks/ci-check`.
/// `tools` holds MCP `Tool` objects as a server lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolBatchRequest {
    pub environment: String,
    pub server: String,
    pub tools: Vec<Value>,
}

/// A tool's identity: the server that publishes it and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ToolRef {
    pub server: String,
    pub name: String,
}

impl From<&mtgs_core::ToolKey> for ToolRef {
    fn from(key: &mtgs_core::ToolKey) -> Self {
        ToolRef { server: key.server.to_string(), name: key.name.to_string() }
    }
}

/// A conflict between two tools. `tool_a` is the tool being checked (or the first of the
/// pair), `tool_b` the other. `id` is `null` for a finding a check made about a pair that
/// is not tracked yet; `first_seen_at`/`last_seen_at` are then absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub id: Option<i64>,
    pub environment: String,
    pub tool_a: ToolRef,
    pub tool_b: ToolRef,
    pub stage: StageId,
    pub kind: ConflictKind,
    pub severity: Severity,
    /// Strength of the evidence in `[0, 1]`.
    pub score: f64,
    /// Kind-specific facts (see ARCHITECTURE.md).
    pub evidence: Value,
    pub status: ConflictStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<i64>,
}

impl Conflict {
    /// A finding with the tracked conflict's id and status, when there is one.
    pub fn from_finding(
        environment: &mtgs_core::EnvironmentName,
        id: Option<i64>,
        status: ConflictStatus,
        finding: &mtgs_core::Finding,
    ) -> Self {
        Conflict {
            id,
            environment: environment.to_string(),
            tool_a: ToolRef::from(&finding.tool_a),
            tool_b: ToolRef::from(&finding.tool_b),
            stage: finding.stage,
            kind: finding.kind,
            severity: finding.severity,
            score: finding.score,
            evidence: finding.evidence.clone(),
            status,
            first_seen_at: None,
            last_seen_at: None,
        }
    }
}

impl From<&mtgs_core::Conflict> for Conflict {
    fn from(conflict: &mtgs_core::Conflict) -> Self {
        Conflict {
            first_seen_at: Some(conflict.first_seen_at),
            last_seen_at: Some(conflict.last_seen_at),
            ..Conflict::from_finding(&conflict.environment, Some(conflict.id), conflict.status, &conflict.finding)
        }
    }
}

/// A style finding about one tool; `field` is a path inside that tool's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lint {
    pub tool: String,
    pub code: String,
    pub level: LintLevel,
    pub field: String,
    pub message: String,
}

impl Lint {
    pub fn new(tool: &mtgs_core::ToolName, lint: &mtgs_core::Lint) -> Self {
        Lint {
            tool: tool.to_string(),
            code: lint.code.clone(),
            level: lint.level,
            field: lint.field.clone(),
            message: lint.message.clone(),
        }
    }
}

/// `200` body of `POST /v1/tools/check` and `POST /v1/webhooks/ci-check` (`409` with the
/// same body when the verdict is `block`). `conflicts` holds every finding about the
/// checked tools, blocking or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResponse {
    pub verdict: Verdict,
    pub conflicts: Vec<Conflict>,
    pub lints: Vec<Lint>,
    /// What the pipeline could not do (a stage that did not run, and why); absent when
    /// every stage ran. A pass with warnings checked less than a pass without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// A stage that could not do its whole job for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub stage: StageId,
    pub message: String,
}

/// `201` body of `POST /v1/tools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub verdict: Verdict,
    pub tools: Vec<RegisteredTool>,
    /// As in [`CheckResponse::warnings`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// One tool of a registration: the status it was given and what it drew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredTool {
    pub name: String,
    pub status: ToolStatus,
    pub conflicts: Vec<Conflict>,
    pub lints: Vec<Lint>,
    /// The approval request that speaks for the tool (opened now, or an earlier
    /// decision about this definition); absent when it needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<i64>,
}

/// A registered tool. `definition` is the MCP `Tool` object as the server sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub id: i64,
    pub environment: String,
    pub server: String,
    pub name: String,
    pub status: ToolStatus,
    pub definition: Value,
    /// SHA-256 of the definition's canonical JSON.
    pub definition_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&mtgs_core::ToolRecord> for Tool {
    fn from(record: &mtgs_core::ToolRecord) -> Self {
        Tool {
            id: record.id,
            environment: record.environment.to_string(),
            server: record.server.to_string(),
            name: record.def.name.to_string(),
            status: record.status,
            definition: record.def.to_json(),
            definition_hash: record.definition_hash.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// Body of `GET /v1/tools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolList {
    pub tools: Vec<Tool>,
    /// The `offset` of the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// Body of `GET /v1/environments/{env}/conflicts`: a page, most severe first, then by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictList {
    pub conflicts: Vec<Conflict>,
    /// The `offset` of the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// Body of `GET /v1/conflicts/{id}/recommendations`: fixes for the conflict, each with
/// the pipeline's verdict on the patched registry, resolving ones first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendationList {
    pub conflict: i64,
    pub recommendations: Vec<mtgs_core::Recommendation>,
}

/// Body of `PATCH /v1/conflicts/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetConflictStatusRequest {
    pub status: ConflictStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: i64,
    pub total: i64,
}

/// A background analysis of an environment (`202` from `POST …/analysis-runs`, then
/// `GET /v1/analysis-runs/{id}` until `status` is `succeeded` or `failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRun {
    pub id: i64,
    pub kind: JobKind,
    pub environment: String,
    pub status: JobStatus,
    pub progress: Progress,
    /// Counts of conflicts found, opened and resolved, once it succeeded.
    pub result: Value,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl From<&mtgs_core::Job> for AnalysisRun {
    fn from(job: &mtgs_core::Job) -> Self {
        AnalysisRun {
            id: job.id,
            kind: job.kind,
            environment: job.environment.to_string(),
            status: job.status,
            progress: Progress { done: job.progress_done, total: job.progress_total },
            result: job.result.clone(),
            error: job.error.clone(),
            attempts: job.attempts,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// An impact simulation (`202` from `POST /v1/simulations`, then
/// `GET /v1/simulations/{id}` until `status` is `succeeded` or `failed`). `report` is the
/// routing shift once it succeeded (shape in the README: `changed`, `candidate_probes`,
/// `probes`, `pairs`, `confusion_delta`, `accuracy`, `severity`, `verdict`, tools as
/// `{server, name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    pub id: i64,
    pub environment: String,
    pub status: JobStatus,
    pub progress: Progress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl From<&mtgs_core::Job> for Simulation {
    fn from(job: &mtgs_core::Job) -> Self {
        Simulation {
            id: job.id,
            environment: job.environment.to_string(),
            status: job.status,
            progress: Progress { done: job.progress_done, total: job.progress_total },
            report: (!job.result.is_null()).then(|| job.result.clone()),
            error: job.error.clone(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// Body of `POST /v1/simulations`: candidate tools of one server (omit to route the probes
/// against the environment as it is), probes `[{query, expected?}]`, trials per probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationRequestBody {
    pub environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
}

/// Live conflicts per severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub total: u64,
}

/// Body of `GET /v1/environments/{env}/health`. `score` is 0–100 (formula in the README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub environment: String,
    pub score: u8,
    /// Live tools (active, pending approval, deprecated).
    pub tools: u64,
    pub pending_approval: u64,
    /// Live (open or acknowledged) conflicts.
    pub conflicts: ConflictCounts,
}

impl From<&mtgs_core::HealthReport> for Health {
    fn from(report: &mtgs_core::HealthReport) -> Self {
        let counts = &report.conflicts;
        Health {
            environment: report.environment.to_string(),
            score: report.score,
            tools: report.tools,
            pending_approval: report.pending_approval,
            conflicts: ConflictCounts {
                critical: counts.critical,
                high: counts.high,
                medium: counts.medium,
                low: counts.low,
                total: counts.total(),
            },
        }
    }
}

/// Body of `GET /health`: the process answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    pub status: String,
}

/// Body of `GET /readiness` when the database answers (`503 database_unavailable` otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub status: String,
}

/// An approval request: a tool with a CRITICAL or HIGH conflict waits for a reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: i64,
    pub environment: String,
    pub tool: ToolRef,
    pub definition_hash: String,
    pub status: ApprovalStatus,
    /// `{"conflicts": [{id, severity, stage, kind, tool_a, tool_b}]}` when requested.
    pub reason: Value,
    /// `{"before", "after"}` for a definition that changed after approval; `null` otherwise.
    pub diff: Value,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
}

impl From<&mtgs_core::Approval> for Approval {
    fn from(approval: &mtgs_core::Approval) -> Self {
        Approval {
            id: approval.id,
            environment: approval.environment.to_string(),
            tool: ToolRef::from(&approval.tool),
            definition_hash: approval.definition_hash.clone(),
            status: approval.status,
            reason: approval.reason.clone(),
            diff: approval.diff.clone(),
            requested_by: approval.requested_by.clone(),
            requested_at: approval.requested_at,
            expires_at: approval.expires_at,
            decided_by: approval.decided_by.clone(),
            decided_at: approval.decided_at,
            comment: approval.comment.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalList {
    pub approvals: Vec<Approval>,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: i64,
    pub prefix: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

impl From<&mtgs_core::ApiKey> for ApiKey {
    fn from(key: &mtgs_core::ApiKey) -> Self {
        ApiKey {
            id: key.id,
            prefix: key.prefix.clone(),
            name: key.name.clone(),
            role: key.role,
            created_by: key.created_by.clone(),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
            revoked_by: key.revoked_by.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKey>,
}

/// Response of `POST /v1/api-keys`: the key, shown this once, beside its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: String,
    #[serde(flatten)]
    pub record: ApiKey,
}

/// `GET /v1/me`: who the server takes the caller for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub actor: String,
    pub role: Role,
    pub method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the role allows, by permission name.
    pub permissions: Vec<String>,
}

impl From<&mtgs_core::Principal> for Me {
    fn from(principal: &mtgs_core::Principal) -> Self {
        Me {
            actor: principal.actor.clone(),
            role: principal.role,
            method: principal.method,
            name: principal.name.clone(),
            permissions: mtgs_core::Permission::ALL
                .iter()
                .filter(|permission| principal.allows(**permission))
                .map(|permission| permission.as_str().to_owned())
                .collect(),
        }
    }
}

/// A live MCP server mtgs syncs. `connection` never shows secrets: environment variable
/// and header values are `***`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    pub id: i64,
    pub environment: String,
    pub name: String,
    pub connection: Value,
    pub last_sync: Option<LastSync>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastSync {
    pub at: i64,
    pub status: mtgs_core::SyncStatus,
    pub summary: Value,
    pub error: Option<String>,
}

impl From<&mtgs_core::McpServer> for McpServer {
    fn from(server: &mtgs_core::McpServer) -> Self {
        McpServer {
            id: server.id,
            environment: server.environment.to_string(),
            name: server.name.to_string(),
            connection: server.connection.as_ref().map_or(Value::Null, mtgs_core::Connection::to_public),
            last_sync: server.last_sync.as_ref().map(|sync| LastSync {
                at: sync.at,
                status: sync.status,
                summary: sync.summary.clone(),
                error: sync.error.clone(),
            }),
            created_at: server.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServerList {
    pub servers: Vec<McpServer>,
}
