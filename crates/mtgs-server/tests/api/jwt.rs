//! JWT bearer tokens (HS256 with a shared secret; RS256 and ES256 from a stand-in OIDC
//! issuer serving discovery and JWKS on loopback) and per-principal rate limits.

use std::num::NonZeroU32;

use axum::Json;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mtgs_core::Secret;
use mtgs_server::{AuthSettings, JwtSettings, RateLimit};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, client_with, spawn_app_with};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const RSA_PEM: &[u8] = include_bytes!("../fixtures/oidc-rsa.pem");
const EC_PEM: &[u8] = include_bytes!("../fixtures/oidc-ec.pem");

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

fn claims(sub: &str, roles: Value, issuer: &str) -> Value {
    json!({"sub": sub, "roles": roles, "iss": issuer, "exp": now() + 600, "name": format!("{sub} example")})
}

fn sign(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signed")
}

fn settings(jwt: JwtSettings) -> AuthSettings {
    AuthSettings { jwt: Some(jwt), rate_limit: None }
}

async fn me(address: &str, token: &str) -> (StatusCode, Value) {
    let response = client_with(Some(token)).get(format!("{address}/v1/me")).send().await.expect("sent");
    (response.status(), response.json().await.expect("JSON"))
}

#[tokio::test]
async fn hs256_tokens_carry_subject_and_role_and_a_login_is_audited_once() {
    let jwt =
        JwtSettings { hs256_secret: Some(Secret::new(SECRET)), role_claim: "roles".into(), ..JwtSettings::default() };
    let app = spawn_app_with(settings(jwt), mtgs_service::DEFAULT_APPROVAL_TTL, None).await;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let token = sign(Algorithm::HS256, None, &key, &claims("alice", json!(["viewer", "reviewer"]), "anyone"));
    for _ in 0..2 {
        let (status, body) = me(&app.address, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["actor"], "jwt:alice");
        assert_eq!(body["role"], "reviewer", "the strongest role of the list");
        assert_eq!(body["method"], "jwt");
        assert_eq!(body["name"], "alice example");
    }
    let (_, logins) = app.get("/v1/audit-logs?event=USER_LOGIN").await;
    let logins = logins["entries"].as_array().expect("entries").clone();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["actor"], "jwt:alice");

    let refused = [
        (
            "wrong secret",
            sign(
                Algorithm::HS256,
                None,
                &EncodingKey::from_secret(b"another-secret-of-32-bytes-or-more!"),
                &claims("eve", json!("admin"), "x"),
            ),
        ),
        ("expired", sign(Algorithm::HS256, None, &key, &json!({"sub": "bob", "roles": "admin", "exp": now() - 3_600}))),
        ("no role", sign(Algorithm::HS256, None, &key, &claims("carol", json!(["superuser"]), "x"))),
        ("no subject", sign(Algorithm::HS256, None, &key, &json!({"roles": "admin", "exp": now() + 600}))),
        ("not a JWT", "eyJ.garbage".to_owned()),
    ];
    for (case, token) in refused {
        let (status, body) = me(&app.address, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{case}: {body}");
    }
    // RS256 is refused without an issuer, even if correctly signed by someone.
    let rsa = EncodingKey::from_rsa_pem(RSA_PEM).expect("an RSA key");
    let (status, body) =
        me(&app.address, &sign(Algorithm::RS256, Some("k1"), &rsa, &claims("dan", json!("admin"), "x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("no OIDC issuer")), "{body}");
}

/// A stand-in OIDC issuer: discovery and a JWKS with an RSA and an EC key, plus a key
/// type mtgs cannot use (skipped, not fatal).
async fn spawn_issuer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let issuer = format!("http://{}", listener.local_addr().expect("an address"));
    let mut rsa =
        Jwk::from_encoding_key(&EncodingKey::from_rsa_pem(RSA_PEM).expect("RSA"), Algorithm::RS256).expect("JWK");
    rsa.common.key_id = Some("rsa-1".into());
    let mut ec = Jwk::from_encoding_key(&EncodingKey::from_ec_pem(EC_PEM).expect("EC"), Algorithm::ES256).expect("JWK");
    ec.common.key_id = Some("ec-1".into());
    let mut keys = serde_json::to_value(JwkSet { keys: vec![rsa, ec] }).expect("JSON");
    keys["keys"].as_array_mut().expect("keys").push(json!({"kty": "unknown-type", "kid": "odd"}));
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
        .route("/jwks", get(move || async move { Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    issuer
}

#[tokio::test]
async fn rs256_and_es256_tokens_are_verified_against_the_issuers_jwks() {
    let issuer = spawn_issuer().await;
    let jwt = JwtSettings {
        oidc_issuer: Some(issuer.clone()),
        audience: Some("mtgs".into()),
        role_claim: "realm_access.roles".into(),
        ..JwtSettings::default()
    };
    let app = spawn_app_with(settings(jwt), mtgs_service::DEFAULT_APPROVAL_TTL, None).await;
    let rsa = EncodingKey::from_rsa_pem(RSA_PEM).expect("RSA");
    let ec = EncodingKey::from_ec_pem(EC_PEM).expect("EC");
    let good = |sub: &str, role: &str| json!({"sub": sub, "iss": issuer, "aud": "mtgs", "exp": now() + 600, "realm_access": {"roles": [role]}});
    let (status, body) =
        me(&app.address, &sign(Algorithm::RS256, Some("rsa-1"), &rsa, &good("rita", "developer"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["actor"].as_str(), body["role"].as_str()), (Some("jwt:rita"), Some("developer")));
    let (status, body) = me(&app.address, &sign(Algorithm::ES256, Some("ec-1"), &ec, &good("erin", "admin"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");

    let mut other_issuer = good("mallory", "admin");
    other_issuer["iss"] = json!("https://evil.example");
    let mut other_audience = good("mallory", "admin");
    other_audience["aud"] = json!("another-app");
    let refused = [
        ("unknown kid", sign(Algorithm::RS256, Some("rsa-2"), &rsa, &good("mallory", "admin"))),
        ("key of another type under the kid", sign(Algorithm::RS256, Some("ec-1"), &rsa, &good("mallory", "admin"))),
        ("other issuer", sign(Algorithm::RS256, Some("rsa-1"), &rsa, &other_issuer)),
        ("other audience", sign(Algorithm::ES256, Some("ec-1"), &ec, &other_audience)),
        (
            "HS256 without a secret",
            sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET.as_bytes()), &good("mallory", "admin")),
        ),
    ];
    for (case, token) in refused {
        let (status, body) = me(&app.address, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    }
    // A JWT principal is subject to the role matrix like any other.
    let viewer = sign(Algorithm::RS256, Some("rsa-1"), &rsa, &good("vic", "viewer"));
    let response = client_with(Some(&viewer)).get(format!("{}/v1/api-keys", app.address)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_principal_over_its_rate_gets_429_with_retry_after_and_others_do_not() {
    let limit = RateLimit { per_minute: NonZeroU32::new(6).expect("6"), burst: NonZeroU32::new(3).expect("3") };
    let app =
        spawn_app_with(AuthSettings { jwt: None, rate_limit: Some(limit) }, mtgs_service::DEFAULT_APPROVAL_TTL, None)
            .await;
    let (_, other) = app.service.create_api_key(Some("other"), mtgs_core::Role::Viewer).await.expect("a key");
    for _ in 0..3 {
        let (status, body) = app.get("/v1/tools").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = app.client.get(format!("{}/v1/tools", app.address)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().expect("ASCII").parse().expect("seconds");
    assert!((1..=10).contains(&retry), "one request comes back every 10 s: {retry}");
    let body: Value = response.json().await.expect("JSON");
    assert_error(StatusCode::TOO_MANY_REQUESTS, &body, 429, "rate_limited");
    // Another principal has its own budget; the open probes have none.
    let response =
        client_with(Some(other.expose())).get(format!("{}/v1/tools", app.address)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    for _ in 0..5 {
        let (status, _) = app.get("/health").await;
        assert_eq!(status, StatusCode::OK);
    }
}
