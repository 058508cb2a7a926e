//! The router: every route of the API, its layers and its fallbacks. One module per
//! resource; handlers parse input into domain values, call the service, convert back.

pub(crate) mod analysis;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod conflicts;
pub(crate) mod keys;
pub(crate) mod probes;
pub(crate) mod servers;
pub(crate) mod simulations;
pub(crate) mod tools;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use mtgs_api::{ApiError, ErrorCode, MAX_BODY_BYTES};
use mtgs_core::{EnvironmentName, InputError};
use mtgs_service::Service;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use std::sync::Arc;

use crate::auth::{Auth, AuthSettings};
use crate::error::ErrorResponse;
use crate::extract::QueryParams;

/// The header that identifies a request in the logs and in its response.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API over `service`: `/v1` behind authentication, rate limits and the
/// route's permission; `/health` and `/readiness` open.
pub fn router(service: Service, auth: &AuthSettings) -> anyhow::Result<Router> {
    let authenticator = Arc::new(Auth::new(service.clone(), auth)?);
    let v1 = Router::new()
        .route("/tools/check", post(tools::check))
        .route("/tools", post(tools::register).get(tools::list))
        .route("/webhooks/ci-check", post(tools::ci_check))
        .route("/environments/{environment}/conflicts", get(conflicts::list))
        .route("/conflicts/{id}", get(conflicts::show).patch(conflicts::set_status))
        .route("/conflicts/{id}/recommendations", get(conflicts::recommendations))
        .route("/environments/{environment}/analysis-runs", post(analysis::start))
        .route("/analysis-runs/{id}", get(analysis::show))
        .route("/audit-logs", get(audit::list))
        .route("/audit-logs/export", get(audit::export))
        .route("/audit-logs/verify", get(audit::verify))
        .route("/simulations", post(simulations::start))
        .route("/simulations/{id}", get(simulations::show))
        .route("/environments/{environment}/health", get(probes::environment_health))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/reject", post(approvals::reject))
        .route("/api-keys", post(keys::create).get(keys::list))
        .route("/api-keys/{id}", delete(keys::revoke))
        .route("/me", get(keys::me))
        .route("/servers", post(servers::add).get(servers::list))
        .route("/servers/import", post(servers::import))
        .route("/servers/{id}", get(servers::show))
        .route("/servers/{id}/sync", post(servers::sync))
        // Only matched routes: an unknown path is 404 for everyone.
        .route_layer(axum::middleware::from_fn_with_state(authenticator.clone(), crate::auth::authenticate));
    // mtgs as an MCP server (Streamable HTTP), behind the same authentication.
    let mcp = Router::new()
        .nest_service("/mcp", crate::mcp::http_service(service.clone()))
        .layer(axum::middleware::from_fn_with_state(authenticator, crate::auth::authenticate));
    // One line per request at `info`, so `mtgs serve` shows its traffic by default,
    // with the request id the response also carries.
    let api = Router::new().nest("/v1", v1).merge(mcp).fallback(route_not_found).layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                let id = request.headers().get(REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    );
    Ok(Router::new()
        // The probes, outside the request log: orchestrators and load balancers poll
        // them every few seconds, which would bury the traffic worth reading.
        .route("/health", get(probes::liveness))
        .route("/readiness", get(probes::readiness))
        .merge(api)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        // Every response carries `x-request-id`: the caller's, or a fresh UUID.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(service))
}

async fn route_not_found() -> ErrorResponse {
    ApiError::new(ErrorCode::RouteNotFound, "no route has this path; the API lives under /v1").into()
}

async fn method_not_allowed() -> ErrorResponse {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept this method").into()
}

/// A panic is a bug, but the caller still gets a JSON error rather than a dropped connection.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    ErrorResponse(ApiError::new(ErrorCode::Internal, format!("the server panicked: {detail}"))).into_response()
}

/// Items per page unless `?limit=` says otherwise, and at most.
pub const DEFAULT_PAGE: u64 = 100;
pub const MAX_PAGE: u64 = 1_000;

/// `?limit=&offset=` of a paged list (tools, conflicts: a registry's can run to hundreds
/// of thousands).
#[derive(Debug, Clone, Copy)]
struct Page {
    limit: u64,
    offset: u64,
}

impl Page {
    /// Reads `limit` (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]) and `offset` (default
    /// 0); errors name the parameter. `items` names what is listed, for the messages.
    fn from_query(query: &mut QueryParams, items: &str) -> Result<Self, ApiError> {
        let offset = query
            .take_parsed("offset", |raw| {
                raw.parse::<u64>().map_err(|_| format!("expected a whole number of {items} to skip, found {raw:?}"))
            })?
            .unwrap_or(0);
        let limit = query
            .take_parsed("limit", |raw| match raw.parse::<u64>() {
                Ok(limit @ 1..=MAX_PAGE) => Ok(limit),
                _ => Err(format!("expected a page size from 1 to {MAX_PAGE}, found {raw:?}")),
            })?
            .unwrap_or(DEFAULT_PAGE);
        Ok(Self { limit, offset })
    }

    /// Rows to ask the store for: one more than the page tells whether another follows.
    fn fetch(self) -> u64 {
        self.limit + 1
    }

    /// The page of what [`Page::fetch`] returned, and the next page's offset, if any.
    fn cut<T>(self, items: &[T]) -> (&[T], Option<u64>) {
        let more = items.len() as u64 > self.limit;
        let shown = &items[..items.len().min(usize::try_from(self.limit).unwrap_or(usize::MAX))];
        (shown, more.then(|| self.offset + self.limit))
    }
}

/// An environment name from the path, errors naming `environment`.
fn environment_from_path(raw: &str) -> Result<EnvironmentName, InputError> {
    EnvironmentName::parse(raw).map_err(|error| error.within("environment"))
}

/// A numeric id from the path, errors naming `id`.
fn id_from_path(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid_field("id", format!("expected {what} id (a positive integer), found '{raw}'")))
}
