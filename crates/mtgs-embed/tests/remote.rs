//! The remote embedding provider against a local stub that speaks OpenAI's embeddings wire
//! format and records every request it receives: request shape and credentials per flavour,
//! batching and ordering, normalisation, retries, timeouts, refusals and the circuit breaker.
//!
//! The stub runs on its own tokio runtime in a background thread; test bodies stay
//! synchronous, as `reqwest`'s blocking client must not run inside a runtime. Waits go
//! through a [`ManualClock`] where a test does not need real time to pass.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router as AxumRouter;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mtgs_detect::semantic::{EmbedError, Embedder};
use mtgs_embed::breaker::{BreakerSettings, BreakerState, ManualClock};
use mtgs_embed::remote::{RemoteEmbedder, RemoteEmbedderSettings, RemoteFlavor, Secret};
use serde_json::{Value, json};
use support::lock;

mod support;

const DIMENSIONS: usize = 8;
const MODEL: &str = "text-embedding-3-small";
const KEY: &str = "sk-test-0123456789abcdef";

/// What the stub answers to one request; once its script runs out it answers `Embeddings`.
#[derive(Debug, Clone)]
enum Reply {
    /// The embeddings of the inputs, `data` in reverse order (the index says which is which).
    Embeddings,
    /// Embeddings of the wrong length.
    Dimensions(usize),
    /// `200 OK` with this body.
    Raw(&'static str),
    Status {
        status: StatusCode,
        retry_after: Option<&'static str>,
        body: Value,
    },
    /// Waits this long, then answers `Embeddings`.
    Slow(Duration),
}

fn server_error() -> Reply {
    Reply::Status {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        retry_after: None,
        body: json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "code": null}}),
    }
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    api_key: Option<String>,
    content_type: Option<String>,
    body: Value,
}

impl Received {
    fn inputs(&self) -> Vec<String> {
        self.body["input"]
            .as_array()
            .map(|inputs| inputs.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct StubState {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// An OpenAI-compatible embeddings server on a loopback port.
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
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let received = Received {
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: header("authorization"),
        api_key: header("api-key"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let inputs = received.inputs();
    lock(&state.received).push(received);
    let reply = lock(&state.script).pop_front().unwrap_or(Reply::Embeddings);

    match reply {
        Reply::Embeddings => embeddings(&inputs, DIMENSIONS),
        Reply::Dimensions(dimensions) => embeddings(&inputs, dimensions),
        Reply::Raw(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Reply::Status { status, retry_after, body } => {
            let mut response = (status, axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static(seconds));
            }
            response
        }
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            embeddings(&inputs, DIMENSIONS)
        }
    }
}

/// OpenAI's answer, with `data` reversed so that only `index` gives the order.
fn embeddings(inputs: &[String], dimensions: usize) -> Response {
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": stub_vector(text, dimensions)}))
        .collect();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": MODEL,
        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()},
    }))
    .into_response()
}

/// The stub's vector for `text`: depends on the text, never zero, not unit length.
fn stub_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let seed: usize = text.bytes().map(usize::from).sum();
    (0..dimensions).map(|lane| ((seed + 31 * lane) % 17 + 1) as f32).collect()
}

fn unit(vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.into_iter().map(|x| x / norm).collect()
}

fn assert_close(got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-6, "{got:?} != {expected:?}");
    }
}

/// Settings pointing at `stub` as an OpenAI-style `/v1` server, without a key.
fn settings(stub: &Stub) -> RemoteEmbedderSettings {
    RemoteEmbedderSettings::new(format!("{}/v1", stub.url), MODEL, DIMENSIONS)
}

fn embedder(settings: RemoteEmbedderSettings) -> (RemoteEmbedder, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let embedder = RemoteEmbedder::with_clock(settings, clock.clone()).expect("valid settings");
    (embedder, clock)
}

