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
use std::sync::Arc;
use std::time::Duration;

pub use mtgs_core::Secret;
use mtgs_detect::semantic::{EmbedError, Embedder};
use reqwest::Url;
use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};

use crate::breaker::{BreakerSettings, BreakerState, Clock, SystemClock};
use crate::http::{CallError, ClientSettings, KeyHeader, ProviderClient, join_path, parse_base_url};

/// The largest batch the OpenAI API accepts in one request.
pub const MAX_BATCH_SIZE: usize = 2_048;
/// Larger than any embedding model in use (text-embedding-3-large has 3,072).
pub const MAX_DIMENSIONS: usize = 65_536;

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
    pub field: String,
    pub message: String,
}

impl SettingsError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// An [`Embedder`] backed by an OpenAI-compatible embeddings endpoint.
#[derive(Debug)]
pub struct RemoteEmbedder {
    client: ProviderClient,
    endpoint: Url,
    model: String,
    model_id: String,
    dimensions: usize,
    send_dimensions: bool,
    batch_size: usize,
}

impl RemoteEmbedder {
    pub fn new(settings: RemoteEmbedderSettings) -> Result<Self, SettingsError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), reading time and waiting through `clock` (the breaker's
    /// cool-down, back-off and `Retry-After` waits).
    pub fn with_clock(settings: RemoteEmbedderSettings, clock: Arc<dyn Clock>) -> Result<Self, SettingsError> {
        let base = parse_base_url(&settings.base_url, "embedding.base_url")?;
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
        let key_header = match settings.flavor {
            RemoteFlavor::OpenAi => KeyHeader::Bearer,
            RemoteFlavor::Azure { .. } => KeyHeader::Named(HeaderName::from_static("api-key")),
        };
        let client = ProviderClient::new(ClientSettings {
            base: &base,
            role: "embedding provider",
            section: "embedding",
            timeout_setting: "embedding.timeout",
            key: settings.api_key.map(|key| (key_header, key)),
            headers: Vec::new(),
            timeout: settings.timeout,
            max_retries: settings.max_retries,
            breaker: settings.breaker,
            clock,
        })?;
        let (endpoint, id_prefix) = match &settings.flavor {
            RemoteFlavor::OpenAi => (join_path(&base, &["embeddings"], "embedding.base_url")?, "openai-compatible"),
            RemoteFlavor::Azure { api_version } => {
                let api_version = api_version.trim();
                if api_version.is_empty() {
                    return Err(SettingsError::new(
                        "embedding.api_version",
                        "Azure OpenAI needs an api-version, e.g. 2024-10-21",
                    ));
                }
                let mut endpoint =
                    join_path(&base, &["openai", "deployments", &model, "embeddings"], "embedding.base_url")?;
                endpoint.query_pairs_mut().append_pair("api-version", api_version);
                (endpoint, "azure-openai")
            }
        };
        let model_id = format!("{id_prefix}:{model}@{}/{}", client.host(), settings.dimensions);
        Ok(Self {
            client,
            endpoint,
            model,
            model_id,
            dimensions: settings.dimensions,
            send_dimensions: settings.send_dimensions,
            batch_size: settings.batch_size.clamp(1, MAX_BATCH_SIZE),
        })
    }

    /// Whether calls currently reach the provider; for readiness checks and metrics.
    pub fn breaker_state(&self) -> BreakerState {
        self.client.breaker().state()
    }

    /// The URL requests go to (no credentials in it).
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// One batch: through the breaker, with retries.
    fn embed_batch(&self, texts: &[&str], offset: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let request = EmbeddingsRequest {
            model: &self.model,
            input: texts,
            encoding_format: "float",
            dimensions: self.send_dimensions.then_some(self.dimensions),
        };
        let parse = |body: &[u8]| {
            parse_embeddings(body, texts.len(), self.dimensions, offset).map_err(|problem| {
                let hint = if problem.wrong_dimensions && !self.send_dimensions {
                    " (check embedding.dimensions, or set embedding.send_dimensions for a model that can shorten its vectors)"
                } else if problem.wrong_dimensions {
                    " (check embedding.dimensions)"
                } else {
                    ""
                };
                format!("({}) {}{hint}", self.model, problem.message)
            })
        };
        self.client.call(&self.endpoint, &request, parse).map_err(|error| match error {
            CallError::Unavailable(message) => EmbedError::Unavailable(message),
            CallError::BadResponse(message) => EmbedError::BadResponse(message),
        })
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
        // Leaked: a test's few field names, compared as `&'static str`.
        let check = |settings: RemoteEmbedderSettings| {
            RemoteEmbedder::new(settings).err().map(|error| &*Box::leak(error.field.into_boxed_str()))
        };
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
