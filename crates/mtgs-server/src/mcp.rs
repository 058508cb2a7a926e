//! mtgs as an MCP server: governance as tools an agent (or a host such as Claude Desktop
//! or Cursor) can call. Each tool runs the REST route's own handler, so arguments are
//! validated, errors name their field, and results are the API's JSON. Served over stdio
//! (`mtgs mcp`) and as Streamable HTTP at `/mcp`, behind the API's authentication: a tool
//! acts for the request's principal, and the service checks its role.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use mtgs_api::ApiError;
use mtgs_core::Principal;
use mtgs_service::Service;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ErrorResponse;
use crate::extract::{Acting, JsonObject, PathParam, QueryParams};
use crate::routes;

/// The tools. `service` acts for the stdio user; over HTTP each call acts for the
/// request's principal instead.
#[derive(Debug, Clone)]
pub struct GovernanceTools {
    service: Service,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct ToolsArgs {
    /// Environment to check against or register into, e.g. `prod` (created on first registration).
    pub environment: String,
    /// Name of the MCP server that publishes the tools, e.g. `salesforce`.
    pub server: String,
    /// MCP `Tool` objects exactly as the server's `tools/list` returns them:
    /// `{name, description, inputSchema, …}`.
    pub tools: Vec<Value>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct ConflictsArgs {
    /// Environment whose conflicts to list, e.g. `prod`.
    pub environment: String,
    /// Only this severity: `critical`, `high`, `medium` or `low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Only this triage status: `open`, `acknowledged`, `resolved` or `suppressed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only conflicts involving this tool, as `SERVER/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Conflicts to skip: the `next_offset` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConflictArgs {
    /// The conflict's id, from `list_conflicts` or a check or registration.
    pub id: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EnvironmentArgs {
    /// Environment, e.g. `prod`.
    pub environment: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct SimulateArgs {
    /// Environment to simulate against, e.g. `prod`.
    pub environment: String,
    /// Server of the candidate tools (required with `tools`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Candidate MCP `Tool` objects to add; omit to route probes against the environment as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Requests to route: `[{"query": "...", "expected": {"server": S, "name": N}}]` (`expected` optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<Value>>,
    /// Routing trials per request (majority vote), 1 to 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
}

/// A tool's result: the API's JSON as structured content, or the API's error as an
/// `isError` result the agent can read and correct.
fn result<T: Serialize>(answer: Result<Json<T>, ErrorResponse>) -> CallToolResult {
    match answer.map(|Json(value)| serde_json::to_value(value)) {
        Ok(Ok(value)) => CallToolResult::structured(value),
        Ok(Err(error)) => CallToolResult::error(vec![ContentBlock::text(format!("internal: {error}"))]),
        Err(ErrorResponse(error)) => failure(&error),
    }
}

fn failure(error: &ApiError) -> CallToolResult {
    let field = error.field.as_deref().map(|field| format!(" (field `{field}`)")).unwrap_or_default();
    CallToolResult::error(vec![ContentBlock::text(format!("{}: {}{field}", error.code, error.message))])
}

fn object<T: Serialize>(args: &T) -> JsonObject {
    match serde_json::to_value(args) {
        Ok(Value::Object(map)) => JsonObject::from(map),
        _ => JsonObject::from(Map::new()),
    }
}

#[tool_router]
impl GovernanceTools {
    /// Governance tools over `service`, which acts for whoever calls over stdio.
    pub fn new(service: Service) -> Self {
        Self { service }
    }

    /// The service acting for this call: the HTTP request's principal when there is one.
    fn acting(&self, context: &RequestContext<RoleServer>) -> Acting {
        let principal = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned();
        Acting(match principal {
            Some(principal) => self.service.acting_as(principal),
            None => self.service.clone(),
        })
    }

    #[tool(
        description = "Check MCP tool definitions against an mtgs environment before they ship, without recording anything. Runs the lexical, schema, semantic and behavioural stages and returns {verdict: pass|block, conflicts: [{tool_a, tool_b, stage, kind, severity, score, evidence, status}], lints}. A verdict of block means an agent would likely confuse a checked tool with a deployed one (a live critical or high conflict)."
    )]
    async fn check_tools(
        &self,
        Parameters(args): Parameters<ToolsArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        result(routes::tools::check(self.acting(&context), object(&args)).await)
    }

    #[tool(
        description = "Register MCP tool definitions of one server in an mtgs environment (created on first use). Each tool is recorded with its conflicts; a tool with a live critical or high conflict is held as pending_approval until a reviewer approves it. Returns {verdict, tools: [{name, status, conflicts, lints, approval}]}."
    )]
    async fn register_tools(
        &self,
        Parameters(args): Parameters<ToolsArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let registered = routes::tools::register(self.acting(&context), object(&args)).await;
        result(registered.map(|(_, body)| body))
    }