fn unavailable(outcome: Result<Vec<Vec<f32>>, EmbedError>) -> String {
    match outcome {
        Err(EmbedError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn bad_response(outcome: Result<Vec<Vec<f32>>, EmbedError>) -> String {
    match outcome {
        Err(EmbedError::BadResponse(message)) => message,
        other => panic!("expected BadResponse, got {other:?}"),
    }
}

#[test]
fn sends_openai_requests_with_a_bearer_key_and_the_documented_body() {
    let stub = Stub::start([]);
    let mut settings = settings(&stub);
    settings.api_key = Some(Secret::new(KEY));
    settings.send_dimensions = true;
    let (embedder, _) = embedder(settings);

    embedder.embed(&["create an issue", "open a ticket"]).expect("embeddings");

    let [request] = stub.received().try_into().expect("one request");
    assert_eq!(request.path, "/v1/embeddings");
    assert_eq!(request.query, None);
    assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.api_key, None);
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.body,
        json!({"model": MODEL, "input": ["create an issue", "open a ticket"], "encoding_format": "float", "dimensions": 8})
    );
}

#[test]
fn sends_azure_requests_with_an_api_key_header_and_the_api_version() {
    let stub = Stub::start([]);
    let mut settings = RemoteEmbedderSettings::new(&stub.url, "embeddings-large", DIMENSIONS);
    settings.flavor = RemoteFlavor::Azure { api_version: "2024-10-21".to_owned() };
    settings.api_key = Some(Secret::new(KEY));
    let (embedder, _) = embedder(settings);

    embedder.embed(&["create an issue"]).expect("embeddings");

    let [request] = stub.received().try_into().expect("one request");
    assert_eq!(request.path, "/openai/deployments/embeddings-large/embeddings");
    assert_eq!(request.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(request.api_key.as_deref(), Some(KEY));
    assert_eq!(request.authorization, None);
    // `dimensions` only when asked for: not every model accepts it.
    assert_eq!(
        request.body,
        json!({"model": "embeddings-large", "input": ["create an issue"], "encoding_format": "float"})
    );
}

#[test]
fn sends_no_credentials_when_no_key_is_configured() {
    let stub = Stub::start([]);
    let (embedder, _) = embedder(settings(&stub));

    embedder.embed(&["list files"]).expect("embeddings");

    let [request] = stub.received().try_into().expect("one request");
    assert_eq!((request.authorization, request.api_key), (None, None));
}

#[test]
fn makes_no_request_for_no_texts() {
    let stub = Stub::start([]);
    let (embedder, _) = embedder(settings(&stub));

    assert_eq!(embedder.embed(&[]).expect("nothing to embed"), Vec::<Vec<f32>>::new());
    assert!(stub.received().is_empty());
}

#[test]
fn splits_texts_into_batches_and_keeps_their_order_whatever_the_order_of_data() {
    let stub = Stub::start([]);
    let (embedder, _) = embedder(settings(&stub));
    let texts: Vec<String> = (0..150).map(|number| format!("tool number {number}")).collect();
    let borrowed: Vec<&str> = texts.iter().map(String::as_str).collect();

    let vectors = embedder.embed(&borrowed).expect("embeddings");

    let batches: Vec<Vec<String>> = stub.received().iter().map(Received::inputs).collect();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![64, 64, 22]);
    assert_eq!(batches.concat(), texts);
    assert_eq!(vectors.len(), texts.len());
    for (vector, text) in vectors.iter().zip(&texts) {
        assert_close(vector, &unit(stub_vector(text, DIMENSIONS)));
    }
}

#[test]
fn returns_unit_length_vectors_when_the_provider_does_not_normalise() {
    let stub = Stub::start([]);
    let (embedder, _) = embedder(settings(&stub));

    let vectors = embedder.embed(&["send a message"]).expect("embeddings");

    let raw = stub_vector("send a message", DIMENSIONS);
    assert!((raw.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() > 0.5, "the stub's vectors are not unit");
    let norm = vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    assert_close(&vectors[0], &unit(raw));
}

#[test]
fn retries_server_errors_then_succeeds() {
    let stub = Stub::start([server_error(), server_error(), Reply::Embeddings]);
    let (embedder, clock) = embedder(settings(&stub));

    let vectors = embedder.embed(&["search the web"]).expect("the third attempt succeeds");

    assert_eq!(vectors.len(), 1);
    assert_eq!(stub.received().len(), 3);
    // Back-off: 200 ms then 400 ms, less up to half of each as jitter.
    let slept = clock.slept();
    assert_eq!(slept.len(), 2);
    assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&slept[0]), "{slept:?}");
    assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&slept[1]), "{slept:?}");
    assert_eq!(embedder.breaker_state(), BreakerState::Closed { consecutive_failures: 0 });
}

