//! `/products` end to end: the admin manages the catalog and stock, anyone reads it;
//! state checked in the emulator, events checked on the bus's archive path via the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::*;
use serde_json::{Value, json};

fn admin() -> String {
    token(&fresh_admin_id(), true)
}

async fn put(sku: &str, body: &Value, bearer: &str) -> reqwest::Response {
    http()
        .put(format!("{}/products/{sku}", api_url()))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn adjust(sku: &str, delta: i64, bearer: &str) -> reqwest::Response {
    http()
        .post(format!("{}/products/{sku}/stock", api_url()))
        .bearer_auth(bearer)
        .json(&json!({"delta": delta}))
        .send()
        .await
        .unwrap()
}

/// What a reservation does to a product (the saga's reserve step): more reserved, less
/// available, a new version.
async fn reserve_directly(sku: &str, units: i64) {
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    ddb.update_item()
        .table_name(table("inventory"))
        .key("sku", AttributeValue::S(sku.to_owned()))
        .update_expression("ADD reserved :q, available :minus, version :one")
        .expression_attribute_values(":q", AttributeValue::N(units.to_string()))
        .expression_attribute_values(":minus", AttributeValue::N((-units).to_string()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_admin_creates_replaces_and_stocks_a_product_and_anyone_reads_it() {
    let sku = fresh_sku("MUG");
    let body = json!({"name": "Enamel mug", "price": {"amount": "12.5", "currency": "EUR"}});
    let res = put(&sku, &body, &admin()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"],
        format!("/products/{sku}").as_str()
    );
    let created: Value = res.json().await.unwrap();
    assert_eq!(
        created["price"],
        json!({"amount": "12.50", "currency": "EUR"})
    );
    assert_eq!(
        created["stock"],
        json!({"on_hand": 0, "reserved": 0, "available": 0})
    );

    let res = adjust(&sku, 25, &admin()).await;
    assert_eq!(res.status(), 200);
    let stocked: Value = res.json().await.unwrap();
    assert_eq!(
        stocked["stock"],
        json!({"on_hand": 25, "reserved": 0, "available": 25})
    );

    let body =
        json!({"name": "Enamel mug, large", "price": {"amount": "14.00", "currency": "EUR"}});
    let res = put(&sku, &body, &admin()).await;
    assert_eq!(res.status(), 200, "a replace is 200");
    let replaced: Value = res.json().await.unwrap();
    assert_eq!(replaced["name"], "Enamel mug, large");
    assert_eq!(
        replaced["stock"]["on_hand"], 25,
        "replacing keeps the stock"
    );

    let res = http()
        .get(format!("{}/products/{sku}", api_url()))
        .bearer_auth(token(&fresh_user_id(), false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read, replaced);

    // Every change wrote its event to the table's outbox in the same transaction.
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    let scan = ddb
        .scan()
        .table_name(table("inventory"))
        .filter_expression("record_type = :o AND contains(detail, :sku)")
        .expression_attribute_values(":o", AttributeValue::S("outbox".into()))
        .expression_attribute_values(":sku", AttributeValue::S(format!("\"{sku}\"")))
        .send()
        .await
        .unwrap();
    let mut types: Vec<String> = scan
        .items()
        .iter()
        .map(|i| i["detail_type"].as_s().unwrap().clone())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["ProductUpserted", "ProductUpserted", "StockAdjusted"]
    );
}

async fn adjust_keyed(sku: &str, delta: i64, bearer: &str, key: &str) -> reqwest::Response {
    http()
        .post(format!("{}/products/{sku}/stock", api_url()))
        .bearer_auth(bearer)
        .header("idempotency-key", key)
        .json(&json!({"delta": delta}))
        .send()
        .await
        .unwrap()
}

/// The admin's page sends `{"delta": 25}`, the answer is lost, the page sends it again with
/// the same key: 25 units are added, once, and both answers are the same.
#[tokio::test]
async fn a_stock_adjustment_retried_with_its_key_adds_once() {
    let sku = fresh_sku("KEY");
    create_product(&sku, "4.00", "EUR", 10).await;
    let admin = fresh_admin_id();
    let bearer = token(&admin, true);
    let key = ulid::Ulid::new().to_string();
    let first = adjust_keyed(&sku, 25, &bearer, &key).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = adjust_keyed(&sku, 25, &bearer, &key).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the first answer, again");
    assert_eq!(first["stock"]["on_hand"], 35);
    let read = http()
        .get(format!("{}/products/{sku}", api_url()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["stock"]["on_hand"], 35, "added once: {read}");
    // Another adjustment under the same key is refused; the key of one SKU is not
    // another's; a malformed key is a 400.
    assert_problem(adjust_keyed(&sku, 5, &bearer, &key).await, 422).await;
    let other = fresh_sku("KEY");
    create_product(&other, "4.00", "EUR", 0).await;
    let res = adjust_keyed(&other, 25, &bearer, &key).await;
    assert_eq!(res.status(), 200);
    let res: Value = res.json().await.unwrap();
    assert_eq!(res["stock"]["on_hand"], 25);
    assert_problem(adjust_keyed(&sku, 1, &bearer, &"k".repeat(256)).await, 400).await;
    // A refusal is the key's answer too: below what is reserved, again 409.
    reserve_directly(&sku, 30).await;
    let refused = ulid::Ulid::new().to_string();
    assert_problem(adjust_keyed(&sku, -10, &bearer, &refused).await, 409).await;
    assert_problem(adjust_keyed(&sku, -10, &bearer, &refused).await, 409).await;
}

#[tokio::test]
async fn stock_never_goes_below_what_is_reserved() {
    let sku = fresh_sku("TEA");
    create_product(&sku, "3.20", "GBP", 10).await;
    reserve_directly(&sku, 4).await;

    let problem = assert_problem(adjust(&sku, -7, &admin()).await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("reserved"),
        "{problem}"
    );

    let res = adjust(&sku, -6, &admin()).await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(
        p["stock"],
        json!({"on_hand": 4, "reserved": 4, "available": 0})
    );

    assert_problem(adjust(&sku, -1, &admin()).await, 409).await;
}

#[tokio::test]
async fn the_catalog_lists_in_sku_order_page_by_page() {
    let prefix = fresh_sku("LST");
    for suffix in ["A", "B", "C"] {
        create_product(&format!("{prefix}-{suffix}"), "1.00", "EUR", 0).await;
    }
    let bearer = token(&fresh_user_id(), false);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{}/products?limit=2", api_url());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = http().get(&url).bearer_auth(&bearer).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["sku"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10_000, "pagination does not end");
    }
    let mine: Vec<&String> = seen.iter().filter(|s| s.starts_with(&prefix)).collect();
    assert_eq!(
        mine,
        [
            &format!("{prefix}-A"),
            &format!("{prefix}-B"),
            &format!("{prefix}-C")
        ]
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "SKU order across pages");
}

#[tokio::test]
async fn every_refusal_is_a_problem_document() {
    let sku = fresh_sku("ERR");
    let user = token(&fresh_user_id(), false);
    let good = json!({"name": "Thing", "price": {"amount": "1.00", "currency": "EUR"}});

    // 403: customers cannot change the catalog.
    assert_problem(put(&sku, &good, &user).await, 403).await;
    assert_problem(adjust(&sku, 1, &user).await, 403).await;

    // 400: invalid sku, price, currency, delta, unknown fields.
    let p = assert_problem(put("lower-case", &good, &admin()).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "sku");
    let bad_price = json!({"name": "Thing", "price": {"amount": "1.005", "currency": "EUR"}});
    let p = assert_problem(put(&sku, &bad_price, &admin()).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "price.amount");
    let bad_currency = json!({"name": "Thing", "price": {"amount": "1.00", "currency": "EURO"}});
    let p = assert_problem(put(&sku, &bad_currency, &admin()).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "price.currency");
    let float_price = json!({"name": "Thing", "price": {"amount": 1.0, "currency": "EUR"}});
    let p = assert_problem(put(&sku, &float_price, &admin()).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "price.amount");
    let extra =
        json!({"name": "Thing", "price": {"amount": "1.00", "currency": "EUR"}, "stock": 5});
    let p = assert_problem(put(&sku, &extra, &admin()).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "stock");

    // 404: unknown products, for reads and stock changes.
    let res = http()
        .get(format!("{}/products/{sku}", api_url()))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    assert_problem(adjust(&sku, 5, &admin()).await, 404).await;

    create_product(&sku, "1.00", "EUR", 0).await;
    let p = assert_problem(adjust(&sku, 0, &admin()).await, 400).await;
    assert_eq!(p["errors"][0]["field"], "delta");

    // 400: list parameters.
    for limit in [0, 101] {
        let res = http()
            .get(format!("{}/products?limit={limit}", api_url()))
            .bearer_auth(&user)
            .send()
            .await
            .unwrap();
        assert_eq!(
            assert_problem(res, 400).await["errors"][0]["field"],
            "limit",
            "limit={limit}"
        );
    }
    let res = http()
        .get(format!("{}/products?cursor=garbage", api_url()))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 400).await["errors"][0]["field"],
        "cursor"
    );

    // 401 before anything runs.
    let res = http()
        .get(format!("{}/products/{sku}", api_url()))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
}
