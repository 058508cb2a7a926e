//! The command line as clap sees it: flags, their environment variables and their help.
//! Nothing is resolved here; [`crate::settings`] turns these into settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mtgs_core::{ConflictStatus, EnvironmentName, ServerName, Severity, StageId, ToolKey, ToolStatus};

use crate::env_vars;

const EXIT_CODES: &str = "\
Exit codes:
  0  success; a check or registration whose verdict is pass
  1  a check or registration whose verdict is block (a live critical or high conflict)
  2  usage or input error: bad flag, unreadable or invalid tool file, unknown environment
  3  the server or the database is unreachable, or failed; or rate-limited
  4  not authenticated (no or bad MTGS_TOKEN), or the role does not allow it

Without --url, commands work on the local database in the data directory;
with --url (or MTGS_URL), they call that mtgs server's REST API.";

/// MCP Tool Governance System: finds tools that agents would confuse, before they ship.
#[derive(Debug, Parser)]
#[command(name = "mtgs", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Call the mtgs server at URL instead of opening the local database.
    #[arg(long, global = true, value_name = "URL", env = env_vars::URL)]
    pub url: Option<String>,
    /// Bearer token for the server (sent as `Authorization: Bearer TOKEN`).
    #[arg(long, global = true, value_name = "TOKEN", env = env_vars::TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Directory of the local database [default: $XDG_DATA_HOME/mtgs, else ~/.local/share/mtgs, else ./mtgs-data].
    #[arg(long, global = true, value_name = "DIR", env = env_vars::DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://DIR/mtgs.db].
    #[arg(long, global = true, value_name = "URL", env = env_vars::DATABASE_URL, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Output: tables for people, the API's JSON for machines (JSON lines for `audit
    /// export`), or CEF lines for SIEMs (`audit export` only).
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// How long an approval request stays pending before it expires (`7d`, `12h`,
    /// `30m`, `45s`); local commands and `serve`.
    #[arg(long, global = true, value_name = "DURATION", default_value = "7d", env = env_vars::APPROVAL_TTL, value_parser = duration)]
    pub approval_ttl: std::time::Duration,
    #[command(flatten)]
    pub embed: EmbedArgs,
    #[command(flatten)]
    pub route: RouteArgs,
}

