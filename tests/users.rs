//! `/users` end to end: HTTP through the local gateway to the functions under
//! cargo lambda watch, with state checked in the emulator's DynamoDB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::*;
use serde_json::{Value, json};

fn profile(user_id: &str) -> Value {
    json!({"email": format!("{user_id}@Example.COM"), "name": "Ada Lovelace", "country": "GB"})
}

async fn register(user_id: &str) -> reqwest::Response {
    http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(user_id, false))
        .json(&profile(user_id))
        .send()
        .await
        .unwrap()
}

async fn stored_item(user_id: &str) -> Option<Value> {
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    let out = ddb
        .get_item()
        .table_name(table("users"))
        .key("user_id", AttributeValue::S(user_id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.map(|item| {
        item.into_iter()
            .map(|(k, v)| (k, Value::String(v.as_s().cloned().unwrap_or_default())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    })
}

#[tokio::test]
async fn create_answers_201_and_stores_the_profile_then_a_repeat_is_409() {
    let id = fresh_user_id();
    let res = register(&id).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], format!("/users/{id}").as_str());
    assert!(res.headers().contains_key("x-request-id"));
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["user_id"], id.as_str());
    assert_eq!(
        user["email"],
        format!("{id}@example.com"),
        "domain is lower-cased"
    );
    assert_eq!(user["country"], "GB");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));

    let stored = stored_item(&id)
        .await
        .expect("profile is in the users table");
    assert_eq!(stored["email"], user["email"]);
    assert_eq!(stored["name"], "Ada Lovelace");

    let problem = assert_problem(register(&id).await, 409).await;
    assert_eq!(problem["type"], "urn:commerce:problem:conflict");
}

#[tokio::test]
async fn a_user_reads_itself_a_stranger_gets_403_and_an_admin_reads_anyone() {
    let id = fresh_user_id();
    assert_eq!(register(&id).await.status(), 201);
    let url = format!("{}/users/{id}", api_url());

    let res = http()
        .get(&url)
        .bearer_auth(token(&id, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["user_id"], id.as_str());

    let stranger = fresh_user_id();
    let res = http()
        .get(&url)
        .bearer_auth(token(&stranger, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;

    let res = http()
        .get(&url)
        .bearer_auth(token(&fresh_admin_id(), true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen, me);

    let missing = format!("{}/users/{}", api_url(), fresh_user_id());
    let res = http()
        .get(&missing)
        .bearer_auth(token(&fresh_admin_id(), true))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn patch_changes_only_given_fields_and_refuses_unknown_ones() {
    let id = fresh_user_id();
    assert_eq!(register(&id).await.status(), 201);
    let url = format!("{}/users/{id}", api_url());

    let res = http()
        .patch(&url)
        .bearer_auth(token(&id, false))
        .json(&json!({"name": "Ada", "nickname": "countess"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert_eq!(problem["errors"][0]["field"], "nickname");
    assert_eq!(
        stored_item(&id).await.unwrap()["name"],
        "Ada Lovelace",
        "nothing applied"
    );

    let res = http()
        .patch(&url)
        .bearer_auth(token(&id, false))
        .json(&json!({"country": "FR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["country"], "FR");
    assert_eq!(user["name"], "Ada Lovelace");
    assert!(user["updated_at"].as_str() >= user["created_at"].as_str());
    assert_eq!(stored_item(&id).await.unwrap()["country"], "FR");

    let res = http()
        .patch(&url)
        .bearer_auth(token(&fresh_user_id(), false))
        .json(&json!({"country": "DE"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
}

#[tokio::test]
async fn invalid_fields_are_400_with_field_errors_and_nothing_is_stored() {
    let id = fresh_user_id();
    let res = http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(&id, false))
        .json(&json!({"email": "not-an-email", "name": "Ada", "country": "GB"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert_eq!(problem["type"], "urn:commerce:problem:validation-error");
    assert_eq!(problem["errors"][0]["field"], "email");
    assert!(stored_item(&id).await.is_none());

    let res = http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(&id, false))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
}

#[tokio::test]
async fn missing_forged_or_expired_tokens_are_401_before_any_function_runs() {
    let id = fresh_user_id();
    let url = format!("{}/users", api_url());

    let res = http().post(&url).json(&profile(&id)).send().await.unwrap();
    assert_problem(res, 401).await;

    let forged = sign(&claims(&id, true), "not-the-secret");
    let res = http()
        .post(&url)
        .bearer_auth(forged)
        .json(&profile(&id))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;

    let mut expired = claims(&id, false);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    let expired = sign(
        &expired,
        &std::env::var("LOCAL_JWT_SECRET").unwrap_or("local-development-only".into()),
    );
    let res = http()
        .post(&url)
        .bearer_auth(expired)
        .json(&profile(&id))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;

    assert!(stored_item(&id).await.is_none(), "no function ran");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let id = fresh_user_id();
    let mut body = profile(&id);
    body["name"] = json!("x".repeat(64 * 1024));
    let res = http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(&id, false))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413).await;
    assert!(stored_item(&id).await.is_none());
}

#[tokio::test]
async fn delete_answers_204_and_the_profile_is_gone() {
    let id = fresh_user_id();
    assert_eq!(register(&id).await.status(), 201);
    let url = format!("{}/users/{id}", api_url());

    let res = http()
        .delete(&url)
        .bearer_auth(token(&fresh_user_id(), false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;

    let res = http()
        .delete(&url)
        .bearer_auth(token(&id, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(stored_item(&id).await.is_none());

    let res = http()
        .get(&url)
        .bearer_auth(token(&id, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    let res = http()
        .delete(&url)
        .bearer_auth(token(&id, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn the_client_correlation_id_comes_back_and_unknown_routes_are_404() {
    let id = fresh_user_id();
    let res = http()
        .get(format!("{}/users/{id}", api_url()))
        .bearer_auth(token(&id, false))
        .header("x-correlation-id", "checkout-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-correlation-id"], "checkout-42");
    assert_problem(res, 404).await;

    let res = http()
        .get(format!("{}/no-such-route", api_url()))
        .bearer_auth(token(&id, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}
