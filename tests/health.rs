//! `GET /health` end to end: the one route without an identity, through the local gateway to
//! the function under cargo lambda watch, asking the emulator's tables and bus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use e2e::*;
use serde_json::Value;

#[tokio::test]
async fn health_answers_without_a_token_that_the_region_is_healthy() {
    let response = http()
        .get(format!("{}/health", api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    let checks = body["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ok"] == true), "{body}");
    // Every table a request touches, and the bus.
    assert_eq!(checks.len(), 6, "{body}");
}

#[tokio::test]
async fn health_ignores_a_bad_token_instead_of_answering_401() {
    let response = http()
        .get(format!("{}/health", api_url()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
