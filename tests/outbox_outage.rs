//! The outbox loses nothing when the bus is away for longer than the relay's retries, in
//! a test binary of its own (the outage is the whole stack's while it lasts):
//!
//! 1. the emulator's EventBridge answers every PutEvents with a 500 (local/emulator.py,
//!    patch 11), and the relay's orders-stream mapping is given 1 retry instead of 50, so
//!    the outage outlasts it within seconds;
//! 2. orders placed meanwhile are accepted (202) but their `OrderPlaced` cannot be
//!    published: the mapping gives up and says so in its on-failure queue, and the
//!    orders wait `PENDING` with no saga started;
//! 3. the bus comes back; the skipped records are not replayed by Lambda, but their
//!    outbox items were never marked published: `commerce-ops republish` finds exactly
//!    them and publishes them; every `OrderPlaced` reaches the bus, and every order's saga
//!    starts once and confirms it. (The relay, back within its retries for the records
//!    after the skipped one, may publish some of them again meanwhile: the bus is
//!    at-least-once, the consumers dedupe by event id, so each effect happens once.) Once
//!    everything is through, `republish` finds nothing left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod saga_support;

use aws_sdk_lambda::types::EventSourceMappingConfiguration;
use e2e::*;
use saga_support::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ORDERS: usize = 3;

fn faults(doc: &Value) {
    let path =
        std::env::var("LOCAL_FAULTS_FILE").expect("LOCAL_FAULTS_FILE is set by local/stack.py");
    std::fs::write(path, doc.to_string()).unwrap();
}

/// Runs `commerce-ops` (built by `make test` before the tests) with the stack's settings.
fn ops(args: &[&str]) -> (bool, String) {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let out = std::process::Command::new(target.join("debug/commerce-ops"))
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

async fn relay_mapping_of_orders(
    lambda: &aws_sdk_lambda::Client,
) -> EventSourceMappingConfiguration {
    let out = lambda
        .list_event_source_mappings()
        .function_name("outbox-relay")
        .send()
        .await
        .unwrap();
    out.event_source_mappings()
        .iter()
        .find(|m| {
            m.event_source_arn()
                .is_some_and(|a| a.contains(":table/commerce-orders/stream/"))
        })
        .cloned()
        .expect("the relay's mapping on the orders stream")
}

async fn set_retries(lambda: &aws_sdk_lambda::Client, uuid: &str, retries: i32) {
    lambda
        .update_event_source_mapping()
        .uuid(uuid)
        .maximum_retry_attempts(retries)
        .send()
        .await
        .unwrap();
}

async fn messages_on(sqs: &aws_sdk_sqs::Client, queue_name: &str) -> i64 {
    let url = queue_url(sqs, queue_name).await;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    attrs.attributes().unwrap()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

async fn place_order_executions(order_id: &str) -> usize {
    let sfn = aws_sdk_sfn::Client::new(&aws().await);
    let machines = sfn.list_state_machines().send().await.unwrap();
    let arn = machines
        .state_machines()
        .iter()
        .find(|m| m.name() == "commerce-place-order")
        .unwrap()
        .state_machine_arn()
        .to_owned();
    let mut n = 0;
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        n += page
            .unwrap()
            .executions()
            .iter()
            .filter(|e| e.name() == order_id)
            .count();
    }
    n
}

#[tokio::test]
async fn a_bus_outage_longer_than_the_relay_retries_loses_no_event() {
    listen_to_bus("e2e-outage-events").await;
    let sdk = aws().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mapping = relay_mapping_of_orders(&lambda).await;
    let uuid = mapping.uuid().unwrap().to_owned();
    let declared_retries = mapping.maximum_retry_attempts().unwrap_or(50);
    let failures_before = messages_on(&sqs, "outbox-relay-failures").await;

    // 1. The bus goes away; the relay's retries are shortened so the outage outlasts them.
    set_retries(&lambda, &uuid, 1).await;
    faults(&json!({"eventbridge": "unavailable"}));

    // 2. Orders are accepted meanwhile; their events cannot be published.
    let sku = fresh_sku("OUTAGE");
    create_product(&sku, "9.00", "EUR", 10).await;
    let mut placed = Vec::new();
    for _ in 0..ORDERS {
        let user = fresh_user_id();
        let id = place_for(&user, &sku, 1, "tok_visa").await;
        placed.push((user, id));
    }
    let started = Instant::now();
    while messages_on(&sqs, "outbox-relay-failures").await <= failures_before {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the relay's mapping never gave up on the outage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "the mapping gave up after {:?} of outage",
        started.elapsed()
    );
    for (user, id) in &placed {
        assert_eq!(order(user, id).await["status"], "PENDING");
        assert_eq!(
            place_order_executions(id).await,
            0,
            "no saga without OrderPlaced"
        );
    }
    let (ok, text) = ops(&[
        "republish",
        "--table",
        "orders",
        "--older-than-seconds",
        "0",
        "--dry-run",
    ]);
    assert!(ok, "{text}");
    let unpublished: usize = text
        .split_once("orders: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("republish reports a count");
    assert!(
        unpublished >= ORDERS,
        "every OrderPlaced of the outage waits unpublished: {text}"
    );

    // 3. The bus is back; the skipped events are republished, once.
    faults(&json!({}));
    set_retries(&lambda, &uuid, declared_retries).await;
    let (ok, text) = ops(&[
        "republish",
        "--table",
        "orders",
        "--older-than-seconds",
        "0",
    ]);
    assert!(ok, "{text}");
    for (user, id) in &placed {
        let o = wait_for(user, id, &["CONFIRMED", "REJECTED"]).await;
        assert_eq!(o["status"], "CONFIRMED", "{o}");
        assert_eq!(place_order_executions(id).await, 1, "one saga per order");
    }
    for (_, id) in &placed {
        let wanted = id.clone();
        let placed_events =
            events_on_queue("e2e-outage-events", 1, Duration::from_secs(60), move |e| {
                e["detail-type"] == "OrderPlaced"
                    && e["detail"]["data"]["order_id"] == wanted.as_str()
            })
            .await;
        assert!(
            !placed_events.is_empty(),
            "OrderPlaced of {id} never reached the bus"
        );
        let ids: std::collections::BTreeSet<&str> = placed_events
            .iter()
            .map(|e| e["detail"]["metadata"]["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "one event, however often delivered: {placed_events:?}"
        );
        eprintln!(
            "OrderPlaced of {id}: on the bus {} time(s), one saga",
            placed_events.len()
        );
    }
    // The sagas' own events are still going through the relay for a moment.
    let started = Instant::now();
    loop {
        let (ok, text) = ops(&[
            "republish",
            "--table",
            "orders",
            "--older-than-seconds",
            "0",
            "--dry-run",
        ]);
        assert!(ok, "{text}");
        if text.contains("orders: 0 unpublished") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "outbox items left unpublished once the bus was back: {text}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
