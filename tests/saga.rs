//! The place-order saga end to end, one test per path: HTTP through the local gateway,
//! the outbox relay, the bus, the saga starter, Step Functions in the emulator running
//! the real definition, the Rust steps under cargo lambda watch, the fraud scorer on the
//! Kinesis stream. Each test checks the order's final status and reason, the payment, the
//! stock counts and the events, then the invariants: no stock left reserved by a finished
//! order, no payment left AUTHORIZED for a rejected or cancelled order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use e2e::*;
use serde_json::{Value, json};

mod saga_support;
use saga_support::*;

#[tokio::test]
async fn a_good_order_is_confirmed_paid_and_its_stock_committed() {
    listen_to_bus("e2e-saga-events").await;
    let p = place("19.99", 10, 2, "tok_visa").await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(o["status"], "CONFIRMED", "{o}");
    assert!(o.get("status_reason").is_none());
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "CAPTURED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 8, "reserved": 0, "available": 8})
    );
    assert_eq!(
        events_of(&p.order_id, 7).await,
        sorted(&[
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "FraudAssessed",
            "PaymentCaptured",
            "StockCommitted",
            "OrderConfirmed"
        ])
    );
    assert_invariants(&p, &o).await;
}

#[tokio::test]
async fn orders_racing_for_the_last_units_confirm_one_and_reject_the_other_out_of_stock() {
    listen_to_bus("e2e-saga-events").await;
    let sku = fresh_sku("LAST");
    create_product(&sku, "5.00", "EUR", 3).await;
    let (a, b) = (fresh_user_id(), fresh_user_id());
    // Both pass intake (3 available each time), only one can be reserved.
    let (oa, ob) = tokio::join!(
        place_for(&a, &sku, 2, "tok_visa"),
        place_for(&b, &sku, 2, "tok_visa")
    );
    let ra = wait_for(&a, &oa, &["CONFIRMED", "REJECTED"]).await;
    let rb = wait_for(&b, &ob, &["CONFIRMED", "REJECTED"]).await;
    let mut outcomes = vec![
        (ra["status"].clone(), ra.get("status_reason").cloned()),
        (rb["status"].clone(), rb.get("status_reason").cloned()),
    ];
    outcomes.sort_by_key(|o| o.0.to_string());
    assert_eq!(
        outcomes,
        vec![
            (json!("CONFIRMED"), None),
            (json!("REJECTED"), Some(json!("OUT_OF_STOCK")))
        ]
    );
    assert_eq!(
        stock(&sku).await,
        json!({"on_hand": 1, "reserved": 0, "available": 1})
    );
    let (rejected, user) = if ra["status"] == "REJECTED" {
        (&oa, &a)
    } else {
        (&ob, &b)
    };
    assert!(
        payment(user, rejected).await.is_none(),
        "no payment was attempted"
    );
    assert_eq!(
        events_of(rejected, 2).await,
        sorted(&["OrderPlaced", "OrderRejected"])
    );
}

async fn rejected_with(token: &str, reason: &str, payment_status: Option<&str>, events: &[&str]) {
    listen_to_bus("e2e-saga-events").await;
    let p = place("10.00", 5, 1, token).await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some(reason)),
        "{o}"
    );
    let pay = payment(&p.user, &p.order_id).await;
    assert_eq!(
        pay.as_ref().map(|p| p["status"].as_str().unwrap()),
        payment_status
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 5, "reserved": 0, "available": 5}),
        "stock released"
    );
    assert_eq!(events_of(&p.order_id, events.len()).await, sorted(events));
    assert_invariants(&p, &o).await;
}

#[tokio::test]
async fn a_declined_card_rejects_the_order_and_releases_the_stock() {
    rejected_with(
        "tok_declined",
        "PAYMENT_DECLINED",
        Some("DECLINED"),
        &[
            "OrderPlaced",
            "StockReserved",
            "PaymentDeclined",
            "StockReleased",
            "OrderRejected",
        ],
    )
    .await;
}