/// Stage 4's router and probes (local commands and `serve`).
#[derive(Debug, Clone, Args)]
pub struct RouteArgs {
    /// Router for the behavioural stage and impact simulations: `local` is an offline
    /// retrieval-based proxy (BM25 plus the semantic stage's embeddings), not an LLM.
    #[arg(long, global = true, value_enum, default_value_t = RouterKind::Local, env = env_vars::ROUTER)]
    pub router: RouterKind,
    /// Probes (requests a tool should serve) written per tool.
    #[arg(long, global = true, value_name = "N", default_value_t = 5, env = env_vars::PROBES_PER_TOOL)]
    pub probes_per_tool: usize,
    /// Base URL of the LLM API for `--router anthropic|openai` (`https://api.anthropic.com`,
    /// `https://api.openai.com/v1`, `http://localhost:11434/v1` for Ollama, or
    /// `https://RESOURCE.openai.azure.com` with --router-azure-api-version).
    #[arg(long, global = true, value_name = "URL", env = env_vars::ROUTER_URL)]
    pub router_url: Option<String>,
    /// The model (Azure: deployment) that routes, for `--router anthropic|openai`.
    #[arg(long, global = true, value_name = "NAME", env = env_vars::ROUTER_MODEL)]
    pub router_model: Option<String>,
    /// Address Azure OpenAI with this `api-version` (and an `api-key` header).
    #[arg(long, global = true, value_name = "VERSION", env = env_vars::ROUTER_AZURE_API_VERSION)]
    pub router_azure_api_version: Option<String>,
    /// The LLM provider's API key (prefer the environment variable).
    #[arg(long, global = true, value_name = "KEY", env = env_vars::ROUTER_API_KEY, hide_env_values = true)]
    pub router_api_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RouterKind {
    /// Offline: relevance scores, softmax sampling, majority vote over trials.
    Local,
    /// Anthropic's Messages API (--router-url, --router-model, --router-api-key).
    Anthropic,
    /// An OpenAI-compatible chat completions API: OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp.
    Openai,
    /// No behavioural stage and no impact simulation.
    Off,
}

/// Stage 3's model (local commands and `serve`).
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Sentence encoder for the semantic stage: `auto` is `local` when a model directory
    /// is given, else `bundled`.
    #[arg(long, global = true, value_enum, default_value_t = EmbedderKind::Auto, env = env_vars::EMBEDDER)]
    pub embedder: EmbedderKind,
    /// Directory with config.json, tokenizer.json and model.safetensors of a BERT-family
    /// sentence encoder (all-MiniLM-L6-v2: `scripts/fetch-model` installs it).
    #[arg(long, global = true, value_name = "DIR", env = env_vars::EMBED_MODEL_DIR)]
    pub embed_model_dir: Option<PathBuf>,
    /// Tokens of a fingerprint the local model reads.
    #[arg(long, global = true, value_name = "N", default_value_t = 128, env = env_vars::EMBED_MAX_TOKENS)]
    pub embed_max_tokens: usize,
    /// Base URL of an OpenAI-compatible embeddings API, for `--embedder openai`
    /// (`https://api.openai.com/v1`, `http://localhost:11434/v1` for Ollama, or
    /// `https://RESOURCE.openai.azure.com` with --embed-azure-api-version).
    #[arg(long, global = true, value_name = "URL", env = env_vars::EMBED_URL)]
    pub embed_url: Option<String>,
    /// Model (Azure: deployment) name, for `--embedder openai`.
    #[arg(long, global = true, value_name = "NAME", env = env_vars::EMBED_MODEL)]
    pub embed_model: Option<String>,
    /// Length of the provider's vectors (text-embedding-3-large: 3072), for `--embedder openai`.
    #[arg(long, global = true, value_name = "N", env = env_vars::EMBED_DIMENSIONS)]
    pub embed_dimensions: Option<usize>,
    /// Address Azure OpenAI with this `api-version` (and an `api-key` header).
    #[arg(long, global = true, value_name = "VERSION", env = env_vars::EMBED_AZURE_API_VERSION)]
    pub embed_azure_api_version: Option<String>,
    /// The provider's API key (prefer the environment variable).
    #[arg(long, global = true, value_name = "KEY", env = env_vars::EMBED_API_KEY, hide_env_values = true)]
    pub embed_api_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedderKind {
    Auto,
    /// paraphrase-MiniLM-L3-v2, compiled into the binary.
    Bundled,
    /// The model in --embed-model-dir.
    Local,
    /// An OpenAI-compatible embeddings API (--embed-url, --embed-model, --embed-dimensions).
    Openai,
    /// No semantic stage.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// ArcSight CEF lines (`audit export` only).
    Cef,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the job runner until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Check, register and list tools.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// List, show and triage conflicts.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Analyse every pair of tools in an environment (shows progress).
    Analyze(EnvironmentArgs),
    /// Show the health score of an environment.
    Health(EnvironmentArgs),
    /// Verify and export the tamper-evident audit log (local database).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Predict how routing shifts when tools are added: route the environment's probes
    /// before and after (exit 1 when the verdict is block).
    Simulate(SimulateArgs),
    /// Score the pipeline on a labelled corpus of real servers' tools (always local, in a
    /// throwaway database; exit 1 when below --floors).
    Eval(EvalArgs),
    /// Create, list and revoke API keys (admins; locally, the data directory's operator).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List, show, approve and reject approval requests of tools with critical or high
    /// conflicts.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Show who the server takes you for (your token's actor and role).
    Whoami,
    /// Register live MCP servers (one by one, or from a host's mcp.json) and list them.
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Sync live MCP servers' tools into the registry: added tools are registered, changed
    /// ones updated (an active tool that changed needs approval again), missing ones removed.
    Sync(SyncArgs),
    /// Serve mtgs's governance tools over MCP on stdin/stdout (for a host's mcp.json).
    Mcp,
    /// Synthetic registries and benchmarks (always local, in a throwaway database).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a synthetic registry (one `tools/list` file per server, and `planted.json`).
    Gen(BenchGenArgs),
    /// Measure bulk registration, all-pairs analysis (wall time, peak memory) and
    /// single-tool check latency on synthetic registries of each size.
    Run(BenchRunArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The real servers recombined (`eval/corpus`).
    #[arg(long, value_name = "DIR", default_value = "eval/corpus")]
    pub corpus: PathBuf,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Share of tools planted as near-duplicates of another server's tool.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
    pub planted: f64,
}

#[derive(Debug, Args)]
pub struct BenchGenArgs {
    #[arg(long, value_name = "N")]
    pub tools: usize,
    #[command(flatten)]
    pub synth: SynthArgs,
    /// Directory to write (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchRunArgs {
    /// Registry sizes, comma-separated.
    #[arg(long, value_name = "N,N,…", value_delimiter = ',', default_value = "1000,10000")]
    pub tools: Vec<usize>,
    #[command(flatten)]
    pub synth: SynthArgs,
    /// Single-tool checks timed per size.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub checks: usize,
    /// Keep each size's database under DIR/<size> (to inspect or to serve) instead of
    /// throwing it away.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Register how to reach one server: `--endpoint URL` (Streamable HTTP) or `-- COMMAND ARGS…` (stdio).
    Add(AddServerArgs),
    /// Register every server of a Claude Desktop / Cursor (`mcpServers`) or VS Code (`servers`) config.
    Import(ImportServersArgs),
    /// Live servers with their last sync (secrets masked).
    List(ListServersArgs),
    /// One server.
    Show(IdArgs),
}

#[derive(Debug, Args)]
pub struct AddServerArgs {
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: EnvironmentName,
    /// The server's name in the registry (its tools are registered under it).
    #[arg(long, value_name = "NAME", value_parser = server)]
    pub name: ServerName,
    /// The server's Streamable HTTP endpoint, e.g. https://mcp.example.com/mcp (`--url`
    /// names the mtgs server to call).
    #[arg(long, value_name = "URL", conflicts_with = "command")]
    pub endpoint: Option<String>,
    /// HTTP header `NAME: VALUE` (repeatable); stored, never printed back.
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "endpoint")]
    pub headers: Vec<String>,
    /// Environment variable `NAME=VALUE` for a stdio server (repeatable); stored, never printed back.
    #[arg(long = "env-var", value_name = "NAME=VALUE")]
    pub env_vars: Vec<String>,
    /// Working directory of a stdio server.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// The stdio server's command and arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportServersArgs {
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: EnvironmentName,
    /// The host's configuration file (`claude_desktop_config.json`, `.cursor/mcp.json`, `.vscode/mcp.json`).
    #[arg(long, short, value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ListServersArgs {
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: Option<EnvironmentName>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync the live servers of this environment [default: every environment].
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: Option<EnvironmentName>,
    /// Only the server of this name.
    #[arg(long, value_name = "NAME", value_parser = server)]
    pub server: Option<ServerName>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (shown this once; `--format json`: `{"key": ...}`).
    Create(CreateKeyArgs),
    /// List keys: prefix, name, role, creator, last use, revocation.
    List,
    /// Revoke a key by id: requests made with it fail from now on.
    Revoke(IdArgs),
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// viewer, ci-agent, developer, reviewer or admin.
    #[arg(long, value_name = "ROLE")]
    pub role: mtgs_core::Role,
    /// A name to recognise the key by [default: "ROLE key"].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Approval requests, oldest first.
    List(ListApprovalsArgs),
    /// One request with the conflicts behind it.
    Show(IdArgs),
    /// Approve a pending request: its tool becomes active. Not your own request.
    Approve(DecideArgs),
    /// Reject a pending request: its tool becomes blocked. A comment is required.
    Reject(DecideArgs),
}