#[test]
fn gives_up_after_the_configured_retries() {
    let stub = Stub::start(vec![server_error(); 4]);
    let (embedder, _) = embedder(settings(&stub));

    let message = unavailable(embedder.embed(&["search the web"]));

    assert_eq!(stub.received().len(), 4);
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("The server had an error"), "{message}");
    assert!(message.contains("gave up after 4 attempts"), "{message}");
}

#[test]
fn does_not_retry_a_rejected_key_and_never_reveals_it() {
    let stub = Stub::start([Reply::Status {
        status: StatusCode::UNAUTHORIZED,
        retry_after: None,
        // OpenAI masks most of the key; this provider echoes it whole.
        body: json!({"error": {
            "message": format!("Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys."),
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key",
        }}),
    }]);
    let mut settings = settings(&stub);
    settings.api_key = Some(Secret::new(KEY));
    let (embedder, clock) = embedder(settings);

    let outcome = embedder.embed(&["delete a file"]);
    let debug = format!("{outcome:?}");
    let message = unavailable(outcome);

    assert_eq!(stub.received().len(), 1);
    assert!(clock.slept().is_empty());
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("Incorrect API key provided"), "{message}");
    assert!(!message.contains(KEY) && !debug.contains(KEY), "{message}");
}

#[test]
fn honours_retry_after_when_rate_limited() {
    let stub = Stub::start([
        Reply::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some("1"),
            body: json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
        },
        Reply::Embeddings,
    ]);
    let (embedder, clock) = embedder(settings(&stub));

    embedder.embed(&["read a calendar"]).expect("the retry succeeds");

    assert_eq!(stub.received().len(), 2);
    assert_eq!(clock.slept(), vec![Duration::from_secs(1)]);
}

#[test]
fn reports_a_provider_that_does_not_answer_in_time_as_unavailable() {
    let stub = Stub::start([Reply::Slow(Duration::from_secs(2))]);
    let mut settings = settings(&stub);
    settings.timeout = Duration::from_millis(200);
    settings.max_retries = 0;
    let embedder = RemoteEmbedder::new(settings).expect("valid settings");

    let message = unavailable(embedder.embed(&["query a database"]));

    assert!(message.contains("did not answer in time"), "{message}");
    assert_eq!(stub.received().len(), 1);
}

#[test]
fn retries_a_request_that_timed_out() {
    let stub = Stub::start([Reply::Slow(Duration::from_secs(2)), Reply::Embeddings]);
    let mut settings = settings(&stub);
    settings.timeout = Duration::from_millis(200);
    settings.max_retries = 1;
    // The real clock: this test also waits through a real back-off.
    let embedder = RemoteEmbedder::new(settings).expect("valid settings");

    assert_eq!(embedder.embed(&["query a database"]).expect("the retry succeeds").len(), 1);
    assert_eq!(stub.received().len(), 2);
}

