//! A remote embedding provider (opt-in) speaking the OpenAI-compatible embeddings API, which
//! OpenAI, Azure OpenAI, Ollama (`/v1/embeddings`), vLLM and HuggingFace TEI all serve:
//! `POST {base}/embeddings` with `{"model", "input": [..], "encoding_format": "float"}`,
//! answered by `{"data": [{"index", "embedding": [..]}, ..]}`.
//!
//! Texts go in batches, one request each; transient failures (connection errors, timeouts,
//! 408, 429, 5xx) are retried with jittered exponential back-off, honouring `Retry-After`;
//! a [`CircuitBreaker`] stops calling a provider that keeps failing. Every vector is checked
//! (count, dimension, finite, non-zero) and scaled to unit length, since not every provider
//! normalises. The API key never appears in `Debug` output, logs or error messages.
//!
//! The client blocks: call [`Embedder::embed`] from a blocking thread, never from inside an
//! async runtime (`reqwest`'s blocking client panics there).

use std::fmt;

pub use mtgs_core::Secret;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::time::Duration;

use mtgs_detect::semantic::{EmbedError, Embedder};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::breaker::{BreakerSettings, BreakerState, CircuitBreaker, Clock, Rejected, SystemClock};

/// The largest batch the OpenAI API accepts in one request.
pub const MAX_BATCH_SIZE: usize = 2_048;
/// Larger than any embedding model in use (text-embedding-3-large has 3,072).
pub const MAX_DIMENSIONS: usize = 65_536;
/// First back-off wait; it doubles on every retry.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A provider asking for a longer pause gets this one; the caller is waiting.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
/// Characters of a provider's error message kept in ours.
const PROVIDER_MESSAGE_CHARS: usize = 500;

/// How a provider is addressed and authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteFlavor {
    /// OpenAI and every server imitating it (Ollama, vLLM, TEI): `POST {base_url}/embeddings`,
    /// the key as `Authorization: Bearer`.
    OpenAi,
    /// Azure OpenAI: `POST {base_url}/openai/deployments/{model}/embeddings?api-version=..`,
    /// where `base_url` is `https://{resource}.openai.azure.com` and `model` names the
    /// deployment; the key goes in an `api-key` header.
    Azure { api_version: String },
}

/// A remote provider's configuration, checked by [`RemoteEmbedder::new`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteEmbedderSettings {
    /// `http` or `https`, e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`.
    pub base_url: String,
    pub model: String,
    /// `None` sends no credentials (a local Ollama, vLLM or TEI).
    pub api_key: Option<Secret>,
    pub flavor: RemoteFlavor,
    /// The length of every vector: a response of another length is refused.
    pub dimensions: usize,
    /// Ask the provider for `dimensions` (text-embedding-3 models shorten their vectors on
    /// request; other models may refuse the field).
    pub send_dimensions: bool,
    /// Texts per request, at most [`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// For one request, connection to last byte.
    pub timeout: Duration,
    /// Further attempts after a transient failure.
    pub max_retries: u32,
    pub breaker: BreakerSettings,
}

impl RemoteEmbedderSettings {
    /// An OpenAI-style provider without a key, with the defaults: batches of 64, a 30 s
    /// timeout, 3 retries, the breaker's defaults.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, dimensions: usize) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            flavor: RemoteFlavor::OpenAi,
            dimensions,
            send_dimensions: false,
            batch_size: 64,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            breaker: BreakerSettings::default(),
        }
    }
}

impl fmt::Debug for RemoteEmbedderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEmbedderSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("flavor", &self.flavor)
            .field("dimensions", &self.dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("breaker", &self.breaker)
            .finish()
    }
}

/// A setting that cannot work, named as in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    /// e.g. `embedding.base_url`.
    pub field: &'static str,
    pub message: String,
}

impl SettingsError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// An [`Embedder`] backed by an OpenAI-compatible embeddings endpoint.
#[derive(Debug)]
pub struct RemoteEmbedder {
    http: reqwest::blocking::Client,
    endpoint: Url,
    /// `host[:port]`: names the provider in messages.
    host: String,
    model: String,
    model_id: String,
    credentials: Option<(HeaderName, Secret)>,
    dimensions: usize,
    send_dimensions: bool,
    batch_size: usize,
    max_retries: u32,
    breaker: CircuitBreaker,
    clock: Arc<dyn Clock>,
}