#[derive(Debug, Args)]
pub struct ListApprovalsArgs {
    /// pending, approved, rejected, expired or superseded.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<mtgs_core::ApprovalStatus>,
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: Option<EnvironmentName>,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    pub id: i64,
    /// A note for the record (required to reject).
    #[arg(long, short, value_name = "TEXT")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Directory of `tools/list` answers, one JSON file per server (the file stem names it).
    #[arg(long, value_name = "DIR", default_value = "eval/corpus")]
    pub corpus: PathBuf,
    /// Labelled pairs and probes.
    #[arg(long, value_name = "FILE", default_value = "eval/labels.json")]
    pub labels: PathBuf,
    /// Which half of the labels to score.
    #[arg(long, value_enum, default_value_t = EvalHalf::Report)]
    pub half: EvalHalf,
    /// Seed of the tuning/report split.
    #[arg(long, default_value_t = 20_261_123)]
    pub seed: u64,
    /// A pair counts as flagged at this severity or above.
    #[arg(long, value_name = "SEVERITY", default_value = "medium")]
    pub min_severity: Severity,
    /// Floors to hold (`eval/floors.json`); their half, seed and severity are used.
    #[arg(long, value_name = "FILE")]
    pub floors: Option<PathBuf>,
    /// Print at most N false positives and N false negatives [default: all].
    #[arg(long, value_name = "N")]
    pub show: Option<usize>,
    /// Keep the scratch database in DIR (created if missing): a rerun reuses its cached
    /// vectors instead of embedding the corpus again.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Stage 3's bands for calibration runs: LOW,MEDIUM,HIGH,MUTUAL_RANK (e.g. 0.5,0.5,0.85,2).
    #[arg(long, value_name = "BANDS", hide = true)]
    pub semantic_bands: Option<String>,
    /// The local router's settings for calibration runs: EMBEDDING_WEIGHT,TEMPERATURE.
    #[arg(long, value_name = "WEIGHT,T", hide = true)]
    pub routing: Option<String>,
    /// Calibration runs: skip the all-pairs analysis and score routing only.
    #[arg(long, hide = true)]
    pub routing_only: bool,
    /// Also verify recommendations for up to N conflicts of each kind at --min-severity or
    /// above (every conflict of the corpus, not only labelled pairs): the share for which
    /// a fix lowers the severity, per conflict kind and per fix kind, with examples.
    #[arg(long, value_name = "N")]
    pub recommendations: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalHalf {
    Tuning,
    Report,
    All,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT.
    #[arg(long, value_name = "ADDR", env = env_vars::BIND, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Accept HS256 JWTs signed with this secret (at least 32 bytes; prefer the variable).
    #[arg(long, value_name = "SECRET", env = env_vars::JWT_SECRET, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Accept RS256/ES256 JWTs from this OIDC issuer, verified with its JWKS.
    #[arg(long, value_name = "URL", env = env_vars::OIDC_ISSUER)]
    pub oidc_issuer: Option<String>,
    /// Require this `aud` in JWTs.
    #[arg(long, value_name = "AUDIENCE", env = env_vars::JWT_AUDIENCE)]
    pub jwt_audience: Option<String>,
    /// Claim with the mtgs role (a string or a list; dotted for nesting, e.g. `realm_access.roles`).
    #[arg(long, value_name = "CLAIM", default_value = mtgs_server::DEFAULT_ROLE_CLAIM, env = env_vars::JWT_ROLE_CLAIM)]
    pub jwt_role_claim: String,
    /// Requests per minute per principal; 0 turns the limit off.
    #[arg(long, value_name = "N", default_value_t = 1200, env = env_vars::RATE_LIMIT)]
    pub rate_limit: u32,
    /// Requests a principal may send at once above the rate.
    #[arg(long, value_name = "N", default_value_t = 200, env = env_vars::RATE_BURST)]
    pub rate_burst: u32,
    /// Sync every live MCP server this often (`10m`, `1h`); `0` only on request and on
    /// `tools/list_changed`.
    #[arg(long, value_name = "DURATION", default_value = "10m", env = env_vars::SYNC_INTERVAL, value_parser = interval)]
    pub sync_interval: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Check tools against an environment without registering them (exit 1 when blocked).
    Check(CheckArgs),
    /// Register a server's tools in an environment (exit 1 when a tool is held for approval).
    Register(RegisterArgs),
    /// List registered tools.
    List(ListToolsArgs),
}

#[derive(Debug, Args)]
pub struct ToolFileArgs {
    /// One MCP Tool, an array of them, or a tools/list result {"tools": [...]}; `-` reads stdin.
    #[arg(long, short, value_name = "FILE")]
    pub file: PathBuf,
    /// Environment to check against (created on first registration).
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: EnvironmentName,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub tools: ToolFileArgs,
    /// Server that publishes the tools [default: the file's stem if it is a valid server name, else `local`].
    #[arg(long, short, value_name = "SERVER", value_parser = server)]
    pub server: Option<ServerName>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub tools: ToolFileArgs,
    /// Server that publishes the tools.
    #[arg(long, short, value_name = "SERVER", value_parser = server)]
    pub server: ServerName,
}

#[derive(Debug, Args)]
pub struct ListToolsArgs {
    /// Only this environment (an unknown one is an error).
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: Option<EnvironmentName>,
    #[arg(long, short, value_name = "SERVER", value_parser = server)]
    pub server: Option<ServerName>,
    /// active, pending_approval, blocked, deprecated or removed.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<ToolStatus>,
}

#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// List the tracked conflicts of an environment, most severe first.
    List(ListConflictsArgs),
    /// Show one conflict with its evidence.
    Show {
        /// Conflict id.
        id: i64,
    },
    /// Show fixes for a conflict (renames, description rewrites, narrower parameters,
    /// retirement of a duplicate), each verified by re-running detection with the fix
    /// applied; --apply registers the chosen fix's patched definition, which goes through
    /// approval like any change (exit 1 while it waits for one).
    Fix {
        /// Conflict id.
        id: i64,
        /// Register the patched definition of the fix numbered --pick.
        #[arg(long)]
        apply: bool,
        /// Which fix --apply registers, by its number in the list (1 = the best).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        pick: u16,
    },
    /// Triage a conflict: open, acknowledged, resolved or suppressed.
    SetStatus {
        /// Conflict id.
        id: i64,
        /// open, acknowledged, resolved or suppressed (suppressed and resolved stop it blocking).
        status: ConflictStatus,
    },
}

