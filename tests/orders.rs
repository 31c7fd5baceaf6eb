//! `/orders` intake end to end: pricing, reads, idempotency, and the outbox path from the
//! orders table's stream through the relay and the bus to the saga's queue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn place(user: &str, key: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/orders", api_url()))
        .bearer_auth(token(user, false))
        .header("idempotency-key", key)
        .header("x-correlation-id", format!("corr-{key}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Orders of `user` in the table (through the by_user index, as the API lists them).
async fn orders_in_table(user: &str) -> Vec<String> {
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    let out = ddb
        .query()
        .table_name(table("orders"))
        .index_name("by_user")
        .key_condition_expression("user_id = :u")
        .expression_attribute_values(":u", AttributeValue::S(user.to_owned()))
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| i["order_id"].as_s().unwrap().clone())
        .collect()
}

/// `OrderPlaced` events of `order_id` on the bus (the `order-placed` queue belongs to the
/// saga starter, so the tests watch the bus through a rule and queue of their own).
async fn order_placed_events(order_id: &str, at_least: usize) -> Vec<Value> {
    let id = order_id.to_owned();
    events_on_queue(
        "e2e-orders-events",
        at_least,
        Duration::from_secs(60),
        move |e| {
            e["detail-type"] == "OrderPlaced" && e["detail"]["data"]["order_id"] == id.as_str()
        },
    )
    .await
}

#[tokio::test]
async fn a_customer_places_an_order_priced_exactly_and_reads_and_lists_it() {
    let (mug, tea) = (fresh_sku("MUG"), fresh_sku("TEA"));
    create_product(&mug, "9.99", "EUR", 10).await;
    create_product(&tea, "0.10", "EUR", 100).await;
    let user = fresh_user_id();

    let res = place(
        &user,
        "k1",
        &order_body(&[(&mug, 3), (&tea, 3)], "tok_visa"),
    )
    .await;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = res.json().await.unwrap();
    let id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 26, "a ULID");
    assert_eq!(location, format!("/orders/{id}"));
    assert_eq!(order["status"], "PENDING");
    assert_eq!(
        order["total"],
        json!({"amount": "30.27", "currency": "EUR"})
    );
    assert_eq!(
        order["items"][0]["unit_price"],
        json!({"amount": "9.99", "currency": "EUR"})
    );
    assert!(
        order.get("payment_token").is_none(),
        "the token is never shown"
    );

    let res = http()
        .get(format!("{}{location}", api_url()))
        .bearer_auth(token(&user, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut read: Value = res.json().await.unwrap();
    // The saga may have moved it on already (to CONFIRMED, within seconds): everything but
    // where it is and when it last moved reads back as it was placed.
    assert!(
        ["PENDING", "UNDER_REVIEW", "CONFIRMED"].contains(&read["status"].as_str().unwrap()),
        "{read}"
    );
    let mut placed = order.clone();
    for o in [&mut read, &mut placed] {
        let o = o.as_object_mut().unwrap();
        o.remove("status");
        o.remove("updated_at");
    }
    assert_eq!(read, placed);

    let res = http()
        .get(format!("{}/orders", api_url()))
        .bearer_auth(token(&user, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["items"][0]["order_id"], id.as_str());
    assert_eq!(list["next_cursor"], Value::Null);

    let res = http()
        .get(format!("{}{location}", api_url()))
        .bearer_auth(token(&fresh_user_id(), false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
    let res = http()
        .get(format!("{}{location}", api_url()))
        .bearer_auth(token(&fresh_admin_id(), true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http()
        .get(format!("{}/orders?user_id={user}", api_url()))
        .bearer_auth(token(&fresh_admin_id(), true))
        .send()
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["items"][0]["order_id"], id.as_str());
}

#[tokio::test]
async fn orders_list_newest_first_across_pages() {
    let sku = fresh_sku("PGN");
    create_product(&sku, "1.00", "USD", 100).await;
    let user = fresh_user_id();
    let mut placed = Vec::new();
    for i in 0..3 {
        let res = place(
            &user,
            &format!("page-{i}"),
            &order_body(&[(&sku, 1)], "tok_visa"),
        )
        .await;
        let o: Value = res.json().await.unwrap();
        placed.push(o["order_id"].as_str().unwrap().to_owned());
    }
    let bearer = token(&user, false);
    let res = http()
        .get(format!("{}/orders?limit=2", api_url()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    let first: Value = res.json().await.unwrap();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let res = http()
        .get(format!("{}/orders?limit=2&cursor={cursor}", api_url()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    let second: Value = res.json().await.unwrap();
    let ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    placed.reverse();
    assert_eq!(ids, placed);

    // Another customer cannot walk this list with the cursor.
    let res = http()
        .get(format!("{}/orders?cursor={cursor}", api_url()))
        .bearer_auth(token(&fresh_user_id(), false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 400).await["errors"][0]["field"],
        "cursor"
    );
}

#[tokio::test]
async fn the_same_key_and_body_twice_is_one_order_and_one_event() {
    listen_to_bus("e2e-orders-events").await;
    let sku = fresh_sku("IDM");
    create_product(&sku, "5.00", "EUR", 10).await;
    let user = fresh_user_id();
    let body = order_body(&[(&sku, 2)], "tok_visa");

    let first = place(&user, "same-key", &body).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = place(&user, "same-key", &body).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["order_id"], first["order_id"]);
    assert_eq!(again["status"], first["status"]);

    assert_eq!(orders_in_table(&user).await.len(), 1);
    let id = first["order_id"].as_str().unwrap();
    assert_eq!(
        order_placed_events(id, 1).await.len(),
        1,
        "exactly one OrderPlaced on the bus"
    );

    // The same key with another body is refused, and changes nothing.
    let other = place(&user, "same-key", &order_body(&[(&sku, 3)], "tok_visa")).await;
    let p = assert_problem(other, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("Idempotency-Key"));
    assert_eq!(orders_in_table(&user).await.len(), 1);

    // Keys are per customer: another customer's same key is a new order.
    let res = place(&fresh_user_id(), "same-key", &body).await;
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_make_exactly_one_order() {
    listen_to_bus("e2e-orders-events").await;
    let sku = fresh_sku("RACE");
    create_product(&sku, "2.50", "EUR", 100).await;
    let user = fresh_user_id();
    let body = order_body(&[(&sku, 1)], "tok_visa");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (user, body) = (user.clone(), body.clone());
            tokio::spawn(async move {
                let res = place(&user, "race-key", &body).await;
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value = res.json().await.unwrap();
                (status, retry_after, body)
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, retry_after, body) = t.await.unwrap();
        match status {
            202 => {
                ids.insert(body["order_id"].as_str().unwrap().to_owned());
            }
            409 => assert!(
                retry_after.is_some(),
                "409 in progress carries Retry-After: {body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success names the same order");
    assert_eq!(orders_in_table(&user).await.len(), 1, "exactly one order");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(
        order_placed_events(&id, 1).await.len(),
        1,
        "exactly one OrderPlaced"
    );
}

/// A request whose twin is still being handled gets 409 with `Retry-After`; once the
/// twin's lease has run out (its Lambda died), the request takes over.
#[tokio::test]
async fn a_request_still_in_progress_is_409_with_retry_after_until_its_lease_runs_out() {
    let sku = fresh_sku("LSE");
    create_product(&sku, "1.00", "EUR", 5).await;
    let user = fresh_user_id();
    let body = order_body(&[(&sku, 1)], "tok_visa");
    let now = chrono::Utc::now();
    let record = |lease_until: i64| {
        shared::dynamo::to_item(&json!({
            "id": shared::idempotency::record_id("orders-create", &user, "busy-key"),
            "status": "IN_PROGRESS",
            "fingerprint": shared::idempotency::fingerprint(body.to_string().as_bytes()),
            "token": "another-request",
            "lease_until": lease_until,
            "expires_at": now.timestamp() + 86400,
        }))
        .unwrap()
    };
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    ddb.put_item()
        .table_name(table("idempotency"))
        .set_item(Some(record(now.timestamp_millis() + 30_000)))
        .send()
        .await
        .unwrap();

    let res = place(&user, "busy-key", &body).await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let p = assert_problem(res, 409).await;
    assert_eq!(p["type"], "urn:commerce:problem:request-in-progress");
    assert!(orders_in_table(&user).await.is_empty());

    ddb.put_item()
        .table_name(table("idempotency"))
        .set_item(Some(record(now.timestamp_millis() - 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        place(&user, "busy-key", &body).await.status(),
        202,
        "the expired lease is taken over"
    );
    assert_eq!(orders_in_table(&user).await.len(), 1);
}

#[tokio::test]
async fn order_placed_reaches_the_bus_through_the_outbox_valid_and_correlated() {
    listen_to_bus("e2e-orders-events").await;
    let sku = fresh_sku("OUT");
    create_product(&sku, "19.90", "CHF", 5).await;
    let user = fresh_user_id();
    let res = place(&user, "outbox-key", &order_body(&[(&sku, 2)], "tok_visa")).await;
    assert_eq!(res.status(), 202);
    let order: Value = res.json().await.unwrap();
    let id = order["order_id"].as_str().unwrap();

    let events = order_placed_events(id, 1).await;
    assert_eq!(events.len(), 1, "one OrderPlaced for {id}");
    let event = &events[0];
    assert_eq!(event["source"], "commerce.orders");
    assert_eq!(event["detail-type"], "OrderPlaced");
    assert_valid_event(event);
    let detail = &event["detail"];
    assert_eq!(detail["metadata"]["correlation_id"], "corr-outbox-key");
    assert_eq!(detail["data"]["user_id"], user.as_str());
    assert_eq!(
        detail["data"]["total"],
        json!({"amount": "39.80", "currency": "CHF"})
    );
    assert_eq!(detail["data"]["items"][0]["sku"], sku.as_str());
    assert!(
        detail["data"].get("shipping").is_none(),
        "events carry no address"
    );
}

#[tokio::test]
async fn every_intake_refusal_is_a_problem_document_and_stores_nothing() {
    let (sku, euro, dollar) = (fresh_sku("ERR"), fresh_sku("EUR"), fresh_sku("USD"));
    create_product(&sku, "1.00", "EUR", 2).await;
    create_product(&euro, "1.00", "EUR", 2).await;
    create_product(&dollar, "1.00", "USD", 2).await;
    let user = fresh_user_id();

    // 400: no key; invalid fields; duplicate skus; unknown fields.
    let res = http()
        .post(format!("{}/orders", api_url()))
        .bearer_auth(token(&user, false))
        .json(&order_body(&[(&sku, 1)], "tok_visa"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 400).await["errors"][0]["field"],
        "Idempotency-Key"
    );
    let p = assert_problem(
        place(&user, "e1", &order_body(&[(&sku, 0)], "tok_visa")).await,
        400,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "items[0].quantity");
    let p = assert_problem(
        place(
            &user,
            "e2",
            &order_body(&[(&sku, 1), (&sku, 1)], "tok_visa"),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "items[1].sku");
    let p = assert_problem(place(&user, "e3", &order_body(&[], "tok_visa")).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "items");
    // At most 50 lines (API.md), checked before any sku is looked up.
    let skus: Vec<String> = (0..51).map(|_| fresh_sku("MANY")).collect();
    let lines: Vec<(&str, u32)> = skus.iter().map(|s| (s.as_str(), 1)).collect();
    let p = assert_problem(
        place(&user, "e3b", &order_body(&lines, "tok_visa")).await,
        400,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "items");
    let p = assert_problem(
        place(&user, "e3c", &order_body(&[(&sku, 1001)], "tok_visa")).await,
        400,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "items[0].quantity");
    let mut body = order_body(&[(&sku, 1)], "tok_visa");
    body["shipping"]["country"] = json!("gb");
    body["coupon"] = json!("FREE");
    let p = assert_problem(place(&user, "e4", &body).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "coupon");
    let mut body = order_body(&[(&sku, 1)], "tok_visa");
    body["shipping"]["country"] = json!("gb");
    let p = assert_problem(place(&user, "e5", &body).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "shipping.country");

    // 404 unknown sku, 409 not enough stock, 422 mixed currencies.
    let missing = fresh_sku("NONE");
    let p = assert_problem(
        place(
            &user,
            "e6",
            &order_body(&[(&sku, 1), (&missing, 1)], "tok_visa"),
        )
        .await,
        404,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains(&missing));
    assert_problem(
        place(&user, "e7", &order_body(&[(&sku, 3)], "tok_visa")).await,
        409,
    )
    .await;
    assert_problem(
        place(
            &user,
            "e8",
            &order_body(&[(&euro, 1), (&dollar, 1)], "tok_visa"),
        )
        .await,
        422,
    )
    .await;

    // A refusal is the key's answer: the same request gets it again; a new key for the
    // fixed request goes through; the refused key with another body is a 422.
    let again = place(&user, "e7", &order_body(&[(&sku, 3)], "tok_visa")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_problem(again, 409).await;
    assert_problem(
        place(&user, "e7", &order_body(&[(&sku, 2)], "tok_visa")).await,
        422,
    )
    .await;
    let res = place(&user, "e10", &order_body(&[(&sku, 2)], "tok_visa")).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        orders_in_table(&user).await.len(),
        1,
        "only the accepted order exists"
    );

    // Reads: unknown id, someone else's list, bad paging, no token, too big.
    let res = http()
        .get(format!("{}/orders/{}", api_url(), ulid::Ulid::new()))
        .bearer_auth(token(&user, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    let res = http()
        .get(format!("{}/orders/not-an-id", api_url()))
        .bearer_auth(token(&user, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    let res = http()
        .get(format!("{}/orders?user_id=someone-else", api_url()))
        .bearer_auth(token(&user, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
    let res = http()
        .get(format!("{}/orders?limit=101", api_url()))
        .bearer_auth(token(&user, false))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
    let admin = token(&fresh_admin_id(), true);
    let res = http()
        .get(format!("{}/orders?user_id=", api_url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 400).await["errors"][0]["field"],
        "user_id"
    );
    let res = http()
        .get(format!("{}/orders?user_id=a%20b", api_url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 400).await["errors"][0]["field"],
        "user_id"
    );
    // Forged cursors: another partition, a non-ULID key, a number, an empty string.
    use base64::Engine;
    for forged in [
        json!({"user_id": "someone-else", "order_id": ulid::Ulid::new().to_string()}),
        json!({"user_id": user, "order_id": "not-a-ulid"}),
        json!({"user_id": user, "order_id": 5}),
        json!({"user_id": "", "order_id": ulid::Ulid::new().to_string()}),
    ] {
        let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        let res = http()
            .get(format!("{}/orders?cursor={c}", api_url()))
            .bearer_auth(token(&user, false))
            .send()
            .await
            .unwrap();
        assert_eq!(
            assert_problem(res, 400).await["errors"][0]["field"],
            "cursor",
            "{forged}"
        );
    }
    let res = http()
        .post(format!("{}/orders", api_url()))
        .header("idempotency-key", "x")
        .json(&order_body(&[(&sku, 1)], "tok_visa"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    let mut huge = order_body(&[(&sku, 1)], "tok_visa");
    huge["shipping"]["line1"] = json!("x".repeat(70 * 1024));
    assert_problem(place(&user, "e9", &huge).await, 413).await;
}
