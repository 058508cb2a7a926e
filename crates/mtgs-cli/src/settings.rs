//! Resolved settings: the command line and the environment merged once into typed values
//! (defaults < environment < flags; clap applies the `MTGS_*` variables).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use mtgs_core::Secret;
use mtgs_embed::EmbedderSettings;
use mtgs_embed::remote::{RemoteEmbedderSettings, RemoteFlavor};
use mtgs_embed::router::{LlmRouter, RemoteRouterSettings, RouterFlavor};
use mtgs_service::{BehaviouralSettings, SemanticSettings, ServiceSettings};

use crate::args::{EmbedArgs, EmbedderKind, Format, GlobalArgs, RouteArgs, RouterKind};
use crate::env_vars;
use crate::failure::Failure;

/// How often the job runner of `serve` looks for queued work.
const JOB_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long a job stays leased without progress before another runner may take it over.
const JOB_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Settings {
    pub target: Target,
    pub output: Output,
}

/// Where commands send their work.
#[derive(Debug, Clone)]
pub enum Target {
    /// Open the database and call the service in this process.
    Local(Box<LocalSettings>),
    /// Call the REST API of a running server.
    Remote { url: String, token: Option<Secret> },
}

#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Created if missing when the database lives in it.
    pub data_dir: Option<PathBuf>,
    /// Without stage 3: [`LocalSettings::service_settings`] loads the model.
    pub service: ServiceSettings,
    pub embedder: EmbedderSettings,
}

impl LocalSettings {
    /// The service settings with stage 3's model loaded.
    pub fn service_settings(&self) -> Result<ServiceSettings, Failure> {
        Ok(ServiceSettings { semantic: load_semantic(&self.embedder)?, ..self.service.clone() })
    }
}

/// The encoder `args` choose: `auto` is the local model when a directory is given, else
/// the bundled one.
pub fn embedder_settings(args: &EmbedArgs) -> Result<EmbedderSettings, Failure> {
    let workers = mtgs_embed::default_workers();
    let local =
        |dir: &Path| EmbedderSettings::Local { dir: dir.to_owned(), max_tokens: args.embed_max_tokens, workers };
    Ok(match (args.embedder, &args.embed_model_dir) {
        (EmbedderKind::Off, _) => EmbedderSettings::Off,
        (EmbedderKind::Bundled, _) | (EmbedderKind::Auto, None) => EmbedderSettings::Bundled { workers },
        (EmbedderKind::Local | EmbedderKind::Auto, Some(dir)) => local(dir),
        (EmbedderKind::Local, None) => {
            return Err(Failure::input(anyhow!(
                "--embedder local needs --embed-model-dir (or {})",
                env_vars::EMBED_MODEL_DIR
            )));
        }
        (EmbedderKind::Openai, _) => EmbedderSettings::Remote(remote_settings(args)?),
    })
}

/// `--embedder openai`: URL, model and dimensions are required; the key is optional (a
/// local Ollama needs none).
fn remote_settings(args: &EmbedArgs) -> Result<RemoteEmbedderSettings, Failure> {
    let missing =
        |flag: &str, variable: &str| Failure::input(anyhow!("--embedder openai needs {flag} (or {variable})"));
    let url = args.embed_url.clone().ok_or_else(|| missing("--embed-url", env_vars::EMBED_URL))?;
    let model = args.embed_model.clone().ok_or_else(|| missing("--embed-model", env_vars::EMBED_MODEL))?;
    let dimensions = args.embed_dimensions.ok_or_else(|| missing("--embed-dimensions", env_vars::EMBED_DIMENSIONS))?;
    let mut settings = RemoteEmbedderSettings::new(url, model, dimensions);
    settings.api_key = args.embed_api_key.clone().filter(|key| !key.is_empty()).map(Secret::new);
    if let Some(api_version) = &args.embed_azure_api_version {
        settings.flavor = RemoteFlavor::Azure { api_version: api_version.clone() };
    }
    Ok(settings)
}

/// Loads stage 3's model; `None` when it is off.
pub fn load_semantic(settings: &EmbedderSettings) -> Result<Option<SemanticSettings>, Failure> {
    let embedder = mtgs_embed::load(settings)
        .map_err(|error| Failure::unavailable(anyhow!("cannot load the embedding model: {error}")))?;
    Ok(embedder.map(|embedder| SemanticSettings {
        // Exact search while it is fast enough; HNSW for larger registries.
        index: std::sync::Arc::new(|dimensions, len| {
            mtgs_embed::hnsw::index_for(dimensions, len, mtgs_embed::hnsw::DEFAULT_HNSW_THRESHOLD)
        }),
        ..SemanticSettings::new(embedder)
    }))
}

