//! The outbox loses nothing when the bus is away for longer than the relay's retries, in
//! a test binary of its own (the outage is the whole stack's while it lasts):
//!
//! 1. the emulator's EventBridge answers every PutEvents with a 500 (local/emulation/events.py,
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
use std::time::{Duration, Instant};

const ORDERS: usize = 3;

/// Gives the bus back however the test ends: a panic must not leave it away for the test
/// binaries after this one.
struct BusBack;

impl Drop for BusBack {
    fn drop(&mut self) {
        faults(&json!({}));
    }
}

fn faults(doc: &Value) {
    write_faults(&doc.to_string());
}

/// `commerce-ops republish` of the orders table's outbox items of any age (only counted
/// on a dry run); it must succeed.
fn republish_orders(dry_run: bool) -> String {
    let mut args = vec![
        "republish",
        "--table",
        "orders",
        "--older-than-seconds",
        "0",
    ];
    if dry_run {
        args.push("--dry-run");
    }
    let (ok, text) = commerce_ops(&args);
    assert!(ok, "{text}");
    text
}

/// How many orders-table outbox items were never published, with the command's output.
fn unpublished_orders_items() -> (usize, String) {
    let text = republish_orders(true);
    let count = text
        .split_once("orders: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("republish reports a count");
    (count, text)
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
    executions("place-order", order_id)
        .await
        .iter()
        .filter(|(name, _, _)| name == order_id)
        .count()
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
    let _bus_back = BusBack;
    set_retries(&lambda, &uuid, 1).await;
    faults(&json!({"eventbridge": "unavailable"}));

    // 2. Orders are accepted meanwhile; their events cannot be published. What is seen
    // is asserted once the bus and the mapping are back, so a failure leaves neither
    // broken for the tests after this one.
    let sku = fresh_sku("OUTAGE");
    create_product(&sku, "9.00", "EUR", 10).await;
    let mut placed = Vec::new();
    for _ in 0..ORDERS {
        let user = fresh_user_id();
        let id = place_for(&user, &sku, 1, "tok_visa").await;
        placed.push((user, id));
    }
    let started = Instant::now();
    let mut gave_up = false;
    while started.elapsed() < Duration::from_secs(120) {
        if messages_on(&sqs, "outbox-relay-failures").await > failures_before {
            gave_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "the mapping gave up: {gave_up}, after {:?} of outage",
        started.elapsed()
    );
    let mut during = Vec::new();
    for (user, id) in &placed {
        during.push((
            order(user, id).await["status"].clone(),
            place_order_executions(id).await,
        ));
    }
    let (unpublished, dry_text) = unpublished_orders_items();

    // 3. The bus is back; the skipped events are republished, once.
    faults(&json!({}));
    set_retries(&lambda, &uuid, declared_retries).await;
    assert!(gave_up, "the relay's mapping never gave up on the outage");
    for (status, executions) in &during {
        assert_eq!(status, "PENDING");
        assert_eq!(*executions, 0, "no saga without OrderPlaced");
    }
    // Every OrderPlaced of the outage (the product's events live in another table; the
    // sagas of earlier test binaries may still be writing events of their own).
    assert!(
        unpublished >= ORDERS,
        "every OrderPlaced of the outage waits unpublished: {dry_text}"
    );
    republish_orders(false);
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
        let (left, text) = unpublished_orders_items();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "outbox items left unpublished once the bus was back: {text}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
