//! `mtgs serve`: the HTTP API and the job runner on the local database, until Ctrl-C or SIGTERM.

use std::io::Write as _;

use anyhow::Context as _;
use std::num::NonZeroU32;

use mtgs_core::{Principal, Secret};
use mtgs_server::{Application, AuthSettings, JwtSettings, RateLimit, ServerSettings};
use mtgs_service::ServiceSettings;

use crate::args::ServeArgs;
use crate::failure::{Exit, Failure};
use crate::settings::LocalSettings;

pub async fn run(args: &ServeArgs, local: &LocalSettings) -> Result<Exit, Failure> {
    if let Some(dir) = &local.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))
            .map_err(Failure::unavailable)?;
    }
    let sync_interval = (!args.sync_interval.is_zero()).then_some(args.sync_interval);
    let service = ServiceSettings { sync_interval, ..local.service_settings()? };
    let settings = ServerSettings { bind: args.bind.to_string(), service, auth: auth_settings(args) };
    let app = Application::build(&settings).await.map_err(Failure::unavailable)?;
    println!("mtgs listening on http://{}", app.local_addr());
    // Scripts wait for this line before sending requests.
    let _ = std::io::stdout().flush();
    // Live servers are watched for tools/list_changed while the server runs.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(mtgs_mcp::watch(app.service().acting_as(Principal::system()), async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    let served = app.run_until_stopped(shutdown_signal()).await;
    stop.send_replace(true);
    let _ = watcher.await;
    served.map_err(Failure::unavailable)?;
    Ok(Exit::Success)
}

/// API keys always; JWTs when a secret or an issuer is given; the rate limit unless 0.
fn auth_settings(args: &ServeArgs) -> AuthSettings {
    let jwt = (args.jwt_secret.is_some() || args.oidc_issuer.is_some()).then(|| JwtSettings {
        hs256_secret: args.jwt_secret.clone().map(Secret::new),
        oidc_issuer: args.oidc_issuer.clone(),
        audience: args.jwt_audience.clone(),
        role_claim: args.jwt_role_claim.clone(),
    });
    let rate_limit = NonZeroU32::new(args.rate_limit)
        .map(|per_minute| RateLimit { per_minute, burst: NonZeroU32::new(args.rate_burst).unwrap_or(NonZeroU32::MIN) });
    AuthSettings { jwt, rate_limit }
}

/// Completes on Ctrl-C, or on SIGTERM on Unix (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
