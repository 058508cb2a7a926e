//! The error-code table: every error the API returns has one stable machine name, one
//! HTTP status and one type, rendered as
//! `{"error": {"code": "...", "type": "...", "message": "...", "field": "..."}}`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who is to blame, and so whether retrying the same request can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request is wrong; sending it again will fail again.
    InvalidRequest,
    /// The request names something that does not exist.
    NotFound,
    /// The caller did not prove who it is (no token, or one that is not valid).
    Authentication,
    /// The caller is known but its role does not allow this.
    Permission,
    /// The request is valid but the resource's state does not allow it now.
    Conflict,
    /// Too many requests from this principal; retry after `Retry-After` seconds.
    RateLimit,
    /// The server failed; the request may succeed later.
    Internal,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::NotFound => "not_found",
            ErrorType::Authentication => "authentication",
            ErrorType::Permission => "permission",
            ErrorType::Conflict => "conflict",
            ErrorType::RateLimit => "rate_limit",
            ErrorType::Internal => "internal",
        }
    }
}

/// Every error the API can return. The names are stable: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not JSON (serde's message says where).
    InvalidJson,
    /// A field of the body, the path or the query is missing or invalid; `field` names it.
    InvalidField,
    /// The body is larger than [`crate::MAX_BODY_BYTES`].
    PayloadTooLarge,
    EnvironmentNotFound,
    ConflictNotFound,
    JobNotFound,
    /// No route has this path.
    RouteNotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    Internal,
    /// The database does not answer (or is busy); retry later.
    DatabaseUnavailable,
    ApprovalNotFound,
    ApiKeyNotFound,
    /// No live MCP server has this id.
    ServerNotFound,
    /// No `Authorization: Bearer` credential, or one that proves no principal.
    Unauthenticated,
    /// The principal's role does not hold the permission the route needs.
    Forbidden,
    /// The requester of an approval cannot decide it.
    SelfApproval,
    /// The approval was already decided, expired or superseded.
    ApprovalNotPending,
    /// The principal sent more requests than its rate allows.
    RateLimited,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidJson,
        ErrorCode::InvalidField,
        ErrorCode::PayloadTooLarge,
        ErrorCode::EnvironmentNotFound,
        ErrorCode::ConflictNotFound,
        ErrorCode::JobNotFound,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Internal,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::ApprovalNotFound,
        ErrorCode::ApiKeyNotFound,
        ErrorCode::ServerNotFound,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::SelfApproval,
        ErrorCode::ApprovalNotPending,
        ErrorCode::RateLimited,
    ];

    /// The table: machine name, HTTP status, type.
    const fn spec(self) -> (&'static str, u16, ErrorType) {
        use ErrorType::*;
        match self {
            ErrorCode::InvalidJson => ("invalid_json", 400, InvalidRequest),
            ErrorCode::InvalidField => ("invalid_field", 422, InvalidRequest),
            ErrorCode::PayloadTooLarge => ("payload_too_large", 413, InvalidRequest),
            ErrorCode::EnvironmentNotFound => ("environment_not_found", 404, NotFound),
            ErrorCode::ConflictNotFound => ("conflict_not_found", 404, NotFound),
            ErrorCode::JobNotFound => ("job_not_found", 404, NotFound),
            ErrorCode::RouteNotFound => ("route_not_found", 404, NotFound),
            ErrorCode::MethodNotAllowed => ("method_not_allowed", 405, InvalidRequest),
            ErrorCode::Internal => ("internal", 500, Internal),
            ErrorCode::DatabaseUnavailable => ("database_unavailable", 503, Internal),
            ErrorCode::ApprovalNotFound => ("approval_not_found", 404, NotFound),
            ErrorCode::ApiKeyNotFound => ("api_key_not_found", 404, NotFound),
            ErrorCode::ServerNotFound => ("server_not_found", 404, NotFound),
            ErrorCode::Unauthenticated => ("unauthenticated", 401, Authentication),
            ErrorCode::Forbidden => ("forbidden", 403, Permission),
            ErrorCode::SelfApproval => ("self_approval", 403, Permission),
            ErrorCode::ApprovalNotPending => ("approval_not_pending", 409, Conflict),
            ErrorCode::RateLimited => ("rate_limited", 429, RateLimit),
        }
    }

    /// The stable machine name (`environment_not_found`).
    pub const fn name(self) -> &'static str {
        self.spec().0
    }

    pub const fn http_status(self) -> u16 {
        self.spec().1
    }

    pub const fn error_type(self) -> ErrorType {
        self.spec().2
    }

    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|code| code.name() == name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// An [`ErrorCode`] name. Kept as text so a client can read codes newer than itself.
    pub code: String,
    /// An [`ErrorType`] name.
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
    /// Path of the offending input (`tools[3].inputSchema`, `severity`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error as the server decides it and a client reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None }
    }

    /// An `invalid_field` error. `field` is the path (`tools[1].name`); `reason` says why
    /// without repeating it. The message is `field: reason`, as [`mtgs_core::InputError`] prints.
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::from(&mtgs_core::InputError::new(field, reason))
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.name().to_owned(),
                error_type: self.code.error_type().as_str().to_owned(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl From<&mtgs_core::InputError> for ApiError {
    fn from(error: &mtgs_core::InputError) -> Self {
        ApiError {
            code: ErrorCode::InvalidField,
            message: error.to_string(),
            field: (!error.field.is_empty()).then(|| error.field.clone()),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_and_their_status_agrees_with_their_type() {
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|code| code.name()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.name()), Some(*code));
            let status = code.http_status();
            let expected = match code.error_type() {
                ErrorType::InvalidRequest => (400..500).contains(&status) && status != 404,
                ErrorType::NotFound => status == 404,
                ErrorType::Authentication => status == 401,
                ErrorType::Permission => status == 403,
                ErrorType::Conflict => status == 409,
                ErrorType::RateLimit => status == 429,
                ErrorType::Internal => status >= 500,
            };
            assert!(expected, "{code} has status {status} but type {:?}", code.error_type());
        }
    }

    #[test]
    fn an_error_renders_with_its_field() {
        let error = ApiError::invalid_field("tools[1].name", "is required");
        assert_eq!(
            serde_json::to_value(error.body()).ok(),
            Some(serde_json::json!({"error": {
                "code": "invalid_field", "type": "invalid_request",
                "message": "tools[1].name: is required", "field": "tools[1].name"
            }}))
        );
    }
}
