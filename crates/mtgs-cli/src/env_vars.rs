//! Every environment variable mtgs reads, in one place: the clap definitions and the
//! settings resolution name them through these constants, and CLI.md documents them
//! (a test holds the two together).

/// Base URL of a running mtgs server; when set, commands call its REST API.
pub const URL: &str = "MTGS_URL";
/// Bearer token sent to the server as `Authorization: Bearer …`.
pub const TOKEN: &str = "MTGS_TOKEN";
/// Directory of the local database (`mtgs.db`).
pub const DATA_DIR: &str = "MTGS_DATA_DIR";
/// Database URL; overrides the data directory.
pub const DATABASE_URL: &str = "MTGS_DATABASE_URL";
/// Address `mtgs serve` listens on.
pub const BIND: &str = "MTGS_BIND";
/// Log filter (`info`, `mtgs_server=debug,tower_http=debug`).
pub const LOG: &str = "MTGS_LOG";
/// Stage 3's encoder: `auto`, `bundled`, `local` or `off`.
pub const EMBEDDER: &str = "MTGS_EMBEDDER";
/// Directory of a local sentence-encoder model (config.json, tokenizer.json, model.safetensors).
pub const EMBED_MODEL_DIR: &str = "MTGS_EMBED_MODEL_DIR";
/// Tokens of a fingerprint the local model reads (default 128).
pub const EMBED_MAX_TOKENS: &str = "MTGS_EMBED_MAX_TOKENS";
/// Base URL of an OpenAI-compatible embeddings API (`--embedder openai`).
pub const EMBED_URL: &str = "MTGS_EMBED_URL";
/// Model (Azure: deployment) of the embeddings API.
pub const EMBED_MODEL: &str = "MTGS_EMBED_MODEL";
/// Length of the embeddings API's vectors.
pub const EMBED_DIMENSIONS: &str = "MTGS_EMBED_DIMENSIONS";
/// `api-version` for Azure OpenAI.
pub const EMBED_AZURE_API_VERSION: &str = "MTGS_EMBED_AZURE_API_VERSION";
/// API key of the embeddings API. Never printed.
pub const EMBED_API_KEY: &str = "MTGS_EMBED_API_KEY";
/// Any non-empty value turns colour off (<https://no-color.org>).
pub const ROUTER: &str = "MTGS_ROUTER";
pub const PROBES_PER_TOOL: &str = "MTGS_PROBES_PER_TOOL";
pub const ROUTER_URL: &str = "MTGS_ROUTER_URL";
pub const ROUTER_MODEL: &str = "MTGS_ROUTER_MODEL";
pub const ROUTER_AZURE_API_VERSION: &str = "MTGS_ROUTER_AZURE_API_VERSION";
pub const ROUTER_API_KEY: &str = "MTGS_ROUTER_API_KEY";
/// How long approval requests stay pending (`7d`, `12h`, `30m`).
pub const APPROVAL_TTL: &str = "MTGS_APPROVAL_TTL";
/// HS256 secret for JWT bearer tokens (`serve`). Never printed.
pub const JWT_SECRET: &str = "MTGS_JWT_SECRET";
/// OIDC issuer whose JWKS verifies RS256/ES256 tokens (`serve`).
pub const OIDC_ISSUER: &str = "MTGS_OIDC_ISSUER";
/// Required `aud` of JWTs (`serve`).
pub const JWT_AUDIENCE: &str = "MTGS_JWT_AUDIENCE";
/// Claim holding the mtgs role in JWTs (`serve`, default `roles`).
pub const JWT_ROLE_CLAIM: &str = "MTGS_JWT_ROLE_CLAIM";
/// Requests per minute per principal (`serve`; 0 turns the limit off).
pub const RATE_LIMIT: &str = "MTGS_RATE_LIMIT";
/// Burst allowance of the rate limit (`serve`).
pub const RATE_BURST: &str = "MTGS_RATE_BURST";
/// How often `serve` syncs live MCP servers (`0` = only on request).
pub const SYNC_INTERVAL: &str = "MTGS_SYNC_INTERVAL";
pub const NO_COLOR: &str = "NO_COLOR";
/// The local operator's name in the audit log (`local:$USER`), else `LOGNAME`.
pub const USER: &str = "USER";
pub const LOGNAME: &str = "LOGNAME";
/// Base of the default data directory (`$XDG_DATA_HOME/mtgs`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Fallback base of the default data directory (`$HOME/.local/share/mtgs`).
pub const HOME: &str = "HOME";

/// All of the above, for the documentation test.
#[cfg(test)]
pub const ALL: &[&str] = &[
    URL,
    TOKEN,
    APPROVAL_TTL,
    JWT_SECRET,
    OIDC_ISSUER,
    JWT_AUDIENCE,
    JWT_ROLE_CLAIM,
    RATE_LIMIT,
    RATE_BURST,
    SYNC_INTERVAL,
    DATA_DIR,
    DATABASE_URL,
    BIND,
    LOG,
    EMBEDDER,
    EMBED_MODEL_DIR,
    EMBED_MAX_TOKENS,
    EMBED_URL,
    EMBED_MODEL,
    EMBED_DIMENSIONS,
    EMBED_AZURE_API_VERSION,
    EMBED_API_KEY,
    ROUTER,
    PROBES_PER_TOOL,
    ROUTER_URL,
    ROUTER_MODEL,
    ROUTER_AZURE_API_VERSION,
    ROUTER_API_KEY,
    NO_COLOR,
    USER,
    LOGNAME,
    XDG_DATA_HOME,
    HOME,
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_environment_variable_is_documented_in_cli_md() {
        let reference = include_str!("../CLI.md");
        for name in super::ALL {
            assert!(reference.contains(&format!("`{name}`")), "CLI.md does not document {name}");
        }
    }
}