/// Stage 4 as `args` configure it; `None` when the router is off.
pub fn behavioural_settings(args: &RouteArgs) -> Result<Option<BehaviouralSettings>, Failure> {
    if args.probes_per_tool == 0 || args.probes_per_tool > 50 {
        return Err(Failure::input(anyhow!("--probes-per-tool: must be between 1 and 50")));
    }
    let mut settings = match args.router {
        RouterKind::Off => return Ok(None),
        RouterKind::Local => BehaviouralSettings::local(),
        RouterKind::Anthropic | RouterKind::Openai => {
            let flag = if args.router == RouterKind::Anthropic { "anthropic" } else { "openai" };
            let missing =
                |name: &str, variable: &str| Failure::input(anyhow!("--router {flag} needs {name} (or {variable})"));
            let url = args.router_url.clone().ok_or_else(|| missing("--router-url", env_vars::ROUTER_URL))?;
            let model = args.router_model.clone().ok_or_else(|| missing("--router-model", env_vars::ROUTER_MODEL))?;
            let flavor = match (args.router, &args.router_azure_api_version) {
                (RouterKind::Anthropic, _) => RouterFlavor::Anthropic,
                (_, Some(api_version)) => RouterFlavor::Azure { api_version: api_version.clone() },
                (_, None) => RouterFlavor::OpenAi,
            };
            let mut remote = RemoteRouterSettings::new(flavor, url, model);
            remote.api_key = args.router_api_key.clone().filter(|key| !key.is_empty()).map(Secret::new);
            let router =
                LlmRouter::build(remote).map_err(|error| Failure::input(anyhow!("--router {flag}: {error}")))?;
            // Each trial is a paid call: the model sees a shorter shortlist.
            let routing = mtgs_detect::routing::RoutingSettings { shortlist: 16, ..Default::default() };
            BehaviouralSettings::with_router(std::sync::Arc::new(router), routing)
        }
    };
    settings.probes.per_tool = args.probes_per_tool;
    Ok(Some(settings))
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    /// ANSI colour on stdout: a terminal, and `NO_COLOR` unset or empty.
    pub color: bool,
}

impl Settings {
    pub fn resolve(global: &GlobalArgs) -> Result<Settings, Failure> {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os(env_vars::NO_COLOR).is_none_or(|value| value.is_empty());
        let output = Output { format: global.format, color };
        let target = match &global.url {
            Some(url) => Target::Remote {
                url: parse_url(url)?,
                token: global.token.clone().filter(|token| !token.is_empty()).map(Secret::new),
            },
            None => Target::Local(Box::new(local_settings(global)?)),
        };
        Ok(Settings { target, output })
    }
}

/// The local database: `--database-url`, else `sqlite://DATA_DIR/mtgs.db`.
pub fn local_settings(global: &GlobalArgs) -> Result<LocalSettings, Failure> {
    let (data_dir, database_url) = match &global.database_url {
        Some(url) => (global.data_dir.clone(), url.clone()),
        None => {
            let dir = global.data_dir.clone().unwrap_or_else(default_data_dir);
            let url = mtgs_service::database_url_in(&dir);
            (Some(dir), url)
        }
    };
    Ok(LocalSettings {
        data_dir,
        service: ServiceSettings {
            database_url,
            job_poll_interval: JOB_POLL_INTERVAL,
            job_lease: JOB_LEASE,
            semantic: None,
            behavioural: behavioural_settings(&global.route)?,
            approval_ttl: global.approval_ttl,
            tool_source: Some(std::sync::Arc::new(mtgs_mcp::McpClient::new())),
            sync_interval: None,
        },
        embedder: embedder_settings(&global.embed)?,
    })
}

/// `$XDG_DATA_HOME/mtgs`, else `$HOME/.local/share/mtgs`, else `./mtgs-data`.
fn default_data_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(base) = non_empty(env_vars::XDG_DATA_HOME) {
        base.join("mtgs")
    } else if let Some(home) = non_empty(env_vars::HOME) {
        home.join(".local").join("share").join("mtgs")
    } else {
        Path::new("mtgs-data").to_owned()
    }
}

/// An `http://` or `https://` base URL without a trailing slash.
fn parse_url(raw: &str) -> Result<String, Failure> {
    let url =
        reqwest::Url::parse(raw).map_err(|error| Failure::input(anyhow!("--url: '{raw}' is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::input(anyhow!("--url: expected an http:// or https:// URL, found '{raw}'")));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}
