//! Live MCP servers: `POST /v1/servers` `{environment, name, connection}`,
//! `POST /v1/servers/import` `{environment, config}` (a host's `mcp.json`),
//! `GET /v1/servers?environment=`, `GET /v1/servers/{id}`, `POST /v1/servers/{id}/sync`.

use axum::Json;
use axum::http::StatusCode;
use mtgs_api::{ApiError, McpServer, McpServerList, SyncReport};
use mtgs_core::{Connection, EnvironmentName, ServerName, json_type, parse_host_config};

use super::id_from_path;
use crate::error::ErrorResponse;
use crate::extract::{Acting, JsonObject, PathParam, QueryParams};

fn environment(body: &mut JsonObject) -> Result<EnvironmentName, ApiError> {
    let raw = body.take_string("environment")?;
    EnvironmentName::parse(&raw).map_err(|error| ApiError::from(&error.within("environment")))
}

pub async fn add(
    Acting(service): Acting,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<McpServer>), ErrorResponse> {
    let environment = environment(&mut body)?;
    let name = body.take_string("name")?;
    let name = ServerName::parse(&name).map_err(|error| ApiError::from(&error.within("name")))?;
    let connection = Connection::parse(&body.take("connection")?, "connection")?;
    body.finish()?;
    let server = service.add_server(&environment, &name, &connection).await?;
    Ok((StatusCode::CREATED, Json(McpServer::from(&server))))
}

/// Every server of a Claude Desktop / Cursor (`mcpServers`) or VS Code (`servers`) config.
pub async fn import(
    Acting(service): Acting,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<McpServerList>), ErrorResponse> {
    let environment = environment(&mut body)?;
    let config = body.take("config")?;
    if !config.is_object() {
        return Err(
            ApiError::invalid_field("config", format!("expected an object, found {}", json_type(&config))).into()
        );
    }
    body.finish()?;
    let servers = parse_host_config(&config).map_err(|error| error.within("config"))?;
    let mut added = Vec::with_capacity(servers.len());
    for (name, connection) in &servers {
        added.push(McpServer::from(&service.add_server(&environment, name, connection).await?));
    }
    Ok((StatusCode::CREATED, Json(McpServerList { servers: added })))
}

pub async fn list(Acting(service): Acting, mut query: QueryParams) -> Result<Json<McpServerList>, ErrorResponse> {
    let environment = query
        .take("environment")
        .map(|raw| EnvironmentName::parse(&raw).map_err(|error| error.within("environment")))
        .transpose()?;
    query.finish(&["environment"])?;
    let servers = service.mcp_servers(environment.as_ref()).await?;
    Ok(Json(McpServerList { servers: servers.iter().map(McpServer::from).collect() }))
}

pub async fn show(Acting(service): Acting, PathParam(id): PathParam) -> Result<Json<McpServer>, ErrorResponse> {
    let id = id_from_path(&id, "a server")?;
    Ok(Json(McpServer::from(&service.mcp_server(id).await?)))
}

/// Syncs now and answers with what changed; a server that cannot be reached is a 200
/// with `status: failed` and the reason (nothing changed), as the sync is recorded.
pub async fn sync(Acting(service): Acting, PathParam(id): PathParam) -> Result<Json<SyncReport>, ErrorResponse> {
    let id = id_from_path(&id, "a server")?;
    Ok(Json(service.sync_server(id).await?))
}