#[tokio::test]
async fn insufficient_funds_reject_the_order_as_declined() {
    rejected_with(
        "tok_insufficient_funds",
        "PAYMENT_DECLINED",
        Some("DECLINED"),
        &[
            "OrderPlaced",
            "StockReserved",
            "PaymentDeclined",
            "StockReleased",
            "OrderRejected",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_provider_that_keeps_timing_out_is_retried_then_the_order_times_out() {
    // The intent was created, its confirmation never answered: the void cancels it at
    // the provider, whatever it did.
    rejected_with(
        "tok_timeout",
        "TIMED_OUT",
        Some("VOIDED"),
        &[
            "OrderPlaced",
            "StockReserved",
            "PaymentVoided",
            "StockReleased",
            "OrderRejected",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_failed_capture_voids_the_payment_and_releases_the_stock() {
    rejected_with(
        "tok_capture_fails",
        "PAYMENT_DECLINED",
        Some("VOIDED"),
        &[
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "FraudAssessed",
            "PaymentVoided",
            "StockReleased",
            "OrderRejected",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_fraud_denial_voids_releases_and_rejects() {
    listen_to_bus("e2e-saga-events").await;
    let p = place("30000.00", 2, 1, "tok_visa").await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some("FRAUD_SUSPECTED")),
        "{o}"
    );
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "VOIDED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 2, "reserved": 0, "available": 2})
    );
    let risk = http()
        .get(format!("{}/orders/{}/risk", api_url(), p.order_id))
        .bearer_auth(e2e::token(&fresh_admin_id(), true))
        .send()
        .await
        .unwrap();
    let risk: Value = risk.json().await.unwrap();
    assert_eq!(risk["decision"], "deny");
    assert_eq!(
        events_of(&p.order_id, 7).await,
        sorted(&[
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "FraudAssessed",
            "PaymentVoided",
            "StockReleased",
            "OrderRejected"
        ])
    );
    assert_invariants(&p, &o).await;
}

/// An admin's review decision.
async fn review(order_id: &str, decision: &str) -> reqwest::Response {
    review_as(order_id, decision, &e2e::token(&fresh_admin_id(), true)).await
}

async fn review_as(order_id: &str, decision: &str, bearer: &str) -> reqwest::Response {
    http()
        .post(format!("{}/orders/{order_id}/review", api_url()))
        .bearer_auth(bearer)
        .json(&json!({"decision": decision}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_order_held_for_review_is_confirmed_when_approved() {
    listen_to_bus("e2e-saga-events").await;
    let p = place("5000.00", 3, 1, "tok_visa").await;
    let held = wait_for(
        &p.user,
        &p.order_id,
        &["UNDER_REVIEW", "CONFIRMED", "REJECTED"],
    )
    .await;
    assert_eq!(held["status"], "UNDER_REVIEW", "{held}");
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "AUTHORIZED"
    );
    let res = review_as(&p.order_id, "approve", &e2e::token(&p.user, false)).await;
    assert_problem(res, 403).await;
    assert_eq!(review(&p.order_id, "approve").await.status(), 202);
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(o["status"], "CONFIRMED", "{o}");
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "CAPTURED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 2, "reserved": 0, "available": 2})
    );
    assert_problem(review(&p.order_id, "approve").await, 409).await;
    assert!(
        events_of(&p.order_id, 8)
            .await
            .contains(&"OrderHeldForReview".to_owned())
    );
    assert_invariants(&p, &o).await;
}

#[tokio::test]
async fn an_order_held_for_review_is_rejected_when_the_admin_rejects_it() {
    listen_to_bus("e2e-saga-events").await;
    let p = place("5000.00", 3, 1, "tok_visa").await;
    let held = wait_for(
        &p.user,
        &p.order_id,
        &["UNDER_REVIEW", "CONFIRMED", "REJECTED"],
    )
    .await;
    assert_eq!(held["status"], "UNDER_REVIEW", "{held}");
    let p400 = assert_problem(review(&p.order_id, "maybe").await, 400).await;
    assert_eq!(p400["errors"][0]["field"], "decision");
    assert_eq!(review(&p.order_id, "reject").await.status(), 202);
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some("REVIEW_REJECTED")),
        "{o}"
    );
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "VOIDED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 3, "reserved": 0, "available": 3})
    );
    assert_eq!(
        events_of(&p.order_id, 8).await,
        sorted(&[
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "FraudAssessed",
            "OrderHeldForReview",
            "PaymentVoided",
            "StockReleased",
            "OrderRejected"
        ])
    );
    assert_invariants(&p, &o).await;
}

#[tokio::test]
async fn a_confirmed_order_cancelled_is_refunded_and_restocked() {
    listen_to_bus("e2e-saga-events").await;
    let p = place("40.00", 6, 2, "tok_visa").await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(o["status"], "CONFIRMED", "{o}");
    let cancel = |bearer: String| {
        let order_id = p.order_id.clone();
        async move { cancel_order(&order_id, &bearer).await }
    };
    assert_problem(cancel(e2e::token(&fresh_user_id(), false)).await, 403).await;
    let res = cancel(e2e::token(&p.user, false)).await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert!(
        ["CANCELLING", "CANCELLED"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    assert_eq!(
        cancel(e2e::token(&p.user, false)).await.status(),
        202,
        "cancelling again is harmless"
    );
    let o = wait_for(&p.user, &p.order_id, &["CANCELLED"]).await;
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "REFUNDED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 6, "reserved": 0, "available": 6})
    );
    let kinds = events_of(&p.order_id, 10).await;
    for e in ["PaymentRefunded", "StockRestocked", "OrderCancelled"] {
        assert!(kinds.contains(&e.to_owned()), "{e} missing from {kinds:?}");
    }
    assert_invariants(&p, &o).await;

    // A rejected order cannot be cancelled.
    let r = place("10.00", 1, 1, "tok_declined").await;
    wait_for(&r.user, &r.order_id, &["REJECTED"]).await;
    let res = cancel_order(&r.order_id, &e2e::token(&r.user, false)).await;
    assert_problem(res, 409).await;
}

/// The accountant's case of a late authorization: the provider places the hold and every
/// answer of every retry is lost, the saga gives up and compensates; the void asks the
/// provider and lets the hold go, so the money is free when the order is REJECTED.
#[tokio::test]
async fn a_hold_whose_every_answer_was_lost_is_released_when_the_order_is_rejected() {
    listen_to_bus("e2e-saga-events").await;
    // The fault matches this order by its total (a price no other test uses): its id is
    // not known before the saga may reach the provider.
    let fault = format!("late-hold-{}", ulid::Ulid::new());
    write_provider_faults(
        &fault,
        &json!([{"operation": "authorize", "amount": 9871, "kind": "timeout_after", "times": 50}]),
    );
    let p = place("98.71", 5, 1, "tok_visa").await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    write_provider_faults(&fault, &json!([]));
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some("TIMED_OUT")),
        "{o}"
    );
    let intent = provider_intent_of(&p.order_id)
        .await
        .expect("the payment names its intent");
    assert_eq!(
        intent["metadata"]["order_id"],
        p.order_id.as_str(),
        "{intent}"
    );
    assert_eq!(
        intent["status"], "canceled",
        "the hold placed for a REJECTED order was let go: {intent}"
    );
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "VOIDED"
    );
    assert_eq!(
        events_of(&p.order_id, 5).await,
        sorted(&[
            "OrderPlaced",
            "StockReserved",
            "PaymentVoided",
            "StockReleased",
            "OrderRejected",
        ])
    );
    assert_invariants(&p, &o).await;
}

/// Every function an order passes through, from `POST /orders` to the last consumer of its
/// confirmation.
const ON_THE_WAY: [&str; 12] = [
    "orders-create",
    "outbox-relay",
    "orders-start-saga",
    "inventory-reserve",
    "payments-authorize",
    "payments-request-fraud-check",
    "fraud-score",
    "payments-capture",
    "inventory-commit",
    "orders-confirm",
    "notifications-send",
    "analytics-project-sales",
];

/// The JSON lines the local stack's functions wrote (cargo lambda watch keeps their stdout
/// and stderr in one log) that contain `needle`.
fn function_log_lines(needle: &str) -> Vec<Value> {
    let path = root().join(".local/logs/cargo-lambda.log");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with('{') && l.contains(needle))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The correlation id a client sends with `POST /orders` is on every event the order's saga
/// publishes and on log lines of every function on its way, down to the consumers of its
/// confirmation; and each kind of runner (a saga step, a bus consumer, the relay, the
/// scorer) wrote its metrics line for the invocations that carried it.
#[tokio::test]
async fn an_orders_correlation_id_is_on_every_event_and_on_every_functions_log_lines() {
    listen_to_bus("e2e-saga-events").await;
    let correlation = format!("corr-{}", ulid::Ulid::new());
    let sku = fresh_sku("CORR");
    create_product(&sku, "12.00", "EUR", 3).await;
    let user = fresh_user_id();
    let order_id = place_with_headers(
        &user,
        &[(&sku, 1)],
        "tok_visa",
        &[("x-correlation-id", &correlation)],
    )
    .await;
    let o = wait_for(&user, &order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(o["status"], "CONFIRMED", "{o}");

    // The events.
    let id = order_id.clone();
    let events = events_on_queue(
        "e2e-saga-events",
        7,
        std::time::Duration::from_secs(60),
        move |e| e["detail"]["data"]["order_id"] == id.as_str(),
    )
    .await;
    let kinds: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 7, "{kinds:?}");
    for e in &events {
        assert_eq!(
            e["detail"]["metadata"]["correlation_id"], correlation,
            "{} lost the request's correlation id: {e}",
            e["detail-type"]
        );
    }

    // The log lines: the consumers of OrderConfirmed run after the order reads CONFIRMED.
    let carries = |line: &Value| {
        line["correlation_id"] == correlation.as_str()
            || line["span"]["correlation_id"] == correlation.as_str()
    };
    let started = std::time::Instant::now();
    let (lines, missing) = loop {
        let lines: Vec<Value> = function_log_lines(&correlation)
            .into_iter()
            .filter(carries)
            .collect();
        let seen: std::collections::BTreeSet<&str> = lines
            .iter()
            .filter_map(|l| l["span"]["function"].as_str())
            .collect();
        let missing: Vec<&str> = ON_THE_WAY
            .iter()
            .copied()
            .filter(|f| !seen.contains(f))
            .collect();
        if missing.is_empty() || started.elapsed() > std::time::Duration::from_secs(120) {
            break (lines, missing);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert!(
        missing.is_empty(),
        "no log line with correlation id {correlation} from {missing:?}"
    );
    println!("{} log lines carry {correlation}", lines.len());

    // The metrics lines of the invocations that carried it, one per kind of runner.
    let all = function_log_lines("\"_aws\"");
    for function in [
        "inventory-reserve",
        "notifications-send",
        "outbox-relay",
        "fraud-score",
    ] {
        let requests: std::collections::BTreeSet<&str> = lines
            .iter()
            .filter(|l| l["span"]["function"] == function)
            .filter_map(|l| l["span"]["request_id"].as_str())
            .collect();
        let emf = all
            .iter()
            .find(|l| {
                l.get("_aws").is_some()
                    && l["Function"] == function
                    && l["request_id"]
                        .as_str()
                        .is_some_and(|r| requests.contains(r))
            })
            .unwrap_or_else(|| panic!("no metrics line of {function} for {requests:?}"));
        for metric in [
            "Latency",
            "DynamoDbRequests",
            "DynamoDbThrottled",
            "Records",
        ] {
            assert!(
                emf.get(metric).is_some(),
                "{function}: {metric} missing: {emf}"
            );
        }
        println!("{function}: {emf}");
    }
}

/// The `transactions` record of `order_id`, read from the stream as the scorer reads it.
async fn transaction_record(order_id: &str) -> Value {
    let kinesis = aws_sdk_kinesis::Client::new(&aws().await);
    let stream = table("transactions");
    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(it) = iterator {
            let out = kinesis
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            for record in out.records() {
                let data: Value = serde_json::from_slice(record.data().as_ref()).unwrap();
                if data["order_id"] == order_id {
                    assert_eq!(record.partition_key(), data["user_id"].as_str().unwrap());
                    return data;
                }
            }
            if out.records().is_empty() {
                break;
            }
            iterator = out.next_shard_iterator;
        }
    }
    panic!("no transactions record of order {order_id}")
}

#[tokio::test]
async fn the_fraud_check_record_carries_what_the_scorer_reads() {
    // A customer living in France (a profile), ordering 3 units to Britain from a known
    // address, paying with a token that must never reach the stream.
    let user = fresh_user_id();
    let registered = http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(&user, false))
        .json(&json!({"email": format!("{user}@example.com"), "name": "Marie", "country": "FR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let profile: Value = registered.json().await.unwrap();
    let sku = fresh_sku("FRAUDREC");
    create_product(&sku, "19.99", "EUR", 10).await;
    let payment_token = format!("tok_visa_{}", ulid::Ulid::new());
    let order_id = place_with_headers(
        &user,
        &[(&sku, 3)],
        &payment_token,
        &[("x-forwarded-for", "198.51.100.23")],
    )
    .await;
    wait_for(&user, &order_id, &["CONFIRMED", "REJECTED"]).await;

    let record = transaction_record(&order_id).await;
    assert_eq!(record["user_id"], user.as_str());
    assert_eq!(
        record["amount"],
        json!({"amount": "59.97", "currency": "EUR"})
    );
    assert_eq!(record["item_count"], 3);
    assert_eq!(record["shipping_country"], "GB");
    assert_eq!(record["profile_country"], "FR");
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        at(&record["account_created_at"]),
        at(&profile["created_at"])
    );
    assert_eq!(record["source_ip"], "198.51.100.23");
    use sha2::Digest;
    let digest = sha2::Sha256::digest(payment_token.as_bytes());
    let fingerprint: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(record["payment_fingerprint"], fingerprint.as_str());
    assert!(
        !record.to_string().contains(&payment_token),
        "the payment token is on the stream: {record}"
    );
    // Valid against its published schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events/schemas/TransactionRecord.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&record)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{record}");

    // A customer without a profile gets nulls, not a missing field.
    let p = place("5.00", 5, 1, "tok_visa").await;
    wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    let record = transaction_record(&p.order_id).await;
    assert_eq!(record["profile_country"], Value::Null);
    assert_eq!(record["account_created_at"], Value::Null);
    assert_eq!(record["shipping_country"], "GB");
}

#[tokio::test]
async fn a_record_the_scorer_can_never_read_is_parked_with_its_reason() {
    // Not a fraud-check request: the scorer parks it in its failure queue, with its reason
    // and data, and goes on (the order after it, of another customer, is scored).
    let sdk = aws().await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let key = format!("poison-{}", ulid::Ulid::new());
    let poison = format!(r#"{{"order_id": "not-an-order", "user_id": "{key}"}}"#);
    let put = kinesis
        .put_record()
        .stream_name(table("transactions"))
        .partition_key(&key)
        .data(aws_sdk_kinesis::primitives::Blob::new(poison.as_bytes()))
        .send()
        .await
        .unwrap();
    let p = place("7.00", 5, 1, "tok_visa").await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(o["status"], "CONFIRMED", "{o}");

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = queue_url(&sqs, "fraud-score-failures").await;
    let started = std::time::Instant::now();
    let letter = loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(5)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let mine = out.messages().iter().find_map(|m| {
            let letter: Value = serde_json::from_str(m.body()?).ok()?;
            (letter["partition_key"] == key.as_str())
                .then(|| (letter, m.receipt_handle().map(str::to_owned)))
        });
        if let Some((letter, receipt)) = mine {
            sqs.delete_message()
                .queue_url(&url)
                .set_receipt_handle(receipt)
                .send()
                .await
                .unwrap();
            break letter;
        }
        assert!(
            started.elapsed() < SAGA_WAIT,
            "record {key} not parked in fraud-score-failures"
        );
    };
    assert_eq!(letter["sequence_number"], put.sequence_number());
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("not a fraud-check request"),
        "{letter}"
    );
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(letter["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, poison.as_bytes());
}
