//! The LLM routers against a local stub that speaks the Anthropic Messages API and the
//! OpenAI chat completions API exactly as far as routing uses them (tool definitions in,
//! a tool call out), recording every request: request shape and credentials per flavour,
//! a model's text answer, a tool it was not offered, malformed replies, 429 with
//! `Retry-After`, timeouts and the circuit breaker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router as AxumRouter;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mtgs_core::{ServerName, ToolDef};
use mtgs_detect::PreparedTool;
use mtgs_detect::routing::{Contender, RouteError, Router, RoutingQuery, route};
use mtgs_embed::breaker::{BreakerSettings, BreakerState, ManualClock};
use mtgs_embed::remote::Secret;
use mtgs_embed::router::{ANTHROPIC_VERSION, LlmRouter, RemoteRouterSettings, RouterFlavor};
use serde_json::{Value, json};
use support::lock;

mod support;

const KEY: &str = "sk-router-0123456789";

#[derive(Debug, Clone)]
enum Reply {
    /// A call of this tool, in the API's own format.
    Call(&'static str),
    /// A text answer, no tool call.
    Text,
    Raw(&'static str),
    Status {
        status: StatusCode,
        retry_after: Option<&'static str>,
    },
    Slow(Duration),
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Value,
}

#[derive(Debug, Default)]
struct StubState {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

struct Stub {
    url: String,
    state: Arc<StubState>,
    _served: support::Served,
}

impl Stub {
    fn start(script: impl IntoIterator<Item = Reply>) -> Self {
        let state = Arc::new(StubState { script: Mutex::new(script.into_iter().collect()), ..StubState::default() });
        let served = support::serve(AxumRouter::new().fallback(answer).with_state(state.clone()));
        Self { url: served.url.clone(), state, _served: served }
    }

    fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}

async fn answer(State(state): State<Arc<StubState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let anthropic = uri.path().ends_with("/v1/messages");
    lock(&state.received).push(Received {
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = lock(&state.script).pop_front().unwrap_or(Reply::Text);
    let reply = match reply {
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Reply::Text
        }
        other => other,
    };
    match reply {
        Reply::Call(name) if anthropic => axum::Json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": "On it."},
                        {"type": "tool_use", "id": "toolu_01", "name": name, "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}
        }))
        .into_response(),
        Reply::Call(name) => axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}]}}]
        }))
        .into_response(),
        Reply::Text if anthropic => axum::Json(json!({
            "id": "msg_02", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": "None of these tools fits."}], "stop_reason": "end_turn"
        }))
        .into_response(),
        Reply::Text => axum::Json(json!({"choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "None of these tools fits."}}]}))
        .into_response(),
        Reply::Raw(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Reply::Status { status, retry_after } => {
            let mut response =
                (status, axum::Json(json!({"error": {"type": "rate_limit_error", "message": "slow down"}})))
                    .into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static(seconds));
            }
            response
        }
        Reply::Slow(_) => unreachable!("answered above"),
    }
}

