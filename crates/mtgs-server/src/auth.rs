//! Who is calling: `Authorization: Bearer` with an mtgs API key or a JWT (HS256 with a
//! configured secret; RS256/ES256 verified against an OIDC issuer's JWKS), then the
//! route's permission and the principal's rate limit. The service checks the permission
//! again inside each use case; this layer answers early with 401, 403 or 429.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mtgs_api::{ApiError, ErrorCode};
use mtgs_core::{AuthMethod, Permission, Principal, Role, Secret, is_api_key, sha256_hex};
use mtgs_service::Service;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::error::ErrorResponse;

/// How requests prove who they are, and how many each principal may send.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// JWT bearer tokens; `None` accepts API keys only.
    pub jwt: Option<JwtSettings>,
    /// Requests per principal; `None` turns the limit off.
    pub rate_limit: Option<RateLimit>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { jwt: None, rate_limit: Some(RateLimit::default()) }
    }
}

/// JWT bearer tokens.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// Accept HS256 tokens signed with this secret.
    pub hs256_secret: Option<Secret>,
    /// Accept RS256/ES256 tokens from this OIDC issuer, verified against the JWKS its
    /// discovery document names (`{issuer}/.well-known/openid-configuration`).
    pub oidc_issuer: Option<String>,
    /// Required `aud`; `None` does not check the audience.
    pub audience: Option<String>,
    /// Dotted path of the claim holding the mtgs role, a string or a list (the strongest
    /// recognised role wins): `roles`, `mtgs_role`, `realm_access.roles`.
    pub role_claim: String,
}

/// The default claim a token's role is read from.
pub const DEFAULT_ROLE_CLAIM: &str = "roles";

/// A sustained rate with a burst allowance, per principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    /// 1,200 requests a minute (20 a second) with bursts of 200: a dashboard, a CI fleet
    /// and a polling CLI fit; a runaway script does not.
    fn default() -> Self {
        Self {
            per_minute: NonZeroU32::new(1_200).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// The authentication layer's state.
pub(crate) struct Auth {
    service: Service,
    jwt: Option<JwtVerifier>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Hashes of tokens already seen, so USER_LOGIN is recorded once per token.
    logins: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("jwt", &self.jwt.is_some()).field("limited", &self.limiter.is_some()).finish()
    }
}

/// How many token hashes the login memory keeps before starting over.
const MAX_REMEMBERED_LOGINS: usize = 10_000;

impl Auth {
    pub(crate) fn new(service: Service, settings: &AuthSettings) -> anyhow::Result<Self> {
        let jwt = settings.jwt.as_ref().map(JwtVerifier::new).transpose()?;
        let limiter = settings
            .rate_limit
            .map(|limit| RateLimiter::keyed(Quota::per_minute(limit.per_minute).allow_burst(limit.burst)));
        Ok(Self { service, jwt, limiter, logins: Mutex::new(HashSet::new()) })
    }

    async fn principal(&self, token: &str) -> Result<Principal, ApiError> {
        if is_api_key(token) {
            return self.service.authenticate_key(token).await.map_err(|error| crate::convert::api_error(&error));
        }
        let Some(jwt) = &self.jwt else {
            return Err(unauthenticated("the bearer token is not a valid mtgs API key (this server accepts no JWTs)"));
        };
        let principal = jwt.verify(token).await.map_err(|reason| unauthenticated(&reason))?;
        let first_use = {
            let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
            if logins.len() >= MAX_REMEMBERED_LOGINS {
                logins.clear();
            }
            logins.insert(sha256_hex(token))
        };
        if first_use && let Err(error) = self.service.record_login(&principal, json!({"name": principal.name})).await {
            tracing::warn!(%error, actor = %principal.actor, "could not record the login");
        }
        Ok(principal)
    }
}

fn unauthenticated(reason: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, reason)
}

