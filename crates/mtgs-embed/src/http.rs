//! What every remote model client shares: one JSON `POST` through a circuit breaker, with
//! retries of transient failures (connection errors, timeouts, 408, 429, 5xx) on jittered
//! exponential back-off that honours `Retry-After`, no redirects (they would carry the
//! key elsewhere), and the key masked wherever a provider or a transport error echoes it.
//! The embeddings client and the LLM routers are built on it.
//!
//! Blocking: call from a blocking thread, never inside an async runtime.

use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::Value;

use crate::breaker::{BreakerSettings, CircuitBreaker, Clock, Rejected};
use crate::remote::{Secret, SettingsError};

/// First back-off wait; it doubles on every retry.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A provider asking for a longer pause gets this one; the caller is waiting.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
/// Characters of a provider's error message kept in ours.
const PROVIDER_MESSAGE_CHARS: usize = 500;

/// How a key is sent.
#[derive(Debug, Clone)]
pub(crate) enum KeyHeader {
    /// `Authorization: Bearer KEY` (OpenAI and its imitators).
    Bearer,
    /// The key alone in this header (`api-key` for Azure, `x-api-key` for Anthropic).
    Named(HeaderName),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// Not reached, timed out, refused, or the breaker is open.
    Unavailable(String),
    /// Answered with something unusable.
    BadResponse(String),
}

/// A provider endpoint's client.
#[derive(Debug)]
pub(crate) struct ProviderClient {
    http: reqwest::blocking::Client,
    /// `host[:port]`: names the provider in messages.
    host: String,
    /// What the provider is for, in messages ("embedding provider", "router").
    role: &'static str,
    /// Names the timeout setting in messages (`embedding.timeout`).
    timeout_setting: &'static str,
    credentials: Option<(KeyHeader, Secret)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    max_retries: u32,
    breaker: CircuitBreaker,
    clock: Arc<dyn Clock>,
}

/// What a client is configured with.
pub(crate) struct ClientSettings<'a> {
    pub base: &'a Url,
    pub role: &'static str,
    /// Prefix of setting names in messages (`embedding`, `router`).
    pub section: &'static str,
    pub timeout_setting: &'static str,
    pub key: Option<(KeyHeader, Secret)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub max_retries: u32,
    pub breaker: BreakerSettings,
    pub clock: Arc<dyn Clock>,
}

