//! How mtgs reaches a live MCP server: a command to run (stdio) or a URL (Streamable
//! HTTP, or legacy SSE), with the environment variables or headers that carry its
//! secrets. Secrets are kept as [`Secret`]s: stored, sent to the server, never printed.
//!
//! Host configurations are read as the hosts write them: Claude Desktop's and Cursor's
//! `{"mcpServers": {NAME: {command, args, env} | {url, headers}}}` and VS Code's
//! `{"servers": {NAME: {type: "stdio" | "http" | "sse", …}}}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::conflict::named_enum;
use crate::{InputError, Secret, ServerName, json_type};
use serde::{Deserialize, Serialize};

named_enum! {
    /// The transport of a live MCP server.
    pub enum Transport {
        /// A child process speaking JSON-RPC on stdin/stdout.
        Stdio = "stdio",
        /// Streamable HTTP (one endpoint, POST and optionally an SSE stream).
        Http = "http",
        /// The legacy HTTP+SSE transport (2024-11-05).
        Sse = "sse",
    }
}

named_enum! {
    /// How a server's last sync ended.
    pub enum SyncStatus {
        Succeeded = "succeeded",
        /// The server could not be reached or answered badly; nothing changed.
        Failed = "failed",
    }
}

/// A server of an environment and, when it is a live MCP server mtgs syncs, how to reach
/// it and how its last sync went.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    pub id: i64,
    pub environment: crate::EnvironmentName,
    pub name: ServerName,
    pub connection: Option<Connection>,
    pub last_sync: Option<SyncRecord>,
    pub created_at: i64,
}

/// The outcome of a server's last sync.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    pub at: i64,
    pub status: SyncStatus,
    /// What changed (counts and names), for a sync that ran.
    pub summary: Value,
    /// Why it failed.
    pub error: Option<String>,
}

/// A tool the server listed that mtgs cannot take, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedTool {
    pub index: usize,
    pub name: Option<String>,
    pub error: String,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub server_id: i64,
    pub environment: String,
    pub server: String,
    pub status: SyncStatus,
    /// Why the sync failed (nothing changed then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub server_info: Value,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    /// Active tools whose definition changed on the server: held for approval again.
    pub drifted: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Listed tools that are not valid MCP tools (skipped).
    pub refused: Vec<RefusedTool>,
    /// The registration's verdict for the added and changed tools.
    pub verdict: crate::Verdict,
    /// Status of each added or changed tool after the sync.
    pub statuses: BTreeMap<String, crate::ToolStatus>,
}

impl SyncReport {
    /// What the sync found, as recorded on the server.
    pub fn summary(&self) -> Value {
        json!({
            "added": self.added,
            "changed": self.changed,
            "drifted": self.drifted,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "server_info": self.server_info,
        })
    }
}

/// What a value is replaced by wherever a connection is shown.
pub const MASK: &str = "***";

/// How to reach a live MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, Secret>,
        cwd: Option<String>,
    },
    /// Streamable HTTP or legacy SSE.
    Remote {
        transport: Transport,
        url: String,
        headers: BTreeMap<String, Secret>,
    },
}

/// Longest command, argument, URL, header or variable value accepted.
const MAX_VALUE_CHARS: usize = 8_192;
/// Most arguments, variables or headers accepted.
const MAX_ENTRIES: usize = 256;

impl Connection {
    pub fn transport(&self) -> Transport {
        match self {
            Connection::Stdio { .. } => Transport::Stdio,
            Connection::Remote { transport, .. } => *transport,
        }
    }