#[derive(Debug, Args)]
pub struct ListConflictsArgs {
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: EnvironmentName,
    /// critical, high, medium or low (exact).
    #[arg(long, value_name = "SEVERITY")]
    pub severity: Option<Severity>,
    /// lexical, schema, semantic or behavioural.
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<StageId>,
    /// open, acknowledged, resolved or suppressed.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<ConflictStatus>,
    /// Only conflicts involving this tool, SERVER/NAME.
    #[arg(long, value_name = "SERVER/NAME", value_parser = tool_key)]
    pub tool: Option<ToolKey>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: exit 0 when intact, 1 with the first broken entry.
    Verify,
    /// Print entries oldest first: `--format json` JSON lines, `--format cef` CEF lines.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Entries at or after this time, milliseconds since the Unix epoch.
    #[arg(long, value_name = "MS")]
    pub from: Option<i64>,
    /// Entries before this time, milliseconds since the Unix epoch.
    #[arg(long, value_name = "MS")]
    pub to: Option<i64>,
    /// Only this event (TOOL_REGISTERED, CONFLICT_STATUS_CHANGED, …).
    #[arg(long, value_name = "EVENT")]
    pub event: Option<mtgs_core::AuditEvent>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: EnvironmentName,
    /// Candidate tools (one MCP Tool, an array, or a tools/list result; `-` reads stdin).
    /// Without it, the probes are routed against the environment as it is.
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Server that publishes the candidates [default: the file's stem if it is a valid server name, else `local`].
    #[arg(long, short, value_name = "SERVER", value_parser = server)]
    pub server: Option<ServerName>,
    /// Probes to route too: a JSON array [{"query": "...", "expected": {"server": S, "name": N}}].
    #[arg(long, short, value_name = "FILE")]
    pub probes: Option<PathBuf>,
    /// Routing trials per probe (majority vote) [default: 3].
    #[arg(long, value_name = "N")]
    pub trials: Option<u32>,
}

#[derive(Debug, Args)]
pub struct EnvironmentArgs {
    #[arg(long = "env", short, value_name = "ENV", value_parser = environment)]
    pub environment: EnvironmentName,
}

fn environment(raw: &str) -> Result<EnvironmentName, String> {
    EnvironmentName::parse(raw).map_err(|error| error.reason)
}

fn tool_key(raw: &str) -> Result<ToolKey, String> {
    mtgs_server::convert::parse_tool_key(raw).map_err(|error| error.to_string())
}

/// A duration, or `0` for never (zero).
fn interval(raw: &str) -> Result<std::time::Duration, String> {
    if raw.trim() == "0" { Ok(std::time::Duration::ZERO) } else { duration(raw) }
}

/// `7d`, `12h`, `30m`, `45s`, or plain seconds.
fn duration(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let number: u64 = number.parse().map_err(|_| format!("'{raw}' is not a duration such as 7d, 12h, 30m or 45s"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        other => return Err(format!("unknown unit '{other}' in '{raw}': use s, m, h or d")),
    };
    if number == 0 {
        return Err("must be longer than zero".to_owned());
    }
    number.checked_mul(seconds).map(std::time::Duration::from_secs).ok_or_else(|| format!("'{raw}' is too long"))
}

fn server(raw: &str) -> Result<ServerName, String> {
    ServerName::parse(raw).map_err(|error| error.reason)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(super::duration("7d"), Ok(std::time::Duration::from_secs(7 * 86_400)));
        assert_eq!(super::duration("90"), Ok(std::time::Duration::from_secs(90)));
        assert!(super::duration("0h").is_err());
        assert!(super::duration("3w").expect_err("refused").contains("unknown unit"));
        assert!(super::duration("soon").is_err());
    }
}
