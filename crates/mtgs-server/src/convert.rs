//! Service values to wire types, and service errors to API error codes: the one place
//! each mapping is made. The CLI's local mode calls these too, so its `--format json`
//! output and its exit codes match the REST API's.

use std::collections::HashSet;

use mtgs_api::{ApiError, ErrorCode};
use mtgs_core::{EnvironmentName, InputError, StageId, ToolKey};
use mtgs_service::{BatchOutcome, ConflictView, Resource, ServiceError};

/// The error code, message and field for a service error.
pub fn api_error(error: &ServiceError) -> ApiError {
    let code = match error {
        ServiceError::Input(input) => return ApiError::from(input),
        ServiceError::NotFound { what, .. } => match what {
            Resource::Environment => ErrorCode::EnvironmentNotFound,
            Resource::Conflict => ErrorCode::ConflictNotFound,
            Resource::Job => ErrorCode::JobNotFound,
            Resource::Approval => ErrorCode::ApprovalNotFound,
            Resource::ApiKey => ErrorCode::ApiKeyNotFound,
            Resource::Server => ErrorCode::ServerNotFound,
        },
        ServiceError::Unauthenticated(_) => ErrorCode::Unauthenticated,
        ServiceError::Forbidden { .. } => ErrorCode::Forbidden,
        ServiceError::SelfApproval { .. } => ErrorCode::SelfApproval,
        ServiceError::NotPending { .. } => ErrorCode::ApprovalNotPending,
        // The same request may succeed later; anything else from the store is a bug.
        unavailable if unavailable.is_unavailable() => ErrorCode::DatabaseUnavailable,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, error.to_string())
}

/// What the stages could not do, as wire warnings.
fn warnings(outcome: &BatchOutcome) -> Vec<mtgs_api::Warning> {
    outcome
        .diagnostics
        .iter()
        .map(|diagnostic| mtgs_api::Warning { stage: diagnostic.stage, message: diagnostic.message.clone() })
        .collect()
}

/// A finding of a check or a registration as a wire conflict.
pub fn conflict_view(environment: &EnvironmentName, view: &ConflictView) -> mtgs_api::Conflict {
    mtgs_api::Conflict::from_finding(environment, view.id, view.status, &view.finding)
}

/// The body of a check: every conflict of the batch once (a conflict between two tools of
/// the batch is reported under both), and every lint tagged with its tool.
pub fn check_response(environment: &EnvironmentName, outcome: &BatchOutcome) -> mtgs_api::CheckResponse {
    let mut seen: HashSet<(&ToolKey, &ToolKey, StageId)> = HashSet::new();
    let mut conflicts = Vec::new();
    let mut lints = Vec::new();
    for tool in &outcome.tools {
        for view in &tool.conflicts {
            let (first, second) = view.finding.pair_key();
            if seen.insert((first, second, view.finding.stage)) {
                conflicts.push(conflict_view(environment, view));
            }
        }
        lints.extend(tool.lints.iter().map(|lint| mtgs_api::Lint::new(&tool.name, lint)));
    }
    mtgs_api::CheckResponse { verdict: outcome.verdict, conflicts, lints, warnings: warnings(outcome) }
}

/// The body of a registration. Every tool of a registration has a status; one without is
/// a broken service contract, reported as an internal error rather than guessed.
pub fn register_response(
    environment: &EnvironmentName,
    outcome: &BatchOutcome,
) -> Result<mtgs_api::RegisterResponse, ApiError> {
    let tools = outcome
        .tools
        .iter()
        .map(|tool| {
            let status = tool.status.ok_or_else(|| {
                ApiError::new(ErrorCode::Internal, format!("the registration of '{}' returned no status", tool.name))
            })?;
            Ok(mtgs_api::RegisteredTool {
                name: tool.name.to_string(),
                status,
                conflicts: tool.conflicts.iter().map(|view| conflict_view(environment, view)).collect(),
                lints: tool.lints.iter().map(|lint| mtgs_api::Lint::new(&tool.name, lint)).collect(),
                approval: tool.approval,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(mtgs_api::RegisterResponse { verdict: outcome.verdict, tools, warnings: warnings(outcome) })
}

/// Parses `SERVER/NAME` (`jira/create_task`, `@acme/jira/create_task`): split at the first
/// `/`, or the second when the server is scoped (`@scope/server`). Errors name no field;
/// callers re-root them.
pub fn parse_tool_key(raw: &str) -> Result<ToolKey, InputError> {
    let search_from = if raw.starts_with('@') { raw.find('/').map_or(raw.len(), |slash| slash + 1) } else { 0 };
    let Some(slash) = raw[search_from..].find('/').map(|at| at + search_from) else {
        return Err(InputError::new("", format!("expected SERVER/NAME, found '{raw}'")));
    };
    let server = mtgs_core::ServerName::parse(&raw[..slash]).map_err(|error| error.within("server"))?;
    let name = mtgs_core::ToolName::parse(&raw[slash + 1..]).map_err(|error| error.within("name"))?;
    Ok(ToolKey { server, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_map_to_their_codes() {
        let code = |error: ServiceError| {
            let api = api_error(&error);
            (api.code, api.field)
        };
        assert_eq!(
            code(InputError::new("tools[1].name", "is required").into()),
            (ErrorCode::InvalidField, Some("tools[1].name".to_owned()))
        );
        assert_eq!(code(InputError::new("", "empty").into()), (ErrorCode::InvalidField, None));
        for (what, expected) in [
            (Resource::Environment, ErrorCode::EnvironmentNotFound),
            (Resource::Conflict, ErrorCode::ConflictNotFound),
            (Resource::Job, ErrorCode::JobNotFound),
        ] {
            assert_eq!(code(ServiceError::NotFound { what, name: "x".to_owned() }), (expected, None));
        }
        let data_dir =
            mtgs_service::StoreError::DataDir { path: "/x".to_owned(), source: std::io::Error::other("read-only") };
        assert_eq!(code(data_dir.into()), (ErrorCode::DatabaseUnavailable, None));
        let corrupt = mtgs_service::StoreError::Corrupt { table: "tools", reason: "bad status".to_owned() };
        assert_eq!(code(corrupt.into()), (ErrorCode::Internal, None));
        assert_eq!(code(ServiceError::Internal("oops".to_owned())), (ErrorCode::Internal, None));
    }

    #[test]
    fn tool_keys_split_after_the_server() {
        let key = |raw: &str| parse_tool_key(raw).map(|key| (key.server.to_string(), key.name.to_string()));
        assert_eq!(key("jira/create_task"), Ok(("jira".into(), "create_task".into())));
        assert_eq!(key("@acme/jira/create_task"), Ok(("@acme/jira".into(), "create_task".into())));
        assert_eq!(key("github/user/update"), Ok(("github".into(), "user/update".into())));
        assert!(key("create_task").is_err());
        assert!(key("jira/").is_err());
    }
}
