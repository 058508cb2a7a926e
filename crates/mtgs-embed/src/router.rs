//! LLM routers (opt-in) for stage 4 and impact simulations: the shortlisted tools are sent
//! to a model as real tool definitions, with the request as the user's message, and the
//! tool the model calls is the trial's pick.
//!
//! - **Anthropic Messages API**: `POST {base}/v1/messages` with `x-api-key` and
//!   `anthropic-version`; `tools: [{name, description, input_schema}]`, the pick is the
//!   first `tool_use` content block.
//! - **OpenAI-compatible chat completions** (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp
//!   server): `POST {base}/chat/completions` (Azure: `/openai/deployments/{model}/chat/completions?api-version=`)
//!   with `tools: [{type: "function", function: {name, description, parameters}}]`; the
//!   pick is `choices[0].message.tool_calls[0].function.name` (or the legacy `function_call`).
//!
//! Tool names are sent as `server__name` (as MCP hosts namespace them), cut to the 64
//! characters the APIs allow and made unique. A model that calls a tool it was not offered,
//! or answers with something unreadable, is a bad response; a model that calls no tool
//! picked none. Calls go through [`ProviderClient`]: timeouts, retries, a circuit breaker.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mtgs_detect::routing::{Contender, RouteError, Router, RoutingQuery};
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::breaker::{BreakerSettings, BreakerState, Clock, SystemClock};
use crate::http::{CallError, ClientSettings, KeyHeader, ProviderClient, join_path, parse_base_url};
use crate::remote::{Secret, SettingsError};

/// The Messages API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Longest tool name the APIs accept.
const MAX_TOOL_NAME: usize = 64;
/// Characters of a tool's description sent.
const DESCRIPTION_CHARS: usize = 4_000;
const SYSTEM_PROMPT: &str = "You are an assistant with access to tools. Call the one tool that best serves the \
user's request. If no tool fits, answer without calling a tool.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterFlavor {
    /// Anthropic's Messages API.
    Anthropic,
    /// OpenAI's chat completions API and servers imitating it.
    OpenAi,
    /// Azure OpenAI's chat completions, `model` naming the deployment.
    Azure { api_version: String },
}

#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct RemoteRouterSettings {
    pub flavor: RouterFlavor,
    /// `https://api.anthropic.com`, `https://api.openai.com/v1`, `http://localhost:11434/v1`, …
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    /// Sampling temperature sent to the model; `None` leaves the provider's default.
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    pub timeout: Duration,
    pub max_retries: u32,
    pub breaker: BreakerSettings,
}

impl RemoteRouterSettings {
    /// `flavor` at `base_url` with `model`, no key, a 60 s timeout, 3 retries.
    pub fn new(flavor: RouterFlavor, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            flavor,
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            temperature: None,
            max_tokens: 512,
            timeout: Duration::from_secs(60),
            max_retries: 3,
            breaker: BreakerSettings::default(),
        }
    }
}

impl std::fmt::Debug for RemoteRouterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRouterSettings")
            .field("flavor", &self.flavor)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("temperature", &self.temperature)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// A [`Router`] backed by an LLM API.
#[derive(Debug)]
pub struct LlmRouter {
    client: ProviderClient,
    endpoint: Url,
    flavor: RouterFlavor,
    model: String,
    id: String,
    description: String,
    temperature: Option<f32>,
    max_tokens: u32,
}