/// The permission a route needs. A route missing here needs `manage_keys` (admins only),
/// so a new route is closed until someone decides who may call it; the endpoint × role
/// test walks every route.
pub(crate) fn required_permission(method: &Method, path: &str) -> Permission {
    use Permission::*;
    let write = *method != Method::GET && *method != Method::HEAD;
    match (path, write) {
        ("/v1/me", false) => Read,
        ("/v1/tools/check", true) => Check,
        ("/v1/tools", true) => Register,
        ("/v1/tools", false) => Read,
        ("/v1/webhooks/ci-check", true) => CiGate,
        ("/v1/environments/{environment}/conflicts", false) => Read,
        ("/v1/conflicts/{id}" | "/v1/conflicts/{id}/recommendations", false) => Read,
        // Acknowledging is a developer's; the service asks more for other statuses.
        ("/v1/conflicts/{id}", true) => AcknowledgeConflict,
        ("/v1/environments/{environment}/analysis-runs", true) => RunAnalysis,
        ("/v1/analysis-runs/{id}", false) => Read,
        ("/v1/audit-logs" | "/v1/audit-logs/export" | "/v1/audit-logs/verify", false) => ReadAudit,
        ("/v1/simulations", true) => Simulate,
        ("/v1/simulations/{id}", false) => Read,
        ("/v1/environments/{environment}/health", false) => Read,
        ("/v1/approvals" | "/v1/approvals/{id}", false) => Read,
        ("/v1/approvals/{id}/approve" | "/v1/approvals/{id}/reject", true) => DecideApproval,
        ("/v1/api-keys" | "/v1/api-keys/{id}", _) => ManageKeys,
        ("/v1/servers" | "/v1/servers/import", true) => ManageServers,
        ("/v1/servers" | "/v1/servers/{id}", false) => Read,
        ("/v1/servers/{id}/sync", true) => Sync,
        // Each MCP tool is checked by the service for the principal's role.
        (mcp, _) if mcp == "/mcp" || mcp.starts_with("/mcp/") => Read,
        _ => ManageKeys,
    }
}

/// The middleware on every `/v1` route: 401 without a principal, 429 over its rate, 403
/// without the route's permission; otherwise the request carries the [`Principal`].
pub(crate) async fn authenticate(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let token = match bearer(&request) {
        Ok(token) => token,
        Err(error) => return challenge(error),
    };
    let principal = match auth.principal(&token).await {
        Ok(principal) => principal,
        Err(error) if error.code == ErrorCode::Unauthenticated => return challenge(error),
        Err(error) => return ErrorResponse(error).into_response(),
    };
    if let Some(limiter) = &auth.limiter
        && let Err(not_until) = limiter.check_key(&principal.actor)
    {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let error = ApiError::new(
            ErrorCode::RateLimited,
            format!("{} sent more requests than its rate allows; retry in {seconds} s", principal.actor),
        );
        let mut response = ErrorResponse(error).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return response;
    }
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path().to_owned(), |path| path.as_str().to_owned());
    let permission = required_permission(request.method(), &path);
    if !principal.allows(permission) {
        let error = mtgs_service::ServiceError::Forbidden { role: principal.role, permission };
        return ErrorResponse::from(error).into_response();
    }
    tracing::debug!(actor = %principal.actor, role = %principal.role, "authenticated");
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// A 401 with the `WWW-Authenticate` challenge RFC 6750 asks for.
fn challenge(error: ApiError) -> Response {
    let mut response = ErrorResponse(error).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"mtgs\""));
    response
}

fn bearer(request: &Request) -> Result<String, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err(unauthenticated(
            "authentication required: send `Authorization: Bearer <API key or JWT>` (create a key with `mtgs keys create`)",
        ));
    };
    let value = value.to_str().map_err(|_| unauthenticated("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthenticated("the Authorization header must be `Bearer <API key or JWT>`"));
    }
    Ok(token.trim().to_owned())
}

/// JWT verification, with the OIDC issuer's keys cached and refetched when a token names
/// a key id the cache lacks (at most every [`JWKS_REFETCH`]).
struct JwtVerifier {
    settings: JwtSettings,
    hs256: Option<DecodingKey>,
    http: reqwest::Client,
    keys: RwLock<Option<CachedKeys>>,
}

struct CachedKeys {
    keys: Vec<(Option<String>, Jwk)>,
    fetched: Instant,
}

const JWKS_REFETCH: Duration = Duration::from_secs(30);

impl JwtVerifier {
    fn new(settings: &JwtSettings) -> anyhow::Result<Self> {
        if settings.hs256_secret.is_none() && settings.oidc_issuer.is_none() {
            anyhow::bail!("JWT settings need an HS256 secret or an OIDC issuer");
        }
        if settings.hs256_secret.as_ref().is_some_and(|secret| secret.expose().len() < 32) {
            anyhow::bail!("the JWT HS256 secret must be at least 32 bytes long");
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self {
            settings: settings.clone(),
            hs256: settings.hs256_secret.as_ref().map(|secret| DecodingKey::from_secret(secret.expose().as_bytes())),
            http,
            keys: RwLock::new(None),
        })
    }