    /// Reads a connection from mtgs's own form (`{"transport": "stdio", "command", "args",
    /// "env", "cwd"}` or `{"transport": "http" | "sse", "url", "headers"}`) or a host
    /// configuration's entry (`type` instead of `transport`, or neither: a `command` means
    /// stdio, a `url` Streamable HTTP). Errors name the field under `field`.
    pub fn parse(value: &Value, field: &str) -> Result<Connection, InputError> {
        let at = |name: &str| if field.is_empty() { name.to_owned() } else { format!("{field}.{name}") };
        let object = value
            .as_object()
            .ok_or_else(|| InputError::new(field, format!("expected an object, found {}", json_type(value))))?;
        let declared = match (object.get("transport"), object.get("type")) {
            (Some(transport), _) => Some(("transport", transport)),
            (None, Some(kind)) => Some(("type", kind)),
            (None, None) => None,
        };
        let transport = match declared {
            Some((name, Value::String(raw))) => match raw.as_str() {
                "stdio" => Transport::Stdio,
                "http" | "streamable-http" | "streamableHttp" | "streamable_http" => Transport::Http,
                "sse" => Transport::Sse,
                other => {
                    return Err(InputError::new(
                        at(name),
                        format!("'{other}' is not a transport: expected stdio, http or sse"),
                    ));
                }
            },
            Some((name, other)) => {
                return Err(InputError::new(at(name), format!("expected a string, found {}", json_type(other))));
            }
            None if object.contains_key("command") => Transport::Stdio,
            None if object.contains_key("url") || object.contains_key("serverUrl") => Transport::Http,
            None => return Err(InputError::new(field, "needs a `command` (stdio) or a `url` (HTTP)")),
        };
        match transport {
            Transport::Stdio => {
                let command = text(object, "command", &at("command"))?
                    .ok_or_else(|| InputError::new(at("command"), "is required for a stdio server"))?;
                let args = match object.get("args") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => {
                        if items.len() > MAX_ENTRIES {
                            return Err(InputError::new(at("args"), format!("has more than {MAX_ENTRIES} items")));
                        }
                        items
                            .iter()
                            .enumerate()
                            .map(|(index, item)| match item {
                                Value::String(arg) => bounded(arg, &format!("{}[{index}]", at("args"))),
                                Value::Number(number) => Ok(number.to_string()),
                                other => Err(InputError::new(
                                    format!("{}[{index}]", at("args")),
                                    format!("expected a string, found {}", json_type(other)),
                                )),
                            })
                            .collect::<Result<_, _>>()?
                    }
                    Some(other) => {
                        return Err(InputError::new(
                            at("args"),
                            format!("expected an array of strings, found {}", json_type(other)),
                        ));
                    }
                };
                let env = secrets(object, "env", &at("env"))?;
                let cwd = text(object, "cwd", &at("cwd"))?;
                Ok(Connection::Stdio { command, args, env, cwd })
            }
            Transport::Http | Transport::Sse => {
                let url_field = if object.contains_key("url") { "url" } else { "serverUrl" };
                let url = text(object, url_field, &at(url_field))?
                    .ok_or_else(|| InputError::new(at("url"), "is required for an HTTP server"))?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(InputError::new(
                        at(url_field),
                        format!("expected an http:// or https:// URL, found '{url}'"),
                    ));
                }
                let headers = secrets(object, "headers", &at("headers"))?;
                Ok(Connection::Remote { transport, url, headers })
            }
        }
    }

    /// The stored form, secrets included: for the database only.
    pub fn to_stored(&self) -> Value {
        self.render(|secret| Value::String(secret.expose().to_owned()))
    }

    /// The shown form: every environment value and header value is [`MASK`].
    pub fn to_public(&self) -> Value {
        self.render(|_| Value::String(MASK.to_owned()))
    }

    fn render(&self, secret: impl Fn(&Secret) -> Value) -> Value {
        let map = |values: &BTreeMap<String, Secret>| {
            Value::Object(values.iter().map(|(name, value)| (name.clone(), secret(value))).collect::<Map<_, _>>())
        };
        match self {
            Connection::Stdio { command, args, env, cwd } => json!({
                "transport": Transport::Stdio,
                "command": command,
                "args": args,
                "env": map(env),
                "cwd": cwd,
            }),
            Connection::Remote { transport, url, headers } => json!({
                "transport": transport,
                "url": url,
                "headers": map(headers),
            }),
        }
    }
}

fn bounded(value: &str, field: &str) -> Result<String, InputError> {
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(InputError::new(field, format!("is longer than {MAX_VALUE_CHARS} characters")));
    }
    if value.contains('\0') {
        return Err(InputError::new(field, "must not contain NUL"));
    }
    Ok(value.to_owned())
}

fn text(object: &Map<String, Value>, name: &str, field: &str) -> Result<Option<String>, InputError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if value.trim().is_empty() => Err(InputError::new(field, "must not be empty")),
        Some(Value::String(value)) => bounded(value, field).map(Some),
        Some(other) => Err(InputError::new(field, format!("expected a string, found {}", json_type(other)))),
    }
}

