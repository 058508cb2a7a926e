//! `POST /v1/simulations` (queues an impact simulation) and `GET /v1/simulations/{id}`.

use axum::Json;
use axum::http::{StatusCode, header};
use mtgs_api::{ApiError, Simulation};
use mtgs_core::{EnvironmentName, JobKind, ServerName, check_trials, json_type, parse_probes, parse_tools};
use mtgs_service::SimulationRequest;
use serde_json::Value;

use super::id_from_path;
use crate::error::ErrorResponse;
use crate::extract::{Acting, JsonObject, PathParam};

/// Reads `{environment, server?, tools?, probes?, trials?}`; every error names its field.
pub fn parse_request(mut body: JsonObject) -> Result<SimulationRequest, ApiError> {
    let environment = body.take_string("environment")?;
    let environment =
        EnvironmentName::parse(&environment).map_err(|error| ApiError::from(&error.within("environment")))?;
    let server = match body.take_optional("server") {
        None => None,
        Some(Value::String(raw)) => {
            Some(ServerName::parse(&raw).map_err(|error| ApiError::from(&error.within("server")))?)
        }
        Some(other) => {
            return Err(ApiError::invalid_field("server", format!("expected a string, found {}", json_type(&other))));
        }
    };
    let tools = match body.take_optional("tools") {
        None => Vec::new(),
        Some(Value::Array(items)) => parse_tools(&items, "tools")
            .map_err(|error| ApiError::from(&error))?
            .into_iter()
            .map(|tool| tool.def)
            .collect(),
        Some(other) => {
            return Err(ApiError::invalid_field(
                "tools",
                format!("expected an array of MCP Tool objects, found {}", json_type(&other)),
            ));
        }
    };
    if !tools.is_empty() && server.is_none() {
        return Err(ApiError::invalid_field("server", "is required when tools are given"));
    }
    let probes = match body.take_optional("probes") {
        None => Vec::new(),
        Some(value) => parse_probes(&value, "probes").map_err(|error| ApiError::from(&error))?,
    };
    let trials = match body.take_optional("trials") {
        None => None,
        Some(value) => {
            let trials = value.as_u64().and_then(|trials| u32::try_from(trials).ok()).ok_or_else(|| {
                ApiError::invalid_field("trials", format!("expected a positive integer, found {value}"))
            })?;
            Some(check_trials(trials, "trials").map_err(|error| ApiError::from(&error))?)
        }
    };
    body.finish()?;
    Ok(SimulationRequest { environment, server, tools, probes, trials })
}

/// 202 with the queued simulation and its `Location`; the job runner does the work.
pub async fn start(
    Acting(service): Acting,
    body: JsonObject,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], Json<Simulation>), ErrorResponse> {
    let request = parse_request(body)?;
    let job = service.start_simulation(&request).await?;
    let location = format!("/v1/simulations/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(Simulation::from(&job))))
}

pub async fn show(Acting(service): Acting, PathParam(id): PathParam) -> Result<Json<Simulation>, ErrorResponse> {
    let id = id_from_path(&id, "a simulation")?;
    let job = service.job_of_kind(id, JobKind::Simulation).await?;
    Ok(Json(Simulation::from(&job)))
}
