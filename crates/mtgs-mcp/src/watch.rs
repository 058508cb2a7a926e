//! Watching live servers: one open connection per server; a `tools/list_changed`
//! notification syncs that server at once.

use std::collections::HashMap;
use std::time::Duration;

use mtgs_core::Connection;
use mtgs_service::Service;
use tokio::sync::mpsc;

use crate::client::{Client, Handler, connect};

/// How often the set of live servers is read again (new, changed and removed servers).
const REFRESH: Duration = Duration::from_secs(30);

struct Watched {
    connection: Connection,
    /// Dropped with the entry, which closes the connection.
    _client: Client,
}

/// Keeps a connection open to every live server and syncs a server (as `service`'s
/// principal) when it announces that its tools changed. Runs until `shutdown`.
pub async fn watch(service: Service, shutdown: impl std::future::Future<Output = ()> + Send) {
    tokio::pin!(shutdown);
    let (changed, mut changes) = mpsc::unbounded_channel::<i64>();
    let mut watched: HashMap<i64, Watched> = HashMap::new();
    let mut refresh = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = refresh.tick() => {
                let servers = match service.mcp_servers(None).await {
                    Ok(servers) => servers,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the live servers to watch");
                        continue;
                    }
                };
                watched.retain(|id, entry| {
                    servers.iter().any(|server| server.id == *id && server.connection.as_ref() == Some(&entry.connection))
                        && !entry._client.is_closed()
                });
                for server in servers {
                    let Some(connection) = server.connection.clone() else { continue };
                    if watched.contains_key(&server.id) {
                        continue;
                    }
                    let (notify, mut notified) = mpsc::unbounded_channel();
                    match connect(&connection, Handler { changed: notify }).await {
                        Ok(client) => {
                            let forward = changed.clone();
                            let id = server.id;
                            tokio::spawn(async move {
                                while notified.recv().await.is_some() {
                                    if forward.send(id).is_err() {
                                        return;
                                    }
                                }
                            });
                            tracing::info!(server = %server.name, "watching for tools/list_changed");
                            watched.insert(server.id, Watched { connection, _client: client });
                        }
                        Err(error) => tracing::debug!(server = %server.name, %error, "cannot watch the server"),
                    }
                }
            }
            Some(id) = changes.recv() => {
                // Notifications that arrived meanwhile are served by the same sync.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while changes.try_recv().is_ok() {}
                match service.sync_server(id).await {
                    Ok(report) => tracing::info!(server = %report.server, status = %report.status, added = report.added.len(), changed = report.changed.len(), removed = report.removed.len(), "synced after tools/list_changed"),
                    Err(error) => tracing::warn!(%error, "sync after tools/list_changed failed"),
                }
            }
        }
    }
}
