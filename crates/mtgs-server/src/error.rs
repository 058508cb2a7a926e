//! An [`ApiError`] as an HTTP response: status from the error-code table, JSON body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mtgs_api::ApiError;
use mtgs_service::ServiceError;

use crate::convert;

/// The error of every handler and extractor, so no axum plain-text rejection leaks.
#[derive(Debug)]
pub struct ErrorResponse(pub ApiError);

impl From<ApiError> for ErrorResponse {
    fn from(error: ApiError) -> Self {
        ErrorResponse(error)
    }
}

impl From<ServiceError> for ErrorResponse {
    fn from(error: ServiceError) -> Self {
        ErrorResponse(convert::api_error(&error))
    }
}

impl From<mtgs_core::InputError> for ErrorResponse {
    fn from(error: mtgs_core::InputError) -> Self {
        ErrorResponse(ApiError::from(&error))
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = %self.0.code, "{}", self.0.message);
        }
        (status, Json(self.0.body())).into_response()
    }
}
