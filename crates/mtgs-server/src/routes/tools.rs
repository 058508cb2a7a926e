//! `POST /v1/tools/check`, `POST /v1/tools`, `GET /v1/tools` and `POST /v1/webhooks/ci-check`.

use axum::Json;
use axum::http::StatusCode;
use mtgs_api::{ApiError, CheckResponse, RegisterResponse, ToolList};
use mtgs_core::{EnvironmentName, ServerName, ToolStatus, Verdict, parse_tools};
use mtgs_service::{ToolBatch, ToolFilter};
use serde_json::Value;

use crate::convert;
use crate::error::ErrorResponse;
use mtgs_core::json_type;

use super::Page;
use crate::extract::{Acting, JsonObject, QueryParams};

/// Reads `{environment, server, tools: [Tool]}`; every error names its field
/// (`environment`, `tools[3].inputSchema`).
fn parse_batch(mut body: JsonObject) -> Result<ToolBatch, ApiError> {
    let environment = body.take_string("environment")?;
    let environment =
        EnvironmentName::parse(&environment).map_err(|error| ApiError::from(&error.within("environment")))?;
    let server = body.take_string("server")?;
    let server = ServerName::parse(&server).map_err(|error| ApiError::from(&error.within("server")))?;
    let tools = match body.take("tools")? {
        Value::Array(items) => parse_tools(&items, "tools").map_err(|error| ApiError::from(&error))?,
        other => {
            return Err(ApiError::invalid_field(
                "tools",
                format!("expected an array of MCP Tool objects, found {}", json_type(&other)),
            ));
        }
    };
    body.finish()?;
    Ok(ToolBatch { environment, server, tools })
}

/// Dry run: what registering the batch would find. Writes nothing.
pub async fn check(Acting(service): Acting, body: JsonObject) -> Result<Json<CheckResponse>, ErrorResponse> {
    let batch = parse_batch(body)?;
    let environment = batch.environment.clone();
    let outcome = service.check(batch).await?;
    Ok(Json(convert::check_response(&environment, &outcome)))
}

/// A check for CI: 200 when nothing blocks, 409 (same body) when a live CRITICAL or HIGH
/// conflict would block, so a pipeline step can fail on the status alone.
pub async fn ci_check(
    Acting(service): Acting,
    body: JsonObject,
) -> Result<(StatusCode, Json<CheckResponse>), ErrorResponse> {
    let Json(response) = check(Acting(service), body).await?;
    let status = match response.verdict {
        Verdict::Pass => StatusCode::OK,
        Verdict::Block => StatusCode::CONFLICT,
    };
    Ok((status, Json(response)))
}

pub async fn register(
    Acting(service): Acting,
    body: JsonObject,
) -> Result<(StatusCode, Json<RegisterResponse>), ErrorResponse> {
    let batch = parse_batch(body)?;
    let environment = batch.environment.clone();
    let outcome = service.register(batch).await?;
    Ok((StatusCode::CREATED, Json(convert::register_response(&environment, &outcome)?)))
}

/// `?environment=&server=&status=&limit=&offset=`, all optional; one page at a time.
pub async fn list(Acting(service): Acting, mut query: QueryParams) -> Result<Json<ToolList>, ErrorResponse> {
    let environment =
        query.take_parsed("environment", |raw| EnvironmentName::parse(raw).map_err(|error| error.reason))?;
    let server = query.take_parsed("server", |raw| ServerName::parse(raw).map_err(|error| error.reason))?;
    let status = query.take_parsed("status", str::parse::<ToolStatus>)?;
    let page = Page::from_query(&mut query, "tools")?;
    query.finish(&["environment", "server", "status", "limit", "offset"])?;
    let filter = ToolFilter { environment, server, status, limit: Some(page.fetch()), offset: page.offset };
    let tools = service.tools(&filter).await?;
    let (shown, next_offset) = page.cut(&tools);
    Ok(Json(ToolList { tools: shown.iter().map(mtgs_api::Tool::from).collect(), next_offset }))
}