impl RemoteEmbedder {
    pub fn new(settings: RemoteEmbedderSettings) -> Result<Self, SettingsError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), reading time and waiting through `clock` (the breaker's
    /// cool-down, back-off and `Retry-After` waits).
    pub fn with_clock(settings: RemoteEmbedderSettings, clock: Arc<dyn Clock>) -> Result<Self, SettingsError> {
        let base = parse_base_url(&settings.base_url)?;
        let model = settings.model.trim().to_owned();
        if model.is_empty() || model.chars().any(char::is_control) {
            return Err(SettingsError::new("embedding.model", "must name a model (or, for Azure, a deployment)"));
        }
        if settings.dimensions == 0 || settings.dimensions > MAX_DIMENSIONS {
            return Err(SettingsError::new(
                "embedding.dimensions",
                format!("must be between 1 and {MAX_DIMENSIONS}, the length of the model's vectors"),
            ));
        }
        if settings.timeout.is_zero() {
            return Err(SettingsError::new("embedding.timeout", "must be longer than zero"));
        }
        if settings.breaker.failure_threshold == 0 {
            return Err(SettingsError::new("embedding.breaker.failure_threshold", "must be at least 1"));
        }
        let credentials = match settings.api_key {
            None => None,
            Some(key) => {
                if key.expose().trim().is_empty() || HeaderValue::from_str(key.expose()).is_err() {
                    // Not the key itself: it must not reach a log through this message.
                    return Err(SettingsError::new(
                        "embedding.api_key",
                        "must be non-empty printable ASCII without line breaks",
                    ));
                }
                let header = match settings.flavor {
                    RemoteFlavor::OpenAi => AUTHORIZATION,
                    RemoteFlavor::Azure { .. } => HeaderName::from_static("api-key"),
                };
                Some((header, key))
            }
        };

        let host = match base.port() {
            Some(port) => format!("{}:{port}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        let (endpoint, id_prefix) = match &settings.flavor {
            RemoteFlavor::OpenAi => (join_path(&base, &["embeddings"])?, "openai-compatible"),
            RemoteFlavor::Azure { api_version } => {
                let api_version = api_version.trim();
                if api_version.is_empty() {
                    return Err(SettingsError::new(
                        "embedding.api_version",
                        "Azure OpenAI needs an api-version, e.g. 2024-10-21",
                    ));
                }
                let mut endpoint = join_path(&base, &["openai", "deployments", &model, "embeddings"])?;
                endpoint.query_pairs_mut().append_pair("api-version", api_version);
                (endpoint, "azure-openai")
            }
        };
        let model_id = format!("{id_prefix}:{model}@{host}/{}", settings.dimensions);

        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("mtgs/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            // A redirect would carry the `api-key` header to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| SettingsError::new("embedding", format!("cannot set up the HTTP client: {error}")))?;

        let breaker = CircuitBreaker::new(format!("embedding provider {host}"), settings.breaker, clock.clone());
        Ok(Self {
            http,
            endpoint,
            host,
            model,
            model_id,
            credentials,
            dimensions: settings.dimensions,
            send_dimensions: settings.send_dimensions,
            batch_size: settings.batch_size.clamp(1, MAX_BATCH_SIZE),
            max_retries: settings.max_retries,
            breaker,
            clock,
        })
    }

    /// Whether calls currently reach the provider; for readiness checks and metrics.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The URL requests go to (no credentials in it).
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// One batch: through the breaker, with retries.
    fn embed_batch(&self, texts: &[&str], offset: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let permit = self.breaker.try_acquire().map_err(|rejected| {
            let why = match rejected {
                Rejected::Open { .. } => "failed repeatedly",
                Rejected::TrialInFlight => "is being tried again",
            };
            EmbedError::Unavailable(format!("{rejected} (the embedding provider {} {why})", self.host))
        })?;
        match self.send_with_retries(texts, offset) {
            Ok(vectors) => {
                permit.succeeded();
                Ok(vectors)
            }
            Err(failure) => {
                if failure.provider_at_fault {
                    permit.failed();
                } else {
                    permit.succeeded();
                }
                Err(failure.error)
            }
        }
    }

    fn send_with_retries(&self, texts: &[&str], offset: usize) -> Result<Vec<Vec<f32>>, Failure> {
        let request = EmbeddingsRequest {
            model: &self.model,
            input: texts,
            encoding_format: "float",
            dimensions: self.send_dimensions.then_some(self.dimensions),
        };
        let mut attempt = 0;
        loop {
            let (reason, retry_after) = match self.send_once(&request, offset) {
                Attempt::Done(vectors) => return Ok(vectors),
                Attempt::Fatal(failure) => return Err(failure),
                Attempt::Transient { reason, retry_after } => (reason, retry_after),
            };
            if attempt >= self.max_retries {
                let attempts = u64::from(self.max_retries) + 1;
                let tries = if attempts == 1 { "1 attempt".to_owned() } else { format!("{attempts} attempts") };
                return Err(Failure {
                    error: EmbedError::Unavailable(format!("{reason} (gave up after {tries})")),
                    provider_at_fault: true,
                });
            }
            let wait = retry_after.map_or_else(|| backoff(attempt), |asked| asked.min(RETRY_AFTER_CAP));
            tracing::warn!(
                provider = %self.host,
                attempt = attempt + 1,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                %reason,
                "embedding request failed; retrying"
            );
            self.clock.sleep(wait);
            attempt += 1;
        }
    }

    fn send_once(&self, request: &EmbeddingsRequest<'_>, offset: usize) -> Attempt {
        let mut builder = self.http.post(self.endpoint.clone()).json(request);
        if let Some((header, key)) = &self.credentials {
            let value = if *header == AUTHORIZATION {
                HeaderValue::from_str(&format!("Bearer {}", key.expose()))
            } else {
                HeaderValue::from_str(key.expose())
            };
            // Checked in `with_clock`; an `Err` here cannot happen, and sending without
            // the header would only earn a 401.
            if let Ok(mut value) = value {
                value.set_sensitive(true);
                builder = builder.header(header.clone(), value);
            }
        }

        let response = match builder.send() {
            Ok(response) => response,
            Err(error) => return Attempt::transient(self.describe_transport_error(&error)),
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
        let body = match response.bytes() {
            Ok(body) => body,
            Err(error) => return Attempt::transient(self.describe_transport_error(&error)),
        };

        if status.is_success() {
            return match parse_embeddings(&body, request.input.len(), self.dimensions, offset) {
                Ok(vectors) => Attempt::Done(vectors),
                Err(problem) => {
                    let hint = if problem.wrong_dimensions && !self.send_dimensions {
                        " (check embedding.dimensions, or set embedding.send_dimensions for a model that can shorten its vectors)"
                    } else if problem.wrong_dimensions {
                        " (check embedding.dimensions)"
                    } else {
                        ""
                    };
                    Attempt::Fatal(Failure {
                        error: EmbedError::BadResponse(format!(
                            "{} ({}): {}{hint}",
                            self.host, self.model, problem.message
                        )),
                        provider_at_fault: true,
                    })
                }
            };
        }

        let message = self.scrub(provider_message(&body));
        let reason = format!("{} answered HTTP {status}: {message}", self.host);
        if is_transient(status) {
            return Attempt::Transient { reason, retry_after };
        }
        Attempt::Fatal(Failure {
            error: EmbedError::Unavailable(reason),
            // A refusal of this request's content shows the provider itself is up; a bad
            // key, a missing model or a redirect fails every request alike.
            provider_at_fault: !matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY
            ),
        })
    }

    fn describe_transport_error(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("{} did not answer in time (embedding.timeout)", self.host);
        }
        // reqwest's own message only says "error sending request"; the cause says why.
        let mut message = format!("cannot reach {}: {error}", self.host);
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        self.scrub(message)
    }

    /// Masks the key wherever a provider (or a transport error) echoes it.
    fn scrub(&self, text: String) -> String {
        match &self.credentials {
            Some((_, key)) if !key.expose().is_empty() && text.contains(key.expose()) => {
                text.replace(key.expose(), "***")
            }
            _ => text,
        }
    }
}

impl Embedder for RemoteEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for (number, batch) in texts.chunks(self.batch_size).enumerate() {
            vectors.extend(self.embed_batch(batch, number * self.batch_size)?);
        }
        Ok(vectors)
    }
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [&'a str],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// The outcome of one request.
enum Attempt {
    Done(Vec<Vec<f32>>),
    /// Worth another try.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fatal(Failure),
}

impl Attempt {
    fn transient(reason: String) -> Self {
        Self::Transient { reason, retry_after: None }
    }
}

struct Failure {
    error: EmbedError,
    /// Whether the failure says the provider is unwell (counts towards opening the breaker).
    provider_at_fault: bool,
}

/// Why a successful response could not be used.
#[derive(Debug)]
struct Problem {
    message: String,
    wrong_dimensions: bool,
}

impl Problem {
    fn new(message: String) -> Self {
        Self { message, wrong_dimensions: false }
    }
}

fn parse_base_url(raw: &str) -> Result<Url, SettingsError> {
    const FIELD: &str = "embedding.base_url";
    let url = Url::parse(raw.trim()).map_err(|error| SettingsError::new(FIELD, format!("not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SettingsError::new(FIELD, format!("must start with http:// or https://, not {}://", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingsError::new(FIELD, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL holds a credential.
        return Err(SettingsError::new(FIELD, "must not hold credentials; put the key in embedding.api_key"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SettingsError::new(FIELD, "must not have a query or fragment"));
    }
    Ok(url)
}

/// `base` with `segments` appended to its path, each percent-encoded.
fn join_path(base: &Url, segments: &[&str]) -> Result<Url, SettingsError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| SettingsError::new("embedding.base_url", "cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Connection trouble, a timeout (408), rate limiting (429) and server errors (5xx) may pass.
fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` in seconds; the HTTP-date form is ignored (the back-off applies instead).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let seconds: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(RETRY_AFTER_CAP.as_secs_f64())))
}

/// The wait before retry number `attempt + 1`: 200 ms doubling up to 5 s, of which a random
/// half is taken off ("equal jitter") so that clients failing together do not retry together.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(2u32.saturating_pow(attempt)).min(BACKOFF_CAP);
    // A fresh `RandomState` is randomly keyed: enough randomness for jitter, no dependency.
    let fraction = (RandomState::new().hash_one(attempt) % 1_001) as f64 / 1_000.0;
    ceiling / 2 + (ceiling / 2).mul_f64(fraction)
}

/// The provider's own words: OpenAI's `{"error": {"message"}}`, TEI's and Ollama's
/// `{"error": "..."}`, else the start of the body.
fn provider_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|value| {
        let error = value.get("error")?;
        let message = match error {
            Value::String(message) => message.clone(),
            Value::Object(fields) => fields.get("message").and_then(Value::as_str)?.to_owned(),
            _ => return None,
        };
        Some(message)
    });
    let message = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if message.is_empty() {
        return "(no message)".to_owned();
    }
    let mut kept: String = message.chars().take(PROVIDER_MESSAGE_CHARS).collect();
    if kept.len() < message.len() {
        kept.push('…');
    }
    kept
}

/// `count` checked unit vectors of `dimensions`, in input order (the provider's `index`
/// decides the order; array order is trusted only when no item carries an index).
fn parse_embeddings(body: &[u8], count: usize, dimensions: usize, offset: usize) -> Result<Vec<Vec<f32>>, Problem> {
    let response: EmbeddingsResponse =
        serde_json::from_slice(body).map_err(|error| Problem::new(format!("not an embeddings response: {error}")))?;
    if response.data.len() != count {
        return Err(Problem::new(format!("asked for {count} embeddings, got {}", response.data.len())));
    }
    let indexed = response.data.iter().filter(|item| item.index.is_some()).count();
    if indexed != 0 && indexed != count {
        return Err(Problem::new("some embeddings carry an index and others do not".to_owned()));
    }

    let mut slots: Vec<Option<Vec<f32>>> = vec![None; count];
    for (position, item) in response.data.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        let slot = slots
            .get_mut(index)
            .ok_or_else(|| Problem::new(format!("embedding index {index} is out of range for {count} inputs")))?;
        if slot.is_some() {
            return Err(Problem::new(format!("embedding index {index} appears twice")));
        }
        *slot = Some(item.embedding);
    }

    let mut vectors = Vec::with_capacity(count);
    for (index, slot) in slots.into_iter().enumerate() {
        let input = offset + index;
        let vector = slot.ok_or_else(|| Problem::new(format!("no embedding for input {input}")))?;
        if vector.len() != dimensions {
            return Err(Problem {
                message: format!("embedding for input {input} has {} dimensions, expected {dimensions}", vector.len()),
                wrong_dimensions: true,
            });
        }
        vectors.push(
            unit_length(vector)
                .ok_or_else(|| Problem::new(format!("embedding for input {input} is zero or not finite")))?,
        );
    }
    Ok(vectors)
}

/// `vector` scaled to length 1; `None` when it is all zeros or holds a NaN or infinity.
fn unit_length(mut vector: Vec<f32>) -> Option<Vec<f32>> {
    if vector.iter().any(|x| !x.is_finite()) {
        return None;
    }
    // In f64: squares of large f32 components overflow f32.
    let norm = vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    for x in &mut vector {
        *x = (f64::from(*x) / norm) as f32;
    }
    Some(vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_200_ms_with_equal_jitter_and_stops_at_5_s() {
        for attempt in 0..12 {
            let ceiling = Duration::from_millis(200 * 2u64.pow(attempt)).min(Duration::from_secs(5));
            let wait = backoff(attempt);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "attempt {attempt}: {wait:?} outside {ceiling:?}");
        }
        assert!(backoff(u32::MAX) <= BACKOFF_CAP);
    }

    #[test]
    fn provider_messages_are_read_from_openai_and_tei_error_bodies() {
        assert_eq!(
            provider_message(br#"{"error":{"message":"no such model","type":"x","code":null}}"#),
            "no such model"
        );
        assert_eq!(
            provider_message(br#"{"error":"Input validation error","error_type":"Validation"}"#),
            "Input validation error"
        );
        assert_eq!(provider_message(b"  Bad Gateway \n"), "Bad Gateway");
        assert_eq!(provider_message(b""), "(no message)");
        assert_eq!(provider_message("é".repeat(600).as_bytes()).chars().count(), PROVIDER_MESSAGE_CHARS + 1);
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let read = |text: &str| parse_retry_after(&HeaderValue::from_str(text).expect("a header value"));
        assert_eq!(read("1"), Some(Duration::from_secs(1)));
        assert_eq!(read("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(read("3600"), Some(RETRY_AFTER_CAP));
        assert_eq!(read("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(read("-1"), None);
    }

    #[test]
    fn vectors_are_scaled_to_unit_length_and_degenerate_ones_refused() {
        assert_eq!(unit_length(vec![3.0, 4.0]), Some(vec![0.6, 0.8]));
        let large = unit_length(vec![3e30, 4e30]).expect("large but finite");
        assert!((large[0] - 0.6).abs() < 1e-6 && (large[1] - 0.8).abs() < 1e-6);
        assert_eq!(unit_length(vec![0.0, 0.0]), None);
        assert_eq!(unit_length(vec![1.0, f32::NAN]), None);
        assert_eq!(unit_length(vec![1.0, f32::INFINITY]), None);
    }

    #[test]
    fn responses_without_indexes_keep_array_order_and_mixed_ones_are_refused() {
        let plain = br#"{"data":[{"embedding":[1,0]},{"embedding":[0,2]}]}"#;
        let vectors = parse_embeddings(plain, 2, 2, 0).expect("array order is used");
        assert_eq!(vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);

        let mixed = br#"{"data":[{"index":1,"embedding":[1,0]},{"embedding":[0,2]}]}"#;
        assert!(parse_embeddings(mixed, 2, 2, 0).is_err());
        let twice = br#"{"data":[{"index":0,"embedding":[1,0]},{"index":0,"embedding":[0,2]}]}"#;
        assert!(parse_embeddings(twice, 2, 2, 0).err().is_some_and(|p| p.message.contains("twice")));
        let nulls = br#"{"data":[{"index":0,"embedding":[1,null]}]}"#;
        assert!(parse_embeddings(nulls, 1, 2, 0).is_err());
    }

    #[test]
    fn settings_errors_name_the_field_and_never_the_key() {
        let check = |settings: RemoteEmbedderSettings| RemoteEmbedder::new(settings).err().map(|error| error.field);
        let base = || RemoteEmbedderSettings::new("https://api.openai.com/v1", "text-embedding-3-small", 1536);
        assert_eq!(check(base()), None);
        assert_eq!(check(RemoteEmbedderSettings { base_url: "ftp://x".into(), ..base() }), Some("embedding.base_url"));
        assert_eq!(
            check(RemoteEmbedderSettings { base_url: "api.openai.com".into(), ..base() }),
            Some("embedding.base_url")
        );
        assert_eq!(
            check(RemoteEmbedderSettings { base_url: "https://u:p@api.openai.com/v1".into(), ..base() }),
            Some("embedding.base_url")
        );
        assert_eq!(check(RemoteEmbedderSettings { model: " ".into(), ..base() }), Some("embedding.model"));
        assert_eq!(check(RemoteEmbedderSettings { dimensions: 0, ..base() }), Some("embedding.dimensions"));
        assert_eq!(check(RemoteEmbedderSettings { timeout: Duration::ZERO, ..base() }), Some("embedding.timeout"));
        assert_eq!(
            check(RemoteEmbedderSettings { flavor: RemoteFlavor::Azure { api_version: String::new() }, ..base() }),
            Some("embedding.api_version")
        );

        let error =
            RemoteEmbedder::new(RemoteEmbedderSettings { api_key: Some(Secret::new("sk-line\nbreak")), ..base() })
                .expect_err("a key with a line break is refused");
        assert_eq!(error.field, "embedding.api_key");
        assert!(!error.to_string().contains("sk-line"));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let mut settings = RemoteEmbedderSettings::new("https://api.openai.com/v1", "m", 8);
        settings.api_key = Some(Secret::new("sk-very-secret"));
        assert!(!format!("{settings:?}").contains("sk-very-secret"));
        let embedder = RemoteEmbedder::new(settings).expect("valid settings");
        assert!(!format!("{embedder:?}").contains("sk-very-secret"));
    }

    #[test]
    fn model_ids_name_the_host_and_dimensions_but_no_credentials_or_path() {
        let embedder = |base_url: &str, flavor| {
            let mut settings = RemoteEmbedderSettings::new(base_url, "text-embedding-3-large", 3072);
            settings.flavor = flavor;
            settings.api_key = Some(Secret::new("sk-secret"));
            RemoteEmbedder::new(settings).expect("valid settings")
        };
        let openai = embedder("https://api.openai.com/v1/", RemoteFlavor::OpenAi);
        assert_eq!(openai.model_id(), "openai-compatible:text-embedding-3-large@api.openai.com/3072");
        assert_eq!(openai.endpoint(), "https://api.openai.com/v1/embeddings");

        let ollama = embedder("http://localhost:11434/v1", RemoteFlavor::OpenAi);
        assert_eq!(ollama.model_id(), "openai-compatible:text-embedding-3-large@localhost:11434/3072");

        let azure =
            embedder("https://contoso.openai.azure.com", RemoteFlavor::Azure { api_version: "2024-10-21".into() });
        assert_eq!(azure.model_id(), "azure-openai:text-embedding-3-large@contoso.openai.azure.com/3072");
        assert_eq!(
            azure.endpoint(),
            "https://contoso.openai.azure.com/openai/deployments/text-embedding-3-large/embeddings?api-version=2024-10-21"
        );
    }
}