impl LlmRouter {
    pub fn new(settings: RemoteRouterSettings) -> Result<Self, SettingsError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    pub fn with_clock(settings: RemoteRouterSettings, clock: Arc<dyn Clock>) -> Result<Self, SettingsError> {
        let base = parse_base_url(&settings.base_url, "router.base_url")?;
        let model = settings.model.trim().to_owned();
        if model.is_empty() || model.chars().any(char::is_control) {
            return Err(SettingsError::new("router.model", "must name a model (or, for Azure, a deployment)"));
        }
        let (key_header, headers) = match settings.flavor {
            RouterFlavor::Anthropic => (
                KeyHeader::Named(HeaderName::from_static("x-api-key")),
                vec![(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(ANTHROPIC_VERSION))],
            ),
            RouterFlavor::OpenAi => (KeyHeader::Bearer, Vec::new()),
            RouterFlavor::Azure { .. } => (KeyHeader::Named(HeaderName::from_static("api-key")), Vec::new()),
        };
        let client = ProviderClient::new(ClientSettings {
            base: &base,
            role: "router",
            section: "router",
            timeout_setting: "router.timeout",
            key: settings.api_key.map(|key| (key_header, key)),
            headers,
            timeout: settings.timeout,
            max_retries: settings.max_retries,
            breaker: settings.breaker,
            clock,
        })?;
        let (endpoint, prefix) = match &settings.flavor {
            RouterFlavor::Anthropic => (join_path(&base, &["v1", "messages"], "router.base_url")?, "anthropic"),
            RouterFlavor::OpenAi => {
                (join_path(&base, &["chat", "completions"], "router.base_url")?, "openai-compatible")
            }
            RouterFlavor::Azure { api_version } => {
                let api_version = api_version.trim();
                if api_version.is_empty() {
                    return Err(SettingsError::new(
                        "router.api_version",
                        "Azure OpenAI needs an api-version, e.g. 2024-10-21",
                    ));
                }
                let mut endpoint =
                    join_path(&base, &["openai", "deployments", &model, "chat", "completions"], "router.base_url")?;
                endpoint.query_pairs_mut().append_pair("api-version", api_version);
                (endpoint, "azure-openai")
            }
        };
        let id = format!("{prefix}:{model}@{}", client.host());
        let description =
            format!("LLM router: {model} chooses among the shortlisted tools, sent to it as real tool definitions");
        Ok(Self {
            client,
            endpoint,
            flavor: settings.flavor,
            model,
            id,
            description,
            temperature: settings.temperature,
            max_tokens: settings.max_tokens.max(1),
        })
    }

    /// [`LlmRouter::new`] on a thread of its own: the blocking HTTP client must not be
    /// built on an async runtime's thread.
    pub fn build(settings: RemoteRouterSettings) -> Result<Self, SettingsError> {
        std::thread::spawn(move || Self::new(settings))
            .join()
            .unwrap_or_else(|_| Err(SettingsError::new("router", "building the HTTP client panicked")))
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.client.breaker().state()
    }

    fn request_body(&self, query: &str, names: &[String], contenders: &[Contender<'_>]) -> Value {
        let tools: Vec<Value> = contenders
            .iter()
            .zip(names)
            .map(|(contender, name)| {
                let def = &contender.tool.def;
                let description: String = def.description.as_deref().unwrap_or_default().chars().take(DESCRIPTION_CHARS).collect();
                let schema = object_schema(&def.input_schema);
                match self.flavor {
                    RouterFlavor::Anthropic => json!({"name": name, "description": description, "input_schema": schema}),
                    _ => json!({"type": "function", "function": {"name": name, "description": description, "parameters": schema}}),
                }
            })
            .collect();
        let mut body = match self.flavor {
            RouterFlavor::Anthropic => json!({
                "model": self.model,
                "max_tokens": self.max_tokens,
                "system": SYSTEM_PROMPT,
                "tools": tools,
                "tool_choice": {"type": "auto"},
                "messages": [{"role": "user", "content": query}],
            }),
            _ => json!({
                "model": self.model,
                "max_tokens": self.max_tokens,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": query}],
                "tools": tools,
                "tool_choice": "auto",
            }),
        };
        if let (Some(temperature), Some(object)) = (self.temperature, body.as_object_mut()) {
            object.insert("temperature".to_owned(), json!(temperature));
        }
        body
    }
}

impl Router for LlmRouter {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> &str {
        &self.description
    }