fn secrets(object: &Map<String, Value>, name: &str, field: &str) -> Result<BTreeMap<String, Secret>, InputError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(values)) => {
            if values.len() > MAX_ENTRIES {
                return Err(InputError::new(field, format!("has more than {MAX_ENTRIES} entries")));
            }
            values
                .iter()
                .map(|(key, value)| {
                    let entry = format!("{field}.{key}");
                    if key.is_empty() || key.contains(['\0', '\n', '\r']) {
                        return Err(InputError::new(&entry, "is not a valid name"));
                    }
                    match value {
                        Value::String(text) => Ok((key.clone(), Secret::new(bounded(text, &entry)?))),
                        Value::Number(number) => Ok((key.clone(), Secret::new(number.to_string()))),
                        Value::Bool(flag) => Ok((key.clone(), Secret::new(flag.to_string()))),
                        other => Err(InputError::new(entry, format!("expected a string, found {}", json_type(other)))),
                    }
                })
                .collect()
        }
        Some(other) => {
            Err(InputError::new(field, format!("expected an object of strings, found {}", json_type(other))))
        }
    }
}

/// The servers of a host configuration: Claude Desktop's and Cursor's `mcpServers`, or VS
/// Code's `servers` (its `inputs` are not resolved: a `${input:…}` value is kept as text).
/// Errors name the field (`mcpServers.github.command`).
pub fn parse_host_config(value: &Value) -> Result<Vec<(ServerName, Connection)>, InputError> {
    let object = value
        .as_object()
        .ok_or_else(|| InputError::new("", format!("expected a JSON object, found {}", json_type(value))))?;
    let (key, servers) = match (object.get("mcpServers"), object.get("servers")) {
        (Some(servers), _) => ("mcpServers", servers),
        (None, Some(servers)) => ("servers", servers),
        (None, None) => {
            return Err(InputError::new(
                "",
                "expected `mcpServers` (Claude Desktop, Cursor) or `servers` (VS Code) at the top level",
            ));
        }
    };
    let servers = servers
        .as_object()
        .ok_or_else(|| InputError::new(key, format!("expected an object of servers, found {}", json_type(servers))))?;
    servers
        .iter()
        .map(|(name, entry)| {
            let field = format!("{key}.{name}");
            let server = ServerName::parse(name).map_err(|error| InputError::new(&field, error.reason))?;
            Ok((server, Connection::parse(entry, &field)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_desktop_and_cursor_configs_are_read_with_their_secrets_masked_on_show() {
        let config = json!({"mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_secret"}},
            "linear": {"url": "https://mcp.linear.app/mcp", "headers": {"Authorization": "Bearer lin_secret"}},
            "legacy": {"type": "sse", "url": "http://localhost:3001/sse"}
        }});
        let servers = parse_host_config(&config).expect("parses");
        assert_eq!(servers.len(), 3);
        let (name, github) = &servers[0];
        assert_eq!(name.as_str(), "github");
        assert_eq!(github.transport(), Transport::Stdio);
        assert_eq!(github.to_stored()["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"], "ghp_secret");
        let shown = github.to_public().to_string();
        assert!(!shown.contains("ghp_secret") && shown.contains(MASK), "{shown}");
        assert!(!format!("{github:?}").contains("ghp_secret"));
        let (_, linear) = &servers[1];
        assert_eq!(linear.transport(), Transport::Http);
        assert!(!linear.to_public().to_string().contains("lin_secret"));
        assert_eq!(servers[2].1.transport(), Transport::Sse);
        // The stored form reads back to the same connection.
        assert_eq!(Connection::parse(&github.to_stored(), "").as_ref(), Ok(github));
        assert_eq!(Connection::parse(&linear.to_stored(), "").as_ref(), Ok(linear));
    }

    #[test]
    fn vs_code_configs_are_read() {
        let config = json!({"inputs": [], "servers": {
            "memory": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
            "remote": {"type": "http", "url": "https://example.com/mcp"}
        }});
        let servers = parse_host_config(&config).expect("parses");
        assert_eq!(servers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["memory", "remote"]);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"mcpServers": {"x": {"args": []}}}), "mcpServers.x"),
            (json!({"mcpServers": {"x": {"command": 7}}}), "mcpServers.x.command"),
            (json!({"mcpServers": {"x": {"command": "npx", "args": [{}]}}}), "mcpServers.x.args[0]"),
            (json!({"mcpServers": {"x": {"command": "npx", "env": {"A": []}}}}), "mcpServers.x.env.A"),
            (json!({"mcpServers": {"x": {"url": "ftp://host"}}}), "mcpServers.x.url"),
            (json!({"servers": {"x": {"type": "carrier-pigeon", "url": "http://h"}}}), "servers.x.type"),
            (json!({"mcpServers": {"bad name!": {"command": "npx"}}}), "mcpServers.bad name!"),
            (json!({"mcpServers": []}), "mcpServers"),
            (json!({"tools": []}), ""),
        ];
        for (config, field) in cases {
            let error = parse_host_config(&config).expect_err("refused");
            assert_eq!(error.field, field, "{config}: {error}");
        }
    }
}
