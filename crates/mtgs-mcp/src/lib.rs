//! The MCP client of mtgs, on the official SDK (`rmcp`): connects to a live server over
//! stdio (a child process) or Streamable HTTP, performs the handshake, and lists every
//! tool (following pagination) for [`mtgs_service::ToolSource`]; and a watcher that keeps
//! a connection open to each live server and syncs it when the server sends
//! `notifications/tools/list_changed`.

mod client;
mod watch;

pub use client::McpClient;
pub use watch::watch;
