//! Helpers for the end-to-end tests: the local API's address, tokens the local JWT
//! authorizer accepts, fresh ids so tests never share state, emulator clients, and the
//! problem-document check every error response must pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    // reqwest is built without a crypto provider of its own (the workspace's TLS is rustls
    // on ring, given to each client): the tests' client takes ring as the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    // The functions' own loader, with the one HTTPS client (the SDK crates carry none).
    shared::aws::sdk_config()
        .await
        .expect("the SDK configuration")
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
    // A replayed answer (idempotency) is the first answer verbatim: its instance names the
    // first request, not this one.
    let replayed = response.headers().contains_key("idempotent-replayed");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|_| !replayed)
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

/// A SKU no other test uses.
pub fn fresh_sku(prefix: &str) -> String {
    let id = ulid::Ulid::new().to_string();
    format!("{prefix}-{}", &id[id.len() - 12..])
}

/// Creates a product as an admin with `on_hand` units; returns the product JSON.
pub async fn create_product(sku: &str, amount: &str, currency: &str, on_hand: i64) -> Value {
    let admin = token(&fresh_admin_id(), true);
    let res = http()
        .put(format!("{}/products/{sku}", api_url()))
        .bearer_auth(&admin)
        .json(&json!({"name": format!("Product {sku}"), "price": {"amount": amount, "currency": currency}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "creating {sku}");
    if on_hand == 0 {
        return res.json().await.unwrap();
    }
    let res = http()
        .post(format!("{}/products/{sku}/stock", api_url()))
        .bearer_auth(&admin)
        .json(&json!({"delta": on_hand}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "stocking {sku}");
    res.json().await.unwrap()
}

/// An order request for `lines` (sku, quantity), paid with `token`.
pub fn order_body(lines: &[(&str, u32)], token: &str) -> Value {
    json!({
        "items": lines.iter().map(|(s, q)| json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
        "shipping": {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
        "payment": {"token": token}
    })
}

/// `POST /orders/{order_id}/cancel` as `bearer`.
pub async fn cancel_order(order_id: &str, bearer: &str) -> reqwest::Response {
    http()
        .post(format!("{}/orders/{order_id}/cancel", api_url()))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// Physical queue name as the local stack provisions it.
pub fn queue(name: &str) -> String {
    format!("commerce-{name}")
}

/// The URL of the queue the local stack names `<prefix>-<name>`.
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.get_queue_url()
        .queue_name(queue(name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Collects the messages of a queue that several tests of one binary read at once:
/// whatever any test receives is kept here, so each finds its own.
static RECEIVED: std::sync::Mutex<Vec<(String, Value)>> = std::sync::Mutex::new(Vec::new());

/// EventBridge events (as JSON) on `queue_name` for which `wanted` holds, waiting up to
/// `wait` for at least `at_least` of them, then a little longer to catch duplicates.
pub async fn events_on_queue(
    queue_name: &str,
    at_least: usize,
    wait: std::time::Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&aws().await);
    let url = queue_url(&sqs, queue_name).await;
    let started = std::time::Instant::now();
    let mut settled_at: Option<std::time::Instant> = None;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or("null")).unwrap();
            RECEIVED.lock().unwrap().push((queue_name.to_owned(), body));
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        let found: Vec<Value> = RECEIVED
            .lock()
            .unwrap()
            .iter()
            .filter(|(q, v)| q == queue_name && wanted(v))
            .map(|(_, v)| v.clone())
            .collect();
        if found.len() >= at_least && settled_at.is_none() {
            settled_at = Some(std::time::Instant::now());
        }
        let settled = settled_at.is_some_and(|t| t.elapsed() > std::time::Duration::from_secs(2));
        if settled || started.elapsed() > wait {
            return found;
        }
    }
}

/// Validates an event's `detail` against its schema in `events/schemas/`.
pub fn assert_valid_event(event: &Value) {
    let name = event["detail-type"].as_str().expect("detail-type");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../events/schemas/{name}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&event["detail"])
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} event does not match its schema: {errors:?}\n{event}"
    );
}

/// Subscribes a queue of the tests' own (`<prefix>-<name>`) to every event on the bus,
/// as an operator would to watch it. Consumers' queues are theirs: tests read this one.
pub async fn listen_to_bus(name: &str) {
    let sources = [
        "commerce.orders",
        "commerce.inventory",
        "commerce.payments",
        "commerce.fraud",
        "commerce.users",
    ];
    listen_to_bus_with(name, name, json!({"source": sources})).await;
}

/// Subscribes the tests' queue `<prefix>-<name>` to the events matching `pattern`, through
/// the rule `rule` on the bus.
pub async fn listen_to_bus_with(name: &str, rule: &str, pattern: Value) {
    let sdk = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name(queue(name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    events
        .put_rule()
        .name(rule)
        .event_bus_name("commerce")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(rule)
        .event_bus_name("commerce")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `infra/declaration.json`.
pub fn declaration() -> Value {
    let text = std::fs::read_to_string(root().join("infra/declaration.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The Lambda binaries of the function crates, from `cargo metadata`: name → (package,
/// source path). Declared tools (the operator's command line) are left out: they are
/// binaries, not Lambdas, and must be built by the package the declaration names. So is
/// the deployed binary (the declaration's `lambda.package`), which runs each of these
/// functions' `main`.
pub fn workspace_binaries() -> BTreeMap<String, (String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let functions_dir = root().join("functions");
    let tools = declaration()["tools"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let deployed = declaration()["lambda"]["package"].clone();
    let mut bins = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        if !manifest.starts_with(&functions_dir) || package["name"] == deployed {
            continue;
        }
        for target in package["targets"].as_array().unwrap() {
            let name = target["name"].as_str().unwrap();
            if let Some(tool) = tools.get(name) {
                assert_eq!(
                    tool["package"], package["name"],
                    "tool {name} is built by another package than declared"
                );
                continue;
            }
            if target["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "bin")
            {
                bins.insert(
                    target["name"].as_str().unwrap().to_owned(),
                    (
                        package["name"].as_str().unwrap().to_owned(),
                        PathBuf::from(target["src_path"].as_str().unwrap()),
                    ),
                );
            }
        }
    }
    bins
}

/// Replaces the emulator's fault injection file (`LOCAL_FAULTS_FILE`, set by
/// local/stack.py) with `doc`, whole: written beside it, then renamed, so the emulator
/// never reads half of it.
pub fn write_faults(doc: &str) {
    let path =
        std::env::var("LOCAL_FAULTS_FILE").expect("LOCAL_FAULTS_FILE is set by local/stack.py");
    let partial = format!("{path}.{}.tmp", std::process::id());
    std::fs::write(&partial, doc).unwrap();
    std::fs::rename(&partial, &path).unwrap();
}

/// Sets the payment provider's fault rules of `name` (a test's or a cell's own file in
/// `LOCAL_PROVIDER_FAULTS_DIR`, read by local/payment_provider.py), written whole.
pub fn write_provider_faults(name: &str, rules: &Value) {
    let dir = std::env::var("LOCAL_PROVIDER_FAULTS_DIR")
        .expect("LOCAL_PROVIDER_FAULTS_DIR is set by local/stack.py");
    let path = std::path::Path::new(&dir).join(format!("{name}.json"));
    let partial = std::path::Path::new(&dir).join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&partial, serde_json::json!({ "rules": rules }).to_string()).unwrap();
    std::fs::rename(&partial, &path).unwrap();
}

/// The local payment provider's address and its test key, as the functions get them
/// (the declaration's local settings and secret).
pub fn payment_provider() -> (String, String) {
    let decl = declaration();
    let secret = &decl["secrets"]["payment-provider"];
    (
        secret["settings"]["PAYMENT_PROVIDER_URL"]["local"]
            .as_str()
            .unwrap()
            .to_owned(),
        secret["local_value"].as_str().unwrap().to_owned(),
    )
}

/// A payment intent as the local payment provider has it (`GET /v1/payment_intents/{id}`).
pub async fn provider_intent(intent_id: &str) -> Value {
    let (url, key) = payment_provider();
    let response = http()
        .get(format!("{url}/v1/payment_intents/{intent_id}"))
        .basic_auth(key, Some(""))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{intent_id}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// The provider's intent behind the payment of `order_id`: the one its row in the
/// payments table names (none: no payment, or the seal of an order given up before any).
pub async fn provider_intent_of(order_id: &str) -> Option<Value> {
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    let item = ddb
        .get_item()
        .table_name(table("payments"))
        .key(
            "order_id",
            aws_sdk_dynamodb::types::AttributeValue::S(order_id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    let intent = item.get("provider_reference")?.as_s().ok()?.clone();
    Some(provider_intent(&intent).await)
}

/// The accountant's question asked of the provider's books for an order that ended in
/// `status`: money is held (`requires_capture`) or taken and not all given back
/// (`succeeded`) only for a `CONFIRMED` order, and a `CONFIRMED` order's money was taken
/// and kept. `None` when they agree.
pub fn provider_disagrees(status: &str, intent: Option<&Value>) -> Option<String> {
    let (state, amount, refunded) = intent.map_or(("none", 0, 0), |i| {
        (
            i["status"].as_str().unwrap_or("?"),
            i["amount"].as_i64().unwrap_or(0),
            i["latest_charge"]["amount_refunded"].as_i64().unwrap_or(0),
        )
    });
    let held = state == "requires_capture";
    let kept = state == "succeeded" && refunded < amount;
    match status {
        "CONFIRMED" if state != "succeeded" || refunded != 0 => Some(format!(
            "CONFIRMED, but the provider's intent is {state} ({refunded} of {amount} refunded)"
        )),
        "CONFIRMED" => None,
        "CANCELLED" if state == "succeeded" && refunded != amount => Some(format!(
            "CANCELLED, but the provider gave back {refunded} of {amount}"
        )),
        _ if held || kept => Some(format!(
            "{status}, but the provider holds the customer's money: intent {state}, {refunded} of {amount} refunded"
        )),
        _ => None,
    }
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// Runs `commerce-ops` (built by `make test` before the tests) with the stack's settings
/// (the environment local/stack.py gives the tests); its success and its output.
pub fn commerce_ops(args: &[&str]) -> (bool, String) {
    let bin = target_dir().join("debug/commerce-ops");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build -p ops` (make test does)",
        bin.display()
    );
    let out = std::process::Command::new(&bin)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("commerce-ops {}:\n{text}", args.join(" "));
    (out.status.success(), text)
}

/// The executions of the local stack's state machine `machine` (`place-order`,
/// `cancel-order`) whose names start with `prefix`: (name, start, status), oldest first.
pub async fn executions(
    machine: &str,
    prefix: &str,
) -> Vec<(String, aws_sdk_sfn::primitives::DateTime, String)> {
    let sfn = aws_sdk_sfn::Client::new(&aws().await);
    let machines = sfn.list_state_machines().send().await.unwrap();
    let Some(arn) = machines
        .state_machines()
        .iter()
        .find(|m| m.name() == format!("commerce-{machine}"))
        .map(|m| m.state_machine_arn().to_owned())
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for e in page.unwrap().executions() {
            if e.name().starts_with(prefix) {
                found.push((
                    e.name().to_owned(),
                    *e.start_date(),
                    e.status().as_str().to_owned(),
                ));
            }
        }
    }
    found.sort_by_key(|(_, at, _)| *at);
    found
}