    #[tool(
        description = "List the tracked conflicts of an mtgs environment, most severe first, optionally filtered by severity, triage status or tool (SERVER/NAME), a page at a time (limit, offset). Returns {conflicts: [...], next_offset} with ids usable in explain_conflict; next_offset is absent on the last page."
    )]
    async fn list_conflicts(
        &self,
        Parameters(args): Parameters<ConflictsArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let mut query = BTreeMap::new();
        for (name, value) in [("severity", &args.severity), ("status", &args.status), ("tool", &args.tool)] {
            if let Some(value) = value {
                query.insert(name.to_owned(), value.clone());
            }
        }
        for (name, value) in [("limit", args.limit), ("offset", args.offset)] {
            if let Some(value) = value {
                query.insert(name.to_owned(), value.to_string());
            }
        }
        let listed = routes::conflicts::list(
            self.acting(&context),
            PathParam(args.environment.clone()),
            QueryParams::from(query),
        )
        .await;
        result(listed)
    }

    #[tool(
        description = "Explain one conflict by id: which two tools an agent could confuse, which stage found it and on what evidence, how severe it is, and what resolves it. Returns the conflict with an `explanation`, a `suggestion`, and `recommendations`: concrete fixes (rename, description_rewrite, scope_narrowing, merge_or_deprecate) as patched tool definitions, each verified by re-running detection with the fix applied ({severity_before, severity_after, resolves, new_conflicts}), resolving ones first."
    )]
    async fn explain_conflict(
        &self,
        Parameters(args): Parameters<ConflictArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Acting(service) = self.acting(&context);
        match routes::conflicts::show(Acting(service.clone()), PathParam(args.id.to_string())).await {
            Ok(Json(conflict)) => {
                let recommendations = match service.recommendations(args.id).await {
                    Ok(recommendations) => recommendations,
                    Err(error) => return failure(&crate::convert::api_error(&error)),
                };
                let (explanation, suggestion) = explain(&conflict);
                let mut value = serde_json::to_value(&conflict).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.insert("explanation".to_owned(), Value::String(explanation));
                    map.insert("suggestion".to_owned(), Value::String(suggestion));
                    map.insert(
                        "recommendations".to_owned(),
                        serde_json::to_value(recommendations).unwrap_or(Value::Null),
                    );
                }
                CallToolResult::structured(value)
            }
            Err(ErrorResponse(error)) => failure(&error),
        }
    }

    #[tool(
        description = "Health of an mtgs environment: a score from 0 to 100 (100 = no live conflict), live tools, tools pending approval, and live conflicts by severity."
    )]
    async fn registry_health(
        &self,
        Parameters(args): Parameters<EnvironmentArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        result(routes::probes::environment_health(self.acting(&context), PathParam(args.environment)).await)
    }

    #[tool(
        description = "Simulate the impact of adding candidate tools to an mtgs environment: routes the environment's probe requests (and any you supply) before and after, and reports which requests change route, where the candidates' own requests go, per-pair confusion, top-1 accuracy on labelled probes, and a verdict. Runs to completion before answering."
    )]
    async fn simulate_impact(
        &self,
        Parameters(args): Parameters<SimulateArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Acting(service) = self.acting(&context);
        let request = match routes::simulations::parse_request(object(&args)) {
            Ok(request) => request,
            Err(error) => return failure(&error),
        };
        match service.simulate_now(&request, &|_| {}).await {
            Ok(job) => {
                let simulation = mtgs_api::Simulation::from(&job);
                CallToolResult::structured(serde_json::to_value(simulation).unwrap_or(Value::Null))
            }
            Err(error) => failure(&crate::convert::api_error(&error)),
        }
    }
}

#[tool_handler(
    name = "mtgs",
    instructions = "mtgs governs the tools MCP servers expose: check definitions for conflicts with deployed tools before they ship (check_tools), register them (register_tools), inspect conflicts (list_conflicts, explain_conflict), see an environment's health (registry_health), and simulate how routing shifts when tools are added (simulate_impact)."
)]
impl ServerHandler for GovernanceTools {}

/// What a conflict means and what usually resolves it, by kind.
fn explain(conflict: &mtgs_api::Conflict) -> (String, String) {
    use mtgs_core::ConflictKind::*;
    let a = format!("{}/{}", conflict.tool_a.server, conflict.tool_a.name);
    let b = format!("{}/{}", conflict.tool_b.server, conflict.tool_b.name);
    let found = format!("the {} stage found a {} conflict ({})", conflict.stage, conflict.kind, conflict.severity);
    let (what, fix) = match conflict.kind {
        ExactName => (
            format!("{a} and {b} have the same name, so an agent cannot tell them apart by name at all"),
            "rename one tool with its vendor or object (e.g. `create_sf_task`) and say in its description which system it acts on",
        ),
        NormalizedName | ConfusableName => (
            format!("{a} and {b} have names that read the same (case, separators or look-alike characters)"),
            "rename the newer tool so the names differ in words, not in spelling",
        ),
        NearName | TokenOverlap => (
            format!("{a} and {b} have names or descriptions close enough that a request could fit either"),
            "make the names and the first sentence of each description name the system and the object they act on",
        ),
        ParameterType | ParameterRequired | ParameterEnum => (
            format!("{a} and {b} take parameters of the same name whose types, enums or required-ness disagree"),
            "rename the parameter in one tool, or align its type, so an agent's arguments fit only the intended tool",
        ),
        SemanticSimilarity => (
            format!("{a} and {b} describe the same job in different words (their meanings are nearest neighbours)"),
            "state in each description what distinguishes it (system, object, scope), or retire one of them",
        ),
        RoutingConfusion => (
            format!("requests meant for one of {a} and {b} were routed to the other in simulation"),
            "sharpen the descriptions with the words users' requests contain, then simulate again",
        ),
    };
    (format!("{what}; {found}."), fix.to_owned())
}

/// `mtgs mcp`: serves the tools on stdin/stdout until the client closes them.
pub async fn serve_stdio(service: Service) -> anyhow::Result<()> {
    let running = GovernanceTools::new(service).serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// `/mcp`: Streamable HTTP, one handler per session over the server's service; the
/// authentication layer in front gives each request its principal.
pub fn http_service(service: Service) -> StreamableHttpService<GovernanceTools, LocalSessionManager> {
    // Any Host: the server is reached by whatever name the deployment gives it; the
    // bearer token, not the Host header, is what admits a caller.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(GovernanceTools::new(service.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
