//! The mtgs HTTP server: the axum router over [`mtgs_service::Service`], the mapping of
//! service errors to the API's error codes, and the start-up that runs the HTTP server and
//! the job runner side by side until one shutdown signal stops both.
//!
//! **API boundary:** only `mtgs_api` types go on the wire; [`convert`] turns service
//! values into them, and the CLI reuses it so that `--format json` prints what the API sends.

mod auth;
pub mod convert;
mod error;
mod extract;
pub mod mcp;
mod routes;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use mtgs_service::{Service, ServiceSettings};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::{AuthSettings, DEFAULT_ROLE_CLAIM, JwtSettings, RateLimit};
pub use error::ErrorResponse;
pub use routes::router;

/// Resolved settings of `mtgs serve`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `HOST:PORT` to listen on; port 0 picks a free port (tests).
    pub bind: String,
    pub service: ServiceSettings,
    pub auth: AuthSettings,
}

/// A server bound to its port, not yet serving. Built in two steps so a caller (a test,
/// `mtgs serve`) learns the port before requests arrive.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    service: Service,
    auth: AuthSettings,
}

impl Application {
    /// Opens the database and binds the listener.
    pub async fn build(settings: &ServerSettings) -> anyhow::Result<Application> {
        let service = Service::open(&settings.service)
            .await
            .with_context(|| format!("cannot open the database {}", settings.service.database_url))?;
        Application::with_service(service, &settings.bind, settings.auth.clone()).await
    }

    /// Binds the listener for an already opened service.
    pub async fn with_service(service: Service, bind: &str, auth: AuthSettings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
        let address = listener.local_addr().context("cannot read the listening address")?;
        Ok(Application { listener, address, service, auth })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until `shutdown` completes; see [`run`].
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        run(self.listener, self.service, &self.auth, shutdown).await
    }
}

/// Serves the API on `listener` and runs the job runner until `shutdown` completes, then
/// lets in-flight requests finish and returns once both have stopped. Tests pass a future
/// they control; `mtgs serve` passes Ctrl-C / SIGTERM.
pub async fn run(
    listener: TcpListener,
    service: Service,
    auth: &AuthSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let app = router(service.clone(), auth)?;
    // One signal, three listeners: the HTTP server's graceful shutdown, the job runner,
    // and the signal task itself, so a server that stops on its own stops the rest.
    let (stop, stopped) = watch::channel(false);
    let stop = &stop;
    let wait_for_stop = |mut stopped: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which only happens once we are stopping.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(wait_for_stop(stopped.clone()));
    let server = async move {
        let served = server.await;
        stop.send_replace(true);
        served
    };
    let jobs = service.run_jobs(wait_for_stop(stopped.clone()));
    // Detectors (and stage 3's vectors after a model change) are built in the background,
    // so readiness does not wait for them and the first check rarely does.
    let warm = {
        let service = service.clone();
        let stopped = wait_for_stop(stopped.clone());
        async move {
            tokio::select! {
                () = stopped => {}
                warmed = service.warm_up() => if let Err(error) = warmed {
                    tracing::warn!(%error, "warming the detectors failed; they are built on first use");
                },
            }
        }
    };
    let signal = async move {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            () = wait_for_stop(stopped) => {}
        }
        stop.send_replace(true);
    };
    let (served, (), (), ()) = tokio::join!(server, jobs, warm, signal);
    served.context("the HTTP server failed")
}