    async fn verify(&self, token: &str) -> Result<Principal, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the bearer token is neither an mtgs API key nor a JWT".to_owned())?;
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.settings.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let key = match header.alg {
            Algorithm::HS256 => {
                self.hs256.clone().ok_or("HS256 tokens are not accepted here (no secret is configured)")?
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let issuer = self
                    .settings
                    .oidc_issuer
                    .as_ref()
                    .ok_or("RS256/ES256 tokens are not accepted here (no OIDC issuer)")?;
                validation.set_issuer(&[issuer]);
                self.issuer_key(header.kid.as_deref()).await?
            }
            other => return Err(format!("JWT algorithm {other:?} is not accepted (HS256, RS256 or ES256)")),
        };
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|error| format!("the JWT is not valid: {error}"))?
            .claims;
        let subject =
            claims.get("sub").and_then(Value::as_str).filter(|sub| !sub.is_empty()).ok_or("the JWT has no `sub`")?;
        let role = role_from_claims(&claims, &self.settings.role_claim).ok_or_else(|| {
            format!(
                "the JWT's `{}` claim holds no mtgs role (one of {})",
                self.settings.role_claim,
                Role::ALL.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?;
        let name = ["name", "email", "preferred_username"]
            .iter()
            .find_map(|claim| claims.get(*claim).and_then(Value::as_str))
            .map(str::to_owned);
        Ok(Principal { actor: format!("jwt:{subject}"), role, method: AuthMethod::Jwt, name })
    }

    /// The issuer's key for `kid` (the only key when the token names none).
    async fn issuer_key(&self, kid: Option<&str>) -> Result<DecodingKey, String> {
        let pick = |cached: &CachedKeys| -> Option<Result<DecodingKey, String>> {
            let jwk = match kid {
                Some(kid) => cached.keys.iter().find(|(id, _)| id.as_deref() == Some(kid)).map(|(_, jwk)| jwk),
                None if cached.keys.len() == 1 => cached.keys.first().map(|(_, jwk)| jwk),
                None => None,
            }?;
            Some(DecodingKey::from_jwk(jwk).map_err(|error| format!("the issuer's key cannot be used: {error}")))
        };
        if let Some(cached) = self.keys.read().await.as_ref()
            && let Some(key) = pick(cached)
        {
            return key;
        }
        let mut keys = self.keys.write().await;
        let stale = keys.as_ref().is_none_or(|cached| cached.fetched.elapsed() >= JWKS_REFETCH);
        if stale {
            *keys = Some(self.fetch_keys().await?);
        }
        let cached = keys.as_ref().ok_or("the issuer's keys are not available")?;
        pick(cached).unwrap_or_else(|| Err(format!("the issuer has no key with id {}", kid.unwrap_or("(none)"))))
    }

    async fn fetch_keys(&self) -> Result<CachedKeys, String> {
        let issuer = self.settings.oidc_issuer.as_deref().unwrap_or_default().trim_end_matches('/');
        let discovery: Value = self.get_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
        if discovery.get("issuer").and_then(Value::as_str).map(|found| found.trim_end_matches('/')) != Some(issuer) {
            return Err(format!("the discovery document of {issuer} names another issuer"));
        }
        let jwks_uri =
            discovery.get("jwks_uri").and_then(Value::as_str).ok_or("the discovery document has no jwks_uri")?;
        let set: Value = self.get_json(jwks_uri).await?;
        // Keys mtgs cannot use (other types, encryption keys) are skipped, not fatal.
        let keys: Vec<(Option<String>, Jwk)> = set
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
                    .map(|jwk| (jwk.common.key_id.clone(), jwk))
                    .collect()
            })
            .unwrap_or_default();
        tracing::info!(issuer, keys = keys.len(), "fetched the OIDC issuer's keys");
        Ok(CachedKeys { keys, fetched: Instant::now() })
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| format!("cannot reach the OIDC issuer at {url}: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("the OIDC issuer answered {} for {url}", response.status()));
        }
        response.json().await.map_err(|error| format!("the OIDC issuer sent invalid JSON for {url}: {error}"))
    }
}

/// The strongest recognised role in the claim at `path` (a string or a list of strings).
fn role_from_claims(claims: &Value, path: &str) -> Option<Role> {
    let value = path.split('.').try_fold(claims, |value, part| value.get(part))?;
    let names: Vec<&str> = match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    Role::strongest(names.into_iter().filter_map(|name| name.parse::<Role>().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_a_string_or_the_strongest_of_a_list() {
        let claims = json!({"roles": ["viewer", "reviewer", "unknown"], "realm_access": {"roles": "developer"}});
        assert_eq!(role_from_claims(&claims, "roles"), Some(Role::Reviewer));
        assert_eq!(role_from_claims(&claims, "realm_access.roles"), Some(Role::Developer));
        assert_eq!(role_from_claims(&claims, "missing"), None);
        assert_eq!(role_from_claims(&json!({"roles": ["nobody"]}), "roles"), None);
    }

    #[test]
    fn unknown_routes_are_admin_only() {
        assert_eq!(required_permission(&Method::GET, "/v1/something-new"), Permission::ManageKeys);
        assert_eq!(required_permission(&Method::POST, "/v1/tools"), Permission::Register);
        assert_eq!(required_permission(&Method::GET, "/v1/tools"), Permission::Read);
    }
}