fn tools() -> Vec<PreparedTool> {
    let def = |value: Value| -> ToolDef { ToolDef::parse(&value).expect("valid").def };
    vec![
        PreparedTool::new(
            ServerName::parse("jira").expect("server"),
            def(json!({"name": "create_task", "description": "Create a Jira task.",
                       "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}}})),
        ),
        PreparedTool::new(
            ServerName::parse("salesforce").expect("server"),
            def(json!({"name": "create_sf_task", "description": "Creates a task.", "inputSchema": {"type": "object"}})),
        ),
    ]
}

fn contenders(tools: &[PreparedTool]) -> Vec<Contender<'_>> {
    tools.iter().map(|tool| Contender { tool, score: 0.5 }).collect()
}

fn llm_router(
    stub: &Stub,
    flavor: RouterFlavor,
    edit: impl FnOnce(&mut RemoteRouterSettings),
) -> (LlmRouter, Arc<ManualClock>) {
    let base = match flavor {
        RouterFlavor::Anthropic => stub.url.clone(),
        _ => format!("{}/v1", stub.url),
    };
    let mut settings = RemoteRouterSettings::new(flavor, base, "test-model");
    settings.api_key = Some(Secret::new(KEY.to_owned()));
    settings.timeout = Duration::from_secs(5);
    edit(&mut settings);
    let clock = Arc::new(ManualClock::new());
    (LlmRouter::with_clock(settings, clock.clone()).expect("valid settings"), clock)
}

fn query() -> RoutingQuery {
    RoutingQuery::new("Create a Salesforce task to call Acme back", None)
}

#[test]
fn anthropic_gets_the_tools_as_tool_definitions_and_its_tool_use_is_the_pick() {
    let stub = Stub::start([Reply::Call("salesforce__create_sf_task")]);
    let (router, _) = llm_router(&stub, RouterFlavor::Anthropic, |_| {});
    let tools = tools();
    assert_eq!(router.choose(&query(), &contenders(&tools), 0), Ok(Some(1)));

    let received = stub.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.headers.get("x-api-key").and_then(|v| v.to_str().ok()), Some(KEY));
    assert_eq!(request.headers.get("anthropic-version").and_then(|v| v.to_str().ok()), Some(ANTHROPIC_VERSION));
    assert!(request.headers.get("authorization").is_none());
    let body = &request.body;
    assert_eq!(body["model"], "test-model");
    assert!(body["max_tokens"].as_u64().is_some_and(|tokens| tokens > 0));
    assert_eq!(body["messages"], json!([{"role": "user", "content": query().text}]));
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(body["tools"][0]["name"], "jira__create_task");
    assert_eq!(body["tools"][0]["description"], "Create a Jira task.");
    assert_eq!(body["tools"][0]["input_schema"]["properties"]["title"]["type"], "string");
    assert_eq!(body["tools"][1]["name"], "salesforce__create_sf_task");
    assert!(router.id().starts_with("anthropic:test-model@127.0.0.1:"));
}

#[test]
fn openai_compatible_and_azure_get_function_tools_and_their_tool_call_is_the_pick() {
    let stub = Stub::start([Reply::Call("jira__create_task"), Reply::Call("salesforce__create_sf_task")]);
    let tools = tools();
    let (openai, _) = llm_router(&stub, RouterFlavor::OpenAi, |_| {});
    assert_eq!(openai.choose(&query(), &contenders(&tools), 0), Ok(Some(0)));
    let (azure, _) = llm_router(&stub, RouterFlavor::Azure { api_version: "2024-10-21".into() }, |settings| {
        settings.base_url = stub.url.clone();
    });
    assert_eq!(azure.choose(&query(), &contenders(&tools), 0), Ok(Some(1)));

    let received = stub.received();
    let (openai_request, azure_request) = (&received[0], &received[1]);
    assert_eq!(openai_request.path, "/v1/chat/completions");
    assert_eq!(
        openai_request.headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = &openai_request.body;
    assert_eq!(body["messages"][1], json!({"role": "user", "content": query().text}));
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "jira__create_task");
    assert_eq!(body["tools"][1]["function"]["parameters"], json!({"type": "object"}));

    assert_eq!(azure_request.path, "/openai/deployments/test-model/chat/completions");
    assert_eq!(azure_request.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(azure_request.headers.get("api-key").and_then(|v| v.to_str().ok()), Some(KEY));
    assert!(azure_request.headers.get("authorization").is_none());
}

#[test]
fn a_text_answer_picks_nothing_and_a_tool_never_offered_or_a_malformed_reply_is_a_bad_response() {
    let stub = Stub::start([
        Reply::Text,
        Reply::Call("github__create_issue"),
        Reply::Raw("{\"choices\": \"nope\"}"),
        Reply::Raw("not json"),
    ]);
    let tools = tools();
    let (router, _) = llm_router(&stub, RouterFlavor::OpenAi, |_| {});
    assert_eq!(router.choose(&query(), &contenders(&tools), 0), Ok(None));
    let not_offered = router.choose(&query(), &contenders(&tools), 0);
    assert!(
        matches!(&not_offered, Err(RouteError::BadResponse(message)) if message.contains("github__create_issue")),
        "{not_offered:?}"
    );
    for _ in 0..2 {
        let malformed = router.choose(&query(), &contenders(&tools), 0);
        assert!(matches!(malformed, Err(RouteError::BadResponse(_))), "{malformed:?}");
    }
    // Malformed replies are not retried.
    assert_eq!(stub.received().len(), 4);
}

#[test]
fn a_429_is_retried_after_the_time_the_provider_asks_for() {
    let too_many = Reply::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: Some("2") };
    let stub = Stub::start([too_many.clone(), too_many, Reply::Call("jira__create_task")]);
    let tools = tools();
    let (router, clock) = llm_router(&stub, RouterFlavor::Anthropic, |_| {});
    assert_eq!(router.choose(&query(), &contenders(&tools), 0), Ok(Some(0)));
    assert_eq!(stub.received().len(), 3);
    assert_eq!(clock.slept(), vec![Duration::from_secs(2), Duration::from_secs(2)]);

    // Rate limited past the retries: unavailable, saying why, never echoing the key.
    let stub = Stub::start(std::iter::repeat_n(
        Reply::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: Some("1") },
        4,
    ));
    let (router, _) = llm_router(&stub, RouterFlavor::Anthropic, |_| {});
    let error = router.choose(&query(), &contenders(&tools), 0).expect_err("gives up");
    let message = error.to_string();
    assert!(message.contains("429") && message.contains("gave up after 4 attempts"), "{message}");
    assert!(!message.contains(KEY));
}

