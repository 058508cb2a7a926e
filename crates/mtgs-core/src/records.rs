//! What the registry stores about tools and background jobs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conflict::named_enum;
use crate::names::{EnvironmentName, ServerName};
use crate::tool::ToolDef;

named_enum! {
    /// Lifecycle of a registered tool.
    pub enum ToolStatus {
        Active = "active",
        PendingApproval = "pending_approval",
        Blocked = "blocked",
        Deprecated = "deprecated",
        Removed = "removed",
    }
}

impl ToolStatus {
    /// Whether agents can (or soon will) see the tool, so new tools are checked against
    /// it. Blocked and removed tools are not deployed and do not conflict.
    pub fn is_live(self) -> bool {
        matches!(self, ToolStatus::Active | ToolStatus::PendingApproval | ToolStatus::Deprecated)
    }
}

/// A registered tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRecord {
    pub id: i64,
    pub environment: EnvironmentName,
    pub server: ServerName,
    pub def: ToolDef,
    /// [`ToolDef::canonical_hash`] at registration.
    pub definition_hash: String,
    pub status: ToolStatus,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

named_enum! {
    /// What a background job does.
    pub enum JobKind {
        /// All-pairs analysis of one environment.
        Analysis = "analysis",
        /// Impact simulation of candidate tools against one environment.
        Simulation = "simulation",
    }
}

named_enum! {
    pub enum JobStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// A background job from the queue (an analysis run is one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub environment: EnvironmentName,
    pub status: JobStatus,
    pub progress_done: i64,
    pub progress_total: i64,
    /// Kind-specific request (a simulation's candidates and probes); `Null` for an analysis.
    pub payload: Value,
    /// Kind-specific outcome (for an analysis: counts of conflicts found, opened, resolved).
    pub result: Value,
    pub error: Option<String>,
    pub attempts: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}
