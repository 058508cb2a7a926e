//! `spawn_app()` and the fixtures the tests share (the seed's Jira and Salesforce tools).

use std::time::Duration;

use mtgs_core::{Principal, Role};
use mtgs_server::{Application, AuthSettings, ServerSettings};
use mtgs_service::ServiceSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A running server on 127.0.0.1 with its own database; both go away with the value.
pub struct TestApp {
    pub address: String,
    /// Sends an admin's API key with every request.
    pub client: reqwest::Client,
    /// The service under the server, acting as the local operator (to make keys).
    pub service: mtgs_service::Service,
    _data_dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AuthSettings { jwt: None, rate_limit: None }, mtgs_service::DEFAULT_APPROVAL_TTL, None).await
}

/// A server with these authentication settings and approval TTL, on `clock` (ms since
/// the epoch) when given.
pub async fn spawn_app_with(
    auth: AuthSettings,
    approval_ttl: Duration,
    clock: Option<std::sync::Arc<dyn Fn() -> i64 + Send + Sync>>,
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("a temp dir");
    let settings = ServerSettings {
        bind: "127.0.0.1:0".to_owned(),
        service: ServiceSettings {
            database_url: format!("sqlite://{}", data_dir.path().join("mtgs.db").display()),
            job_poll_interval: Duration::from_millis(20),
            job_lease: Duration::from_secs(30),
            semantic: None,
            behavioural: Some(mtgs_service::BehaviouralSettings::local()),
            approval_ttl,
            tool_source: Some(std::sync::Arc::new(mtgs_mcp::McpClient::new())),
            sync_interval: None,
        },
        auth,
    };
    let app = match clock {
        None => Application::build(&settings).await.expect("the application builds"),
        Some(clock) => {
            let store = mtgs_service::Store::open(&settings.service.database_url).await.expect("the database opens");
            let service = mtgs_service::Service::with_clock(store, settings.service.clone(), clock);
            Application::with_service(service, &settings.bind, settings.auth.clone())
                .await
                .expect("the application builds")
        }
    };
    let address = format!("http://127.0.0.1:{}", app.port());
    let service = app.service().acting_as(Principal::local("tests"));
    let (_, admin_key) = service.create_api_key(Some("tests"), Role::Admin).await.expect("an admin key");
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { address, client: client_with(Some(admin_key.expose())), service, _data_dir: data_dir }
}

/// A client that sends `token` as its bearer token (none: no Authorization header).
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder().default_headers(headers).build().expect("a client")
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.address)).send().await.expect("request sent");
        read(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response =
            self.client.post(format!("{}{path}", self.address)).json(body).send().await.expect("request sent");
        read(response).await
    }

    /// Posts `body` as it is, so tests can send what no JSON serialiser would.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response =
            self.client.patch(format!("{}{path}", self.address)).json(body).send().await.expect("request sent");
        read(response).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.delete(format!("{}{path}", self.address)).send().await.expect("request sent");
        read(response).await
    }

    /// Registers `tools` of `server` in `environment`, asserting it worked.
    pub async fn register(&self, environment: &str, server: &str, tools: Value) -> Value {
        let (status, body) =
            self.post("/v1/tools", &json!({"environment": environment, "server": server, "tools": tools})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn check(&self, environment: &str, server: &str, tools: Value) -> (StatusCode, Value) {
        self.post("/v1/tools/check", &json!({"environment": environment, "server": server, "tools": tools})).await
    }
}

/// Status and JSON body; every response of the API is JSON, errors included.
async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{status}: body is not JSON ({error}): {text}"));
    (status, body)
}

/// Asserts the error shape and returns the body's `error` object.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: u16, code: &str) -> Value {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    let error = body.get("error").unwrap_or_else(|| panic!("no `error` object in {body}")).clone();
    assert_eq!(error["code"], code, "{body}");
    assert!(error["type"].is_string() && error["message"].is_string(), "{body}");
    error
}

/// The seed's Jira tool, registered first.
pub fn jira_create_task() -> Value {
    json!({
        "name": "create_task",
        "description": "Create a new Jira issue of type Task in the given project.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "project": {"type": "string", "description": "Project key, e.g. OPS"},
                "summary": {"type": "string", "description": "One-line summary of the task"}
            },
            "required": ["project", "summary"]
        }
    })
}

/// The seed's Salesforce tool: same name, another server.
pub fn salesforce_create_task() -> Value {
    json!({
        "name": "create_task",
        "description": "Create a Salesforce task activity linked to a contact or opportunity record.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "subject": {"type": "string", "description": "Subject line of the task"},
                "what_id": {"type": "string", "description": "Id of the related record"}
            },
            "required": ["subject"]
        }
    })
}

/// A tool that has nothing in common with the seed's tools.
pub fn weather_forecast() -> Value {
    json!({
        "name": "get_weather_forecast",
        "description": "Return the hourly weather forecast for a city over the next three days.",
        "inputSchema": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Lisbon"}},
            "required": ["city"]
        }
    })
}

/// Whether `conflicts` holds the seed's collision: an exact-name, critical, lexical conflict
/// between `salesforce/create_task` and `jira/create_task`.
pub fn has_seed_conflict(conflicts: &Value) -> bool {
    conflicts.as_array().is_some_and(|conflicts| {
        conflicts.iter().any(|conflict| {
            let servers = [&conflict["tool_a"]["server"], &conflict["tool_b"]["server"]];
            conflict["kind"] == "exact_name"
                && conflict["severity"] == "critical"
                && conflict["stage"] == "lexical"
                && conflict["tool_a"]["name"] == "create_task"
                && conflict["tool_b"]["name"] == "create_task"
                && servers.contains(&&json!("jira"))
                && servers.contains(&&json!("salesforce"))
        })
    })
}