#[test]
fn refuses_vectors_of_the_wrong_dimension_without_retrying() {
    let stub = Stub::start([Reply::Dimensions(5)]);
    let (embedder, _) = embedder(settings(&stub));

    let message = bad_response(embedder.embed(&["create an issue"]));

    assert!(message.contains("has 5 dimensions, expected 8"), "{message}");
    assert_eq!(stub.received().len(), 1);
}

#[test]
fn refuses_a_malformed_answer_without_retrying() {
    let stub = Stub::start([Reply::Raw(r#"{"object": "list", "data": "#)]);
    let (embedder, _) = embedder(settings(&stub));

    let message = bad_response(embedder.embed(&["create an issue"]));

    assert!(message.contains("not an embeddings response"), "{message}");
    assert_eq!(stub.received().len(), 1);
}

#[test]
fn refuses_an_answer_with_too_few_embeddings() {
    let stub = Stub::start([Reply::Raw(
        r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1,0,0,0,0,0,0,0]}]}"#,
    )]);
    let (embedder, _) = embedder(settings(&stub));

    let message = bad_response(embedder.embed(&["one", "two"]));

    assert!(message.contains("asked for 2 embeddings, got 1"), "{message}");
}

/// An embedder whose breaker opens after two failed calls, each a single attempt.
fn fragile_embedder(stub: &Stub) -> (RemoteEmbedder, Arc<ManualClock>) {
    let mut settings = settings(stub);
    settings.max_retries = 0;
    settings.breaker = BreakerSettings { failure_threshold: 2, open_for: Duration::from_secs(30) };
    embedder(settings)
}

#[test]
fn opens_the_breaker_after_repeated_failures_and_then_fails_fast_without_calling() {
    let stub = Stub::start([server_error(), server_error()]);
    let (embedder, _) = fragile_embedder(&stub);

    unavailable(embedder.embed(&["first"]));
    assert_eq!(embedder.breaker_state(), BreakerState::Closed { consecutive_failures: 1 });
    unavailable(embedder.embed(&["second"]));
    assert_eq!(embedder.breaker_state(), BreakerState::Open { retry_after: Duration::from_secs(30) });

    let message = unavailable(embedder.embed(&["third"]));
    assert!(message.starts_with("circuit open"), "{message}");
    assert!(message.contains("retry after 30s"), "{message}");
    assert_eq!(stub.received().len(), 2, "no request while the circuit is open");
}

#[test]
fn closes_the_breaker_when_a_trial_after_the_cool_down_succeeds() {
    let stub = Stub::start([server_error(), server_error()]);
    let (embedder, clock) = fragile_embedder(&stub);
    unavailable(embedder.embed(&["first"]));
    unavailable(embedder.embed(&["second"]));

    clock.advance(Duration::from_secs(29));
    unavailable(embedder.embed(&["too early"]));
    assert_eq!(stub.received().len(), 2);

    clock.advance(Duration::from_secs(1));
    assert_eq!(embedder.breaker_state(), BreakerState::HalfOpen);
    embedder.embed(&["trial"]).expect("the trial reaches the recovered provider");
    assert_eq!(stub.received().len(), 3);
    assert_eq!(embedder.breaker_state(), BreakerState::Closed { consecutive_failures: 0 });
}

#[test]
fn a_refused_request_does_not_count_against_the_provider() {
    let stub = Stub::start([Reply::Status {
        status: StatusCode::BAD_REQUEST,
        retry_after: None,
        body: json!({"error": {"message": "'$.input' is invalid.", "type": "invalid_request_error", "code": null}}),
    }]);
    let mut settings = settings(&stub);
    settings.breaker = BreakerSettings { failure_threshold: 1, open_for: Duration::from_secs(30) };
    let (embedder, _) = embedder(settings);

    let message = unavailable(embedder.embed(&[""]));

    assert!(message.contains("'$.input' is invalid."), "{message}");
    assert_eq!(stub.received().len(), 1);
    assert_eq!(embedder.breaker_state(), BreakerState::Closed { consecutive_failures: 0 });
}
