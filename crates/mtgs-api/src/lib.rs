//! Wire types of the mtgs REST API and its error-code table: what goes over HTTP and what
//! `mtgs --format json` prints. No logic beyond converting domain values at the edge.
//!
//! **API boundary:** only these types go on the wire; the server and the CLI convert
//! domain and service values into them, so a change to a domain type cannot change the
//! API by accident.
//!
//! Conventions: names are `snake_case`; times are integer **milliseconds since the Unix
//! epoch** in fields ending in `_at`; enumerations are spelled as in `mtgs_core`
//! (`critical`, `exact_name`, `pending_approval`, …).

mod error;
mod types;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail, ErrorType};
/// The outcome of a sync, as `POST /v1/servers/{id}/sync` returns it.
pub use mtgs_core::SyncReport;
pub use types::{
    AnalysisRun, ApiKey, ApiKeyList, Approval, ApprovalList, CheckResponse, Conflict, ConflictCounts, ConflictList,
    CreatedApiKey, Health, LastSync, Lint, Liveness, McpServer, McpServerList, Me, Progress, Readiness,
    RecommendationList, RegisterResponse, RegisteredTool, SetConflictStatusRequest, Simulation, SimulationRequestBody,
    Tool, ToolBatchRequest, ToolList, ToolRef, Warning,
};

/// Largest request body the server accepts, in bytes (413 `payload_too_large` above it).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
