//! Helpers for the end-to-end tests: the local API's address, tokens the local JWT
//! authorizer accepts, fresh ids so tests never share state, emulator clients, and the
//! problem-document check every error response must pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Base URL of the local gateway (`LOCAL_API_URL`, set by `local/stack.py`).
pub fn api_url() -> String {
    std::env::var("LOCAL_API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".to_owned())
}

fn jwt_secret() -> String {
    std::env::var("LOCAL_JWT_SECRET").unwrap_or_else(|_| "local-development-only".to_owned())
}

/// Signs `claims` as an HS256 JWT with `secret`.
pub fn sign(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// The claims of a token for `user_id`, valid for an hour (`admin` adds the admin group).
pub fn claims(user_id: &str, admin: bool) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "sub": user_id,
        "email": format!("{user_id}@example.com"),
        "iss": "local",
        "aud": "commerce",
        "iat": now,
        "exp": now + 3600,
        "token_use": "id",
    });
    if admin {
        c["cognito:groups"] = json!(["admin"]);
    }
    c
}

/// A token the local authorizer accepts.
pub fn token(user_id: &str, admin: bool) -> String {
    sign(&claims(user_id, admin), &jwt_secret())
}

/// A user id no other test uses.
pub fn fresh_user_id() -> String {
    format!("u-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// An admin id no other test uses.
pub fn fresh_admin_id() -> String {
    format!("admin-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// An HTTP client for the local API.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .unwrap()
}

/// SDK configuration for the emulator (`AWS_ENDPOINT_URL` etc. from the stack).
pub async fn aws() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the tests through `make test` (local/stack.py exec)"
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Physical table name as the local stack provisions it.
pub fn table(name: &str) -> String {
    format!("commerce-{name}")
}

/// Asserts `response` is an RFC 9457 problem document with `status`, and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type {content_type:?} is not problem+json"
    );
    let body: Value = response.json().await.expect("problem body is JSON");
    for member in ["type", "title", "detail", "instance"] {
        let v = body[member].as_str().unwrap_or_default();
        assert!(
            !v.is_empty(),
            "problem member {member} missing or empty in {body}"
        );
    }
    assert!(
        body["type"].as_str().unwrap().contains(':'),
        "type must be a URI: {body}"
    );
    assert_eq!(body["status"], status, "status member differs: {body}");
    if let Some(id) = request_id {
        assert_eq!(
            body["instance"],
            id.as_str(),
            "instance is not the request id"
        );
    }
    if let Some(errors) = body.get("errors") {
        for e in errors.as_array().expect("errors is a list") {
            assert!(
                e["field"].is_string() && e["message"].is_string(),
                "bad field error {e}"
            );
        }
    }
    body
}