impl ProviderClient {
    pub(crate) fn new(settings: ClientSettings<'_>) -> Result<Self, SettingsError> {
        let section = settings.section;
        if settings.timeout.is_zero() {
            return Err(SettingsError::new(field(section, "timeout"), "must be longer than zero"));
        }
        if settings.breaker.failure_threshold == 0 {
            return Err(SettingsError::new(field(section, "breaker.failure_threshold"), "must be at least 1"));
        }
        if let Some((_, key)) = &settings.key
            && (key.expose().trim().is_empty() || HeaderValue::from_str(key.expose()).is_err())
        {
            // Not the key itself: it must not reach a log through this message.
            return Err(SettingsError::new(
                field(section, "api_key"),
                "must be non-empty printable ASCII without line breaks",
            ));
        }
        let base = settings.base;
        let host = match base.port() {
            Some(port) => format!("{}:{port}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("mtgs/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            // A redirect would carry the key header to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                SettingsError::new(section.to_owned(), format!("cannot set up the HTTP client: {error}"))
            })?;
        let breaker =
            CircuitBreaker::new(format!("{} {host}", settings.role), settings.breaker, settings.clock.clone());
        Ok(Self {
            http,
            host,
            role: settings.role,
            timeout_setting: settings.timeout_setting,
            credentials: settings.key,
            headers: settings.headers,
            max_retries: settings.max_retries,
            breaker,
            clock: settings.clock,
        })
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// POSTs `body` to `endpoint` and reads the answer with `parse` (an `Err` from it is a
    /// bad response: the provider is at fault, and it is not retried).
    pub(crate) fn call<T>(
        &self,
        endpoint: &Url,
        body: &impl Serialize,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, CallError> {
        let permit = self.breaker.try_acquire().map_err(|rejected| {
            let why = match rejected {
                Rejected::Open { .. } => "failed repeatedly",
                Rejected::TrialInFlight => "is being tried again",
            };
            CallError::Unavailable(format!("{rejected} (the {} {} {why})", self.role, self.host))
        })?;
        match self.call_with_retries(endpoint, body, &parse) {
            Ok(value) => {
                permit.succeeded();
                Ok(value)
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

    fn call_with_retries<T>(
        &self,
        endpoint: &Url,
        body: &impl Serialize,
        parse: &dyn Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, Failure> {
        let mut attempt = 0;
        loop {
            let (reason, retry_after) = match self.send_once(endpoint, body, parse) {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fatal(failure) => return Err(failure),
                Attempt::Transient { reason, retry_after } => (reason, retry_after),
            };
            if attempt >= self.max_retries {
                let attempts = u64::from(self.max_retries) + 1;
                let tries = if attempts == 1 { "1 attempt".to_owned() } else { format!("{attempts} attempts") };
                return Err(Failure {
                    error: CallError::Unavailable(format!("{reason} (gave up after {tries})")),
                    provider_at_fault: true,
                });
            }
            let wait = retry_after.map_or_else(|| backoff(attempt), |asked| asked.min(RETRY_AFTER_CAP));
            tracing::warn!(
                provider = %self.host,
                role = self.role,
                attempt = attempt + 1,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                %reason,
                "request failed; retrying"
            );
            self.clock.sleep(wait);
            attempt += 1;
        }
    }

    fn send_once<T>(
        &self,
        endpoint: &Url,
        body: &impl Serialize,
        parse: &dyn Fn(&[u8]) -> Result<T, String>,
    ) -> Attempt<T> {
        let mut builder = self.http.post(endpoint.clone()).json(body);
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        if let Some((header, key)) = &self.credentials {
            let (name, value) = match header {
                KeyHeader::Bearer => (AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", key.expose()))),
                KeyHeader::Named(name) => (name.clone(), HeaderValue::from_str(key.expose())),
            };
            // Checked in `new`; an `Err` here cannot happen, and sending without the
            // header would only earn a 401.
            if let Ok(mut value) = value {
                value.set_sensitive(true);
                builder = builder.header(name, value);
            }
        }

        let response = match builder.send() {
            Ok(response) => response,
            Err(error) => return Attempt::transient(self.describe_transport_error(&error)),
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
        let bytes = match response.bytes() {
            Ok(bytes) => bytes,
            Err(error) => return Attempt::transient(self.describe_transport_error(&error)),
        };

        if status.is_success() {
            return match parse(&bytes) {
                Ok(value) => Attempt::Done(value),
                Err(problem) => Attempt::Fatal(Failure {
                    error: CallError::BadResponse(format!("{}: {}", self.host, self.scrub(problem))),
                    provider_at_fault: true,
                }),
            };
        }

        let message = self.scrub(provider_message(&bytes));
        let reason = format!("{} answered HTTP {status}: {message}", self.host);
        if is_transient(status) {
            return Attempt::Transient { reason, retry_after };
        }
        Attempt::Fatal(Failure {
            error: CallError::Unavailable(reason),
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
            return format!("{} did not answer in time ({})", self.host, self.timeout_setting);
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

fn field(section: &str, name: &str) -> String {
    format!("{section}.{name}")
}

/// The outcome of one request.
enum Attempt<T> {
    Done(T),
    /// Worth another try.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fatal(Failure),
}

impl<T> Attempt<T> {
    fn transient(reason: String) -> Self {
        Self::Transient { reason, retry_after: None }
    }
}

struct Failure {
    error: CallError,
    /// Whether the failure says the provider is unwell (counts towards opening the breaker).
    provider_at_fault: bool,
}

/// An `http(s)` base URL with a host, no credentials, query or fragment; `field` names it
/// in errors.
pub(crate) fn parse_base_url(raw: &str, field: &str) -> Result<Url, SettingsError> {
    let url = Url::parse(raw.trim()).map_err(|error| SettingsError::new(field, format!("not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SettingsError::new(field, format!("must start with http:// or https://, not {}://", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingsError::new(field, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL holds a credential.
        return Err(SettingsError::new(field, "must not hold credentials; put the key in the api_key setting"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SettingsError::new(field, "must not have a query or fragment"));
    }
    Ok(url)
}

/// `base` with `segments` appended to its path, each percent-encoded.
pub(crate) fn join_path(base: &Url, segments: &[&str], field: &str) -> Result<Url, SettingsError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| SettingsError::new(field, "cannot take a path"))?
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

/// The provider's own words: OpenAI's and Anthropic's `{"error": {"message"}}`, TEI's and
/// Ollama's `{"error": "..."}`, else the start of the body.
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
}