#[test]
fn a_router_that_does_not_answer_in_time_is_unavailable_and_the_breaker_then_stops_calling_it() {
    let stub = Stub::start([Reply::Slow(Duration::from_secs(3)), Reply::Slow(Duration::from_secs(3))]);
    let tools = tools();
    let (router, _) = llm_router(&stub, RouterFlavor::OpenAi, |settings| {
        settings.timeout = Duration::from_millis(300);
        settings.max_retries = 0;
        settings.breaker = BreakerSettings { failure_threshold: 2, open_for: Duration::from_secs(60) };
    });
    for _ in 0..2 {
        let error = router.choose(&query(), &contenders(&tools), 0).expect_err("times out");
        assert!(error.to_string().contains("did not answer in time (router.timeout)"), "{error}");
    }
    assert!(matches!(router.breaker_state(), BreakerState::Open { .. }), "{:?}", router.breaker_state());
    let refused = router.choose(&query(), &contenders(&tools), 0).expect_err("the circuit is open");
    assert!(matches!(refused, RouteError::Unavailable(_)), "{refused:?}");
    assert_eq!(stub.received().len(), 2, "an open circuit sends nothing");
}

#[test]
fn trials_are_separate_calls_and_the_majority_wins() {
    let stub = Stub::start([
        Reply::Call("salesforce__create_sf_task"),
        Reply::Call("jira__create_task"),
        Reply::Call("salesforce__create_sf_task"),
    ]);
    let tools = tools();
    let (router, _) = llm_router(&stub, RouterFlavor::Anthropic, |_| {});
    let routed = route(&router, &query(), &contenders(&tools), 3).expect("routed");
    assert_eq!(routed.tool, Some(tools[1].key.clone()));
    assert_eq!((routed.votes, routed.trials), (2, 3));
    assert_eq!(stub.received().len(), 3);
}

#[test]
fn settings_errors_name_the_field() {
    let check = |flavor: RouterFlavor, base: &str, model: &str| {
        LlmRouter::new(RemoteRouterSettings::new(flavor, base, model)).err().map(|error| error.field)
    };
    assert_eq!(check(RouterFlavor::OpenAi, "https://api.openai.com/v1", "gpt-4.1-mini"), None);
    assert_eq!(check(RouterFlavor::OpenAi, "api.openai.com", "m").as_deref(), Some("router.base_url"));
    assert_eq!(check(RouterFlavor::Anthropic, "https://api.anthropic.com", " ").as_deref(), Some("router.model"));
    assert_eq!(
        check(RouterFlavor::Azure { api_version: " ".into() }, "https://x.openai.azure.com", "gpt").as_deref(),
        Some("router.api_version")
    );
}
