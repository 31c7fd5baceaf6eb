//! What the saga test binaries share: placing an order, following it to an end, and
//! reading its payment, stock and events.
#![allow(dead_code)]

use e2e::*;
use serde_json::Value;
use std::time::Duration;

pub const SAGA_WAIT: Duration = Duration::from_secs(120);

pub struct Placed {
    pub user: String,
    pub sku: String,
    pub order_id: String,
}

/// A product priced `price` with `stock` units, and an order of `quantity` paid with
/// `token`, answered 202.
pub async fn place(price: &str, stock: i64, quantity: u32, token: &str) -> Placed {
    let sku = fresh_sku("SAGA");
    create_product(&sku, price, "EUR", stock).await;
    let user = fresh_user_id();
    let order_id = place_for(&user, &sku, quantity, token).await;
    Placed {
        user,
        sku,
        order_id,
    }
}

pub async fn place_for(user: &str, sku: &str, quantity: u32, token: &str) -> String {
    place_lines(user, &[(sku, quantity)], token).await
}

/// Places an order of `lines` (sku, quantity) for `user`, paid with `token`, answered 202.
pub async fn place_lines(user: &str, lines: &[(&str, u32)], token: &str) -> String {
    place_with_headers(user, lines, token, &[]).await
}

/// [`place_lines`], with more request `headers` (a correlation id, a forwarded address).
pub async fn place_with_headers(
    user: &str,
    lines: &[(&str, u32)],
    token: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut req = http()
        .post(format!("{}/orders", api_url()))
        .bearer_auth(e2e::token(user, false))
        .header("idempotency-key", ulid::Ulid::new().to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.json(&order_body(lines, token)).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let order: Value = res.json().await.unwrap();
    order["order_id"].as_str().unwrap().to_owned()
}

pub async fn order(user: &str, order_id: &str) -> Value {
    let res = http()
        .get(format!("{}/orders/{order_id}", api_url()))
        .bearer_auth(e2e::token(user, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Polls the order until its status is one of `statuses`.
pub async fn wait_for(user: &str, order_id: &str, statuses: &[&str]) -> Value {
    let started = std::time::Instant::now();
    loop {
        let o = order(user, order_id).await;
        if statuses.contains(&o["status"].as_str().unwrap()) {
            return o;
        }
        assert!(
            started.elapsed() < SAGA_WAIT,
            "order {order_id} still {} after {SAGA_WAIT:?}",
            o["status"]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn payment(user: &str, order_id: &str) -> Option<Value> {
    let res = http()
        .get(format!("{}/orders/{order_id}/payment", api_url()))
        .bearer_auth(e2e::token(user, false))
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        200 => Some(res.json().await.unwrap()),
        404 => None,
        other => panic!("payment read answered {other}"),
    }
}

pub async fn stock(sku: &str) -> Value {
    let res = http()
        .get(format!("{}/products/{sku}", api_url()))
        .bearer_auth(e2e::token(&fresh_user_id(), false))
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    p["stock"].clone()
}

/// The event types published for `order_id`, sorted, once at least `at_least` arrived.
pub async fn events_of(order_id: &str, at_least: usize) -> Vec<String> {
    let id = order_id.to_owned();
    let events = events_on_queue(
        "e2e-saga-events",
        at_least,
        Duration::from_secs(60),
        move |e| e["detail"]["data"]["order_id"] == id.as_str(),
    )
    .await;
    for e in &events {
        assert_valid_event(e);
    }
    // The bus delivers at least once (an SDK retry of a PutEvents the bus had accepted sends
    // its entries again), and consumers dedupe by `metadata.event_id`: so does this count.
    // Two events of one kind with different ids still count twice.
    let mut seen = std::collections::BTreeSet::new();
    let mut kinds: Vec<String> = events
        .iter()
        .filter(|e| seen.insert(e["detail"]["metadata"]["event_id"].to_string()))
        .map(|e| e["detail-type"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The invariants after a finished order: nothing of `sku` reserved, counts add up, and
/// no payment left AUTHORIZED unless the order is confirmed.
pub async fn assert_invariants(p: &Placed, o: &Value) {
    let s = stock(&p.sku).await;
    assert_eq!(
        s["reserved"], 0,
        "stock left reserved by a finished order: {s}"
    );
    assert_eq!(
        s["available"].as_i64().unwrap(),
        s["on_hand"].as_i64().unwrap() - s["reserved"].as_i64().unwrap()
    );
    let status = o["status"].as_str().unwrap_or("?");
    let intent = provider_intent_of(&p.order_id).await;
    if let Some(why) = provider_disagrees(status, intent.as_ref()) {
        panic!("order {}: {why}", p.order_id);
    }
    if let Some(pay) = payment(&p.user, &p.order_id).await
        && o["status"] != "CONFIRMED"
    {
        assert_ne!(
            pay["status"], "AUTHORIZED",
            "payment left authorized for a {} order",
            o["status"]
        );
    }
}
