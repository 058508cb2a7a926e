//! Remote mode: the REST API of a running server, through reqwest.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use mtgs_api::{
    AnalysisRun, ApiError, ApiKey, ApiKeyList, Approval, ApprovalList, CheckResponse, Conflict, ConflictList,
    CreatedApiKey, ErrorBody, ErrorCode, Health, McpServer, McpServerList, Me, RegisterResponse,
    SetConflictStatusRequest, Simulation, SimulationRequestBody, SyncReport, ToolBatchRequest, ToolList,
};
use mtgs_core::{ConflictStatus, Connection, EnvironmentName, Role, ServerName};
use mtgs_service::{ApprovalFilter, ConflictFilter, Progress, ToolFilter};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::Batch;
use crate::failure::{Exit, Failure};
use mtgs_core::Secret;

/// How often `analyze` asks the server how far the run has got.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct Remote {
    /// `http://host:port`, no trailing slash.
    base: String,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(base: &str, token: Option<Secret>) -> Result<Remote, Failure> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mtgs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot set up the HTTP client")
            .map_err(Failure::unavailable)?;
        Ok(Remote { base: base.to_owned(), token, http })
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, Failure> {
        let mut url = Url::parse(&format!("{}{path}", self.base))
            .with_context(|| format!("cannot build a URL from {}{path}", self.base))
            .map_err(Failure::input)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends the request; a status in `ok` is read as `T`, any other as the API's error.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl serde::Serialize>,
        ok: &[StatusCode],
    ) -> Result<T, Failure> {
        let (status, text) = self.send_text(method.clone(), url.clone(), body).await?;
        if ok.contains(&status) {
            return serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer to {method} {url} ({status})"))
                .map_err(Failure::unavailable);
        }
        Err(error_response(status, &text))
    }

    /// Sends the request with the token; the status and the body as text.
    async fn send_text(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl serde::Serialize>,
    ) -> Result<(StatusCode, String), Failure> {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the mtgs server at {}", self.base))
            .map_err(Failure::unavailable)?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("cannot read the answer to {method} {url}"))
            .map_err(Failure::unavailable)?;
        Ok((status, text))
    }

    pub async fn check(&self, batch: Batch) -> Result<CheckResponse, Failure> {
        let url = self.url("/v1/tools/check", &[])?;
        self.send(Method::POST, url, Some(&request_body(&batch)), &[StatusCode::OK]).await
    }

    pub async fn register(&self, batch: Batch) -> Result<RegisterResponse, Failure> {
        let url = self.url("/v1/tools", &[])?;
        self.send(Method::POST, url, Some(&request_body(&batch)), &[StatusCode::CREATED]).await
    }

    pub async fn tools(&self, filter: &ToolFilter) -> Result<ToolList, Failure> {
        let mut query = Vec::new();
        if let Some(environment) = &filter.environment {
            query.push(("environment", environment.to_string()));
        }
        if let Some(server) = &filter.server {
            query.push(("server", server.to_string()));
        }
        if let Some(status) = filter.status {
            query.push(("status", status.to_string()));
        }
        let tools = self.every_page("/v1/tools", &query, |page: ToolList| (page.tools, page.next_offset)).await?;
        Ok(ToolList { tools, next_offset: None })
    }

    /// Every page of a paged list, the largest the server allows at a time.
    async fn every_page<P: serde::de::DeserializeOwned, T>(
        &self,
        path: &str,
        query: &[(&str, String)],
        items: impl Fn(P) -> (Vec<T>, Option<u64>),
    ) -> Result<Vec<T>, Failure> {
        let mut all: Vec<T> = Vec::new();
        let mut offset = 0;
        loop {
            let mut page_query = query.to_vec();
            page_query.push(("limit", "1000".to_owned()));
            page_query.push(("offset", offset.to_string()));
            let url = self.url(path, &page_query)?;
            let (page, next) = items(self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await?);
            all.extend(page);
            match next {
                Some(next) if next > offset => offset = next,
                _ => return Ok(all),
            }
        }
    }

    pub async fn conflicts(
        &self,
        environment: &EnvironmentName,
        filter: &ConflictFilter,
    ) -> Result<ConflictList, Failure> {
        let mut query = Vec::new();
        if let Some(severity) = filter.severity {
            query.push(("severity", severity.to_string()));
        }
        if let Some(stage) = filter.stage {
            query.push(("stage", stage.to_string()));
        }
        if let Some(status) = filter.status {
            query.push(("status", status.to_string()));
        }
        if let Some(tool) = &filter.tool {
            query.push(("tool", tool.to_string()));
        }
        let path = format!("/v1/environments/{environment}/conflicts");
        let conflicts = self.every_page(&path, &query, |page: ConflictList| (page.conflicts, page.next_offset)).await?;
        Ok(ConflictList { conflicts, next_offset: None })
    }

    pub async fn conflict(&self, id: i64) -> Result<Conflict, Failure> {
        let url = self.url(&format!("/v1/conflicts/{id}"), &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn recommendations(&self, id: i64) -> Result<mtgs_api::RecommendationList, Failure> {
        let url = self.url(&format!("/v1/conflicts/{id}/recommendations"), &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn set_conflict_status(&self, id: i64, status: ConflictStatus) -> Result<Conflict, Failure> {
        let url = self.url(&format!("/v1/conflicts/{id}"), &[])?;
        self.send(Method::PATCH, url, Some(&SetConflictStatusRequest { status }), &[StatusCode::OK]).await
    }

    /// Queues the run, then polls it until it has finished, reporting its progress.
    pub async fn analyze(
        &self,
        environment: &EnvironmentName,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<AnalysisRun, Failure> {
        let url = self.url(&format!("/v1/environments/{environment}/analysis-runs"), &[])?;
        let mut run: AnalysisRun = self.send(Method::POST, url, None::<&()>, &[StatusCode::ACCEPTED]).await?;
        let url = self.url(&format!("/v1/analysis-runs/{}", run.id), &[])?;
        while !run.status.is_finished() {
            tokio::time::sleep(POLL_INTERVAL).await;
            run = self.send(Method::GET, url.clone(), None::<&()>, &[StatusCode::OK]).await?;
            progress(Progress {
                done: u64::try_from(run.progress.done).unwrap_or(0),
                total: u64::try_from(run.progress.total).unwrap_or(0),
            });
        }
        Ok(run)
    }

    /// `GET` a route that answers with JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<serde_json::Value, Failure> {
        let url = self.url(path, query)?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    /// `GET` a route that answers with text (an export), or the API's error.
    pub async fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<String, Failure> {
        let url = self.url(path, query)?;
        let (status, text) = self.send_text(Method::GET, url, None::<&()>).await?;
        if status == StatusCode::OK { Ok(text) } else { Err(error_response(status, &text)) }
    }

    /// Queues the simulation, then polls it until it has finished.
    pub async fn simulate(&self, request: &mtgs_service::SimulationRequest) -> Result<Simulation, Failure> {
        let body = SimulationRequestBody {
            environment: request.environment.to_string(),
            server: request.server.as_ref().map(ToString::to_string),
            tools: request.tools.iter().map(mtgs_core::ToolDef::to_json).collect(),
            probes: request.probes.iter().map(|probe| serde_json::to_value(probe).unwrap_or_default()).collect(),
            trials: request.trials,
        };
        let url = self.url("/v1/simulations", &[])?;
        let mut simulation: Simulation = self.send(Method::POST, url, Some(&body), &[StatusCode::ACCEPTED]).await?;
        let url = self.url(&format!("/v1/simulations/{}", simulation.id), &[])?;
        while !simulation.status.is_finished() {
            tokio::time::sleep(POLL_INTERVAL).await;
            simulation = self.send(Method::GET, url.clone(), None::<&()>, &[StatusCode::OK]).await?;
        }
        Ok(simulation)
    }

    pub async fn create_key(&self, name: Option<&str>, role: Role) -> Result<CreatedApiKey, Failure> {
        let url = self.url("/v1/api-keys", &[])?;
        let body = serde_json::json!({"role": role, "name": name});
        self.send(Method::POST, url, Some(&body), &[StatusCode::CREATED]).await
    }

    pub async fn keys(&self) -> Result<ApiKeyList, Failure> {
        let url = self.url("/v1/api-keys", &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn revoke_key(&self, id: i64) -> Result<ApiKey, Failure> {
        let url = self.url(&format!("/v1/api-keys/{id}"), &[])?;
        self.send(Method::DELETE, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<ApprovalList, Failure> {
        let mut query = Vec::new();
        if let Some(status) = filter.status {
            query.push(("status", status.as_str().to_owned()));
        }
        if let Some(environment) = &filter.environment {
            query.push(("environment", environment.to_string()));
        }
        let url = self.url("/v1/approvals", &query)?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn approval(&self, id: i64) -> Result<Approval, Failure> {
        let url = self.url(&format!("/v1/approvals/{id}"), &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn decide(&self, id: i64, approve: bool, comment: Option<&str>) -> Result<Approval, Failure> {
        let action = if approve { "approve" } else { "reject" };
        let url = self.url(&format!("/v1/approvals/{id}/{action}"), &[])?;
        let body = serde_json::json!({"comment": comment});
        self.send(Method::POST, url, Some(&body), &[StatusCode::OK]).await
    }

    pub async fn add_server(
        &self,
        environment: &EnvironmentName,
        name: &ServerName,
        connection: &Connection,
    ) -> Result<McpServer, Failure> {
        let url = self.url("/v1/servers", &[])?;
        let body = serde_json::json!({"environment": environment, "name": name, "connection": connection.to_stored()});
        self.send(Method::POST, url, Some(&body), &[StatusCode::CREATED]).await
    }

    pub async fn servers(&self, environment: Option<&EnvironmentName>) -> Result<McpServerList, Failure> {
        let query: Vec<(&str, String)> =
            environment.map(|name| ("environment", name.to_string())).into_iter().collect();
        let url = self.url("/v1/servers", &query)?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn server(&self, id: i64) -> Result<McpServer, Failure> {
        let url = self.url(&format!("/v1/servers/{id}"), &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn sync(&self, id: i64) -> Result<SyncReport, Failure> {
        let url = self.url(&format!("/v1/servers/{id}/sync"), &[])?;
        self.send(Method::POST, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn me(&self) -> Result<Me, Failure> {
        let url = self.url("/v1/me", &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }

    pub async fn health(&self, environment: &EnvironmentName) -> Result<Health, Failure> {
        let url = self.url(&format!("/v1/environments/{environment}/health"), &[])?;
        self.send(Method::GET, url, None::<&()>, &[StatusCode::OK]).await
    }
}

fn request_body(batch: &Batch) -> ToolBatchRequest {
    ToolBatchRequest {
        environment: batch.environment.to_string(),
        server: batch.server.to_string(),
        tools: batch.tools.iter().map(|tool| tool.def.to_json()).collect(),
    }
}

/// The API's error as a failure; the exit code follows the code's type in the table, or
/// the HTTP status for a code this client does not know or a body that is not the API's.
fn error_response(status: StatusCode, text: &str) -> Failure {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(ErrorBody { error }) => match ErrorCode::from_name(&error.code) {
            Some(code) => Failure::from_api(ApiError { code, message: error.message, field: error.field }),
            None => Failure {
                exit: if status.is_server_error() { Exit::Unavailable } else { Exit::Input },
                error: anyhow!("{} ({})", error.message, error.code),
            },
        },
        Err(_) => {
            let excerpt: String = text.chars().take(200).collect();
            Failure::unavailable(anyhow!("the server answered {status}, not as the mtgs API does: {excerpt}"))
        }
    }
}
