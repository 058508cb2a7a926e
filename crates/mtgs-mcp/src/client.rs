//! Connecting to a live server and listing its tools.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use mtgs_core::{Connection, Transport};
use mtgs_service::{ListedTools, ToolSource};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, PaginatedRequestParams};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long connecting, the handshake and listing may take together.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// After a listing, how long to wait for a `tools/list_changed` that would make it stale
/// (servers that add tools right after the handshake send one at once).
const SETTLE: Duration = Duration::from_millis(300);
/// Most pages of `tools/list` read from one server.
const MAX_PAGES: usize = 1_000;

/// Lists live servers' tools; one connection per listing, closed afterwards (a stdio
/// server's process is stopped).
#[derive(Debug, Clone, Default)]
pub struct McpClient;

impl McpClient {
    pub fn new() -> Self {
        Self
    }
}

/// The client side of a connection: announces mtgs, and reports `tools/list_changed`.
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    pub(crate) changed: mpsc::UnboundedSender<()>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("mtgs", env!("CARGO_PKG_VERSION")))
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        // The receiver is gone only when nobody listens any more.
        let _ = self.changed.send(());
    }
}

pub(crate) type Client = RunningService<RoleClient, Handler>;

/// Connects and performs the handshake.
pub(crate) async fn connect(connection: &Connection, handler: Handler) -> Result<Client, String> {
    match connection {
        Connection::Stdio { command, args, env, cwd } => {
            let process = tokio::process::Command::new(command).configure(|process| {
                process.args(args);
                for (name, value) in env {
                    process.env(name, value.expose());
                }
                if let Some(cwd) = cwd {
                    process.current_dir(cwd);
                }
            });
            // The server's own logging is not ours to show.
            let (transport, _) = TokioChildProcess::builder(process)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|error| format!("cannot start `{command}`: {error}"))?;
            handler
                .serve(transport)
                .await
                .map_err(|error| format!("the MCP handshake with `{command}` failed: {error}"))
        }
        Connection::Remote { transport: Transport::Http, url, headers } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            let mut custom = HashMap::new();
            for (name, value) in headers {
                if name.eq_ignore_ascii_case("authorization") {
                    let value = value.expose();
                    let token =
                        value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or(value);
                    config = config.auth_header(token);
                    continue;
                }
                let header = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?;
                let value = http::HeaderValue::from_str(value.expose())
                    .map_err(|_| format!("the value of header '{name}' is not valid in HTTP"))?;
                custom.insert(header, value);
            }
            let config = config.custom_headers(custom);
            handler
                .serve(StreamableHttpClientTransport::from_config(config))
                .await
                .map_err(|error| format!("cannot connect to {url}: {error}"))
        }
        Connection::Remote { transport, url, .. } => Err(format!(
            "{url}: the {transport} transport is not supported by the MCP SDK mtgs uses; \
             use the server's Streamable HTTP endpoint"
        )),
    }
}

/// Every tool of `tools/list`, all pages, as JSON.
pub(crate) async fn list_all(client: &Client) -> Result<Vec<Value>, String> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .peer()
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor.take())))
            .await
            .map_err(|error| format!("tools/list failed: {error}"))?;
        for tool in page.tools {
            tools.push(serde_json::to_value(&tool).map_err(|error| format!("unreadable tool: {error}"))?);
        }
        match page.next_cursor {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => return Ok(tools),
        }
    }
    Err(format!("tools/list did not end after {MAX_PAGES} pages"))
}

/// `initialize`'s `serverInfo` and protocol version.
pub(crate) fn server_info(client: &Client) -> Value {
    match client.peer().peer_info() {
        Some(info) => json!({
            "name": info.server_info.as_ref().map(|implementation| implementation.name.clone()),
            "version": info.server_info.as_ref().map(|implementation| implementation.version.clone()),
            "protocol_version": info.protocol_version.to_string(),
        }),
        None => Value::Null,
    }
}

async fn list(connection: &Connection) -> Result<ListedTools, String> {
    let (changed, mut changes) = mpsc::unbounded_channel();
    let client = connect(connection, Handler { changed }).await?;
    let listed = async {
        let mut tools = list_all(&client).await?;
        // A server that announces new tools right after the handshake is listed again.
        for _ in 0..5 {
            match tokio::time::timeout(SETTLE, changes.recv()).await {
                Ok(Some(())) => {
                    while changes.try_recv().is_ok() {}
                    tools = list_all(&client).await?;
                }
                _ => break,
            }
        }
        Ok::<_, String>(ListedTools { server_info: server_info(&client), tools })
    }
    .await;
    if let Err(error) = client.cancel().await {
        tracing::debug!(%error, "closing the MCP connection failed");
    }
    listed
}

impl ToolSource for McpClient {
    fn list_tools<'a>(
        &'a self,
        connection: &'a Connection,
    ) -> Pin<Box<dyn Future<Output = Result<ListedTools, String>> + Send + 'a>> {
        Box::pin(async move {
            tokio::time::timeout(LIST_TIMEOUT, list(connection))
                .await
                .unwrap_or_else(|_| Err(format!("the server did not answer within {} s", LIST_TIMEOUT.as_secs())))
        })
    }
}
