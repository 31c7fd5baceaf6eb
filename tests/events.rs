//! Every event the relay publishes is valid against its schema in `events/schemas/`.
//!
//! The test listens the way an operator would debug the bus: it adds a rule for every
//! `commerce.*` source, targeting a queue of its own, then makes each kind of change and
//! checks every event that arrives (its own and any other test's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use e2e::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn every_published_event_matches_its_schema() {
    listen_to_bus("e2e-all-events").await;
    let sku = fresh_sku("EVT");
    create_product(&sku, "7.25", "USD", 3).await; // ProductUpserted, StockAdjusted
    let user = fresh_user_id();
    let res = http()
        .post(format!("{}/orders", api_url()))
        .bearer_auth(token(&user, false))
        .header("idempotency-key", "events")
        .json(&order_body(&[(&sku, 1)], "tok_visa"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    // The three events of the product and the order's intake. The order's saga goes on and
    // publishes more (its OrderConfirmed also names the sku), as fast as the machine lets
    // it: those are checked against their schemas below with every other event.
    let sku_for = sku.clone();
    let mine = move |e: &Value| {
        let kind = e["detail-type"].as_str().unwrap_or_default();
        ["OrderPlaced", "ProductUpserted", "StockAdjusted"].contains(&kind)
            && (e["detail"]["data"]["sku"] == sku_for.as_str()
                || e["detail"]["data"]["items"][0]["sku"] == sku_for.as_str())
    };
    let seen = events_on_queue("e2e-all-events", 3, Duration::from_secs(60), mine).await;
    let mut kinds: Vec<&str> = seen
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["OrderPlaced", "ProductUpserted", "StockAdjusted"]);
    let all = events_on_queue("e2e-all-events", 0, Duration::from_secs(1), |_| true).await;
    assert!(all.len() >= 3);
    for event in &all {
        assert_valid_event(event);
    }
    let stock = seen
        .iter()
        .find(|e| e["detail-type"] == "StockAdjusted")
        .unwrap();
    assert_eq!(stock["detail"]["data"]["on_hand"], 3);
    assert_eq!(stock["detail"]["data"]["version"], 2);
}