    fn choose(
        &self,
        query: &RoutingQuery,
        contenders: &[Contender<'_>],
        _trial: u32,
    ) -> Result<Option<usize>, RouteError> {
        if contenders.is_empty() {
            return Ok(None);
        }
        let names = tool_names(contenders);
        let body = self.request_body(&query.text, &names, contenders);
        let flavor = self.flavor.clone();
        let called = self
            .client
            .call(&self.endpoint, &body, |bytes| match flavor {
                RouterFlavor::Anthropic => anthropic_tool_call(bytes),
                _ => openai_tool_call(bytes),
            })
            .map_err(|error| match error {
                CallError::Unavailable(message) => RouteError::Unavailable(message),
                CallError::BadResponse(message) => RouteError::BadResponse(message),
            })?;
        match called {
            None => Ok(None),
            Some(name) => names.iter().position(|offered| *offered == name).map(Some).ok_or_else(|| {
                RouteError::BadResponse(format!("{} called '{name}', a tool it was not offered", self.id))
            }),
        }
    }
}

/// `server__name` for each contender, limited to `[A-Za-z0-9_-]{1,64}` and unique.
pub fn tool_names(contenders: &[Contender<'_>]) -> Vec<String> {
    let mut used = HashSet::new();
    contenders
        .iter()
        .map(|contender| {
            let key = &contender.tool.key;
            let raw = format!("{}__{}", key.server, key.name);
            let mut name: String = raw
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
                .take(MAX_TOOL_NAME)
                .collect();
            let mut suffix = 2;
            while !used.insert(name.clone()) {
                let tail = format!("_{suffix}");
                let keep = MAX_TOOL_NAME.saturating_sub(tail.len());
                name = format!(
                    "{}{tail}",
                    raw.chars()
                        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
                        .take(keep)
                        .collect::<String>()
                );
                suffix += 1;
            }
            name
        })
        .collect()
}

/// The schema as the APIs require it: an object schema (MCP's `inputSchema` already is).
fn object_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(fields) if fields.get("type").and_then(Value::as_str) == Some("object") => schema.clone(),
        Value::Object(fields) => {
            let mut fields = fields.clone();
            fields.insert("type".to_owned(), json!("object"));
            Value::Object(fields)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
}

#[derive(Deserialize)]
struct AnthropicMessage {
    content: Vec<AnthropicBlock>,
}

#[derive(Deserialize)]
struct AnthropicBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
}

/// The first `tool_use` block's tool, `None` when the model only wrote text.
fn anthropic_tool_call(body: &[u8]) -> Result<Option<String>, String> {
    let message: AnthropicMessage =
        serde_json::from_slice(body).map_err(|error| format!("not a Messages API response: {error}"))?;
    match message.content.into_iter().find(|block| block.kind == "tool_use") {
        None => Ok(None),
        Some(block) => block
            .name
            .filter(|name| !name.is_empty())
            .map(Some)
            .ok_or_else(|| "a tool_use block without a name".to_owned()),
    }
}

#[derive(Deserialize)]
struct ChatCompletion {
    choices: Vec<ChatChoice>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    tool_calls: Option<Vec<ChatToolCall>>,
    #[serde(default)]
    function_call: Option<ChatFunction>,
}

#[derive(Deserialize)]
struct ChatToolCall {
    function: ChatFunction,
}

#[derive(Deserialize)]
struct ChatFunction {
    name: String,
}

/// The first tool call's function, `None` when the model answered in text.
fn openai_tool_call(body: &[u8]) -> Result<Option<String>, String> {
    let completion: ChatCompletion =
        serde_json::from_slice(body).map_err(|error| format!("not a chat completions response: {error}"))?;
    let choice = completion.choices.into_iter().next().ok_or_else(|| "a response without choices".to_owned())?;
    let message = choice.message;
    let name = message
        .tool_calls
        .and_then(|calls| calls.into_iter().next())
        .map(|call| call.function.name)
        .or(message.function_call.map(|call| call.name));
    match name {
        Some(name) if name.is_empty() => Err("a tool call without a name".to_owned()),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_read_from_both_apis() {
        let anthropic = br#"{"id":"msg_1","type":"message","role":"assistant","content":[
            {"type":"text","text":"I'll create it."},
            {"type":"tool_use","id":"toolu_1","name":"jira__create_task","input":{"title":"x"}}],
            "stop_reason":"tool_use"}"#;
        assert_eq!(anthropic_tool_call(anthropic), Ok(Some("jira__create_task".to_owned())));
        assert_eq!(anthropic_tool_call(br#"{"content":[{"type":"text","text":"no"}]}"#), Ok(None));
        assert!(anthropic_tool_call(b"{}").is_err());

        let openai = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"call_1","type":"function","function":{"name":"jira__create_task","arguments":"{}"}}]},
            "finish_reason":"tool_calls"}]}"#;
        assert_eq!(openai_tool_call(openai), Ok(Some("jira__create_task".to_owned())));
        let legacy = br#"{"choices":[{"message":{"function_call":{"name":"a__b","arguments":"{}"}}}]}"#;
        assert_eq!(openai_tool_call(legacy), Ok(Some("a__b".to_owned())));
        assert_eq!(openai_tool_call(br#"{"choices":[{"message":{"content":"hi"}}]}"#), Ok(None));
        assert!(openai_tool_call(br#"{"choices":[]}"#).is_err());
    }
}
