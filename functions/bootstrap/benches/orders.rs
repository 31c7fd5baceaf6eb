//! Warm handler cost of the orders functions: the work one invocation does inside the
//! function, without the network. The stores are in memory and hold DynamoDB items, so
//! what a request costs in (de)serializing items is measured; the round trips themselves
//! are not (local/round_trips.py counts them).
//!
//! - `POST /orders`: the Lambda event decoded into a request, the caller, the body parsed
//!   and validated, the lines priced from the catalog, the order, its `OrderPlaced` event
//!   and their items, and the 202 answer.
//! - `GET /orders/{id}`: the event decoded, the caller, the item read back into an order,
//!   the owner checked, the 200 answer.
//! - the `orders-confirm` saga step: its input parsed, the order read from its item, the
//!   transition planned, the outbox event and its transaction item built, the outcome
//!   serialized.
//!
//! `make bench` runs them (`cargo bench -p bootstrap`) and copies criterion's estimates into
//! docs/benchmarks/bench.md.

// A benchmark whose setup fails has nothing to measure: it stops there, loudly.
#![allow(clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use orders::domain::{CatalogEntry, Order};
use orders::saga::{OrderMove, OrderStep, OrderStepInput, move_writes, run_step};
use orders::{Catalog, Intake, OrderStore, Trace};
use serde_json::json;
use shared::catalog::Sku;
use shared::dynamo::{Item, StoreError, from_item, to_item};
use shared::identity::Caller;
use shared::money::Money;
use shared::outbox::Outbox;
use shared::pagination::PageRequest;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

const USER: &str = "bench-user";

/// The catalog in memory: what the batch read would have returned.
struct Prices(HashMap<Sku, CatalogEntry>);

impl Catalog for Prices {
    async fn entries(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>, StoreError> {
        Ok(skus
            .iter()
            .filter_map(|s| self.0.get(s).map(|e| (s.clone(), e.clone())))
            .collect())
    }
}

/// The orders table in memory, as items: a write serializes the order and its event the
/// way the transaction would carry them; a read deserializes the stored item.
struct Orders {
    outbox: Outbox,
    stored: Mutex<Option<Item>>,
}

impl OrderStore for Orders {
    async fn insert(&self, order: &Order, intake: Intake<'_>) -> Result<bool, StoreError> {
        let item = to_item(order)?;
        black_box(self.outbox.put(intake.event)?);
        *self.stored.lock().unwrap_or_else(|e| e.into_inner()) = Some(item);
        Ok(true)
    }

    async fn get(&self, _order_id: &str) -> Result<Option<Order>, StoreError> {
        let item = self
            .stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        item.map(from_item).transpose()
    }

    async fn list_for_user(
        &self,
        _user_id: &str,
        _page: &PageRequest,
    ) -> Result<(Vec<Order>, Option<Item>), StoreError> {
        Ok((Vec::new(), None))
    }
}

impl shared::step::Ledger for Orders {
    type Record = Order;
    type Move = OrderMove;
    type Effect = ();

    async fn read(&self, id: &str) -> Result<Option<Order>, StoreError> {
        OrderStore::get(self, id).await
    }

    async fn write(
        &self,
        order: Option<&Order>,
        step: &OrderMove,
        _: &(),
        trace: &Trace,
    ) -> Result<bool, StoreError> {
        let Some(order) = order else { return Ok(false) };
        let (extra, record) = move_writes(order, step, trace)?;
        black_box((extra, self.outbox.put_record(&record)?));
        Ok(true)
    }
}

/// An API Gateway (payload 2.0) event as the gateway sends it, from a signed-in customer.
fn http_event(route: &str, path: &str, params: serde_json::Value, body: Option<String>) -> String {
    let (method, _) = route.split_once(' ').unwrap_or((route, ""));
    json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "api.example.com",
            "idempotency-key": "bench-key-1",
            "user-agent": "bench"
        },
        "pathParameters": params,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "bench-request", "routeKey": route,
            "stage": "$default", "time": "07/Dec/2026:00:00:00 +0000", "timeEpoch": 1_796_601_600_000_u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "authorizer": {"jwt": {"claims": {"sub": USER, "email": "bench@example.com"}, "scopes": null}}
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

fn catalog(lines: usize) -> Prices {
    Prices(
        (0..lines)
            .map(|i| {
                let sku = Sku::try_from(format!("BENCH-{i}")).expect("a valid sku");
                let entry = CatalogEntry {
                    sku: sku.clone(),
                    price: Money::parse("12.50", "EUR").expect("a valid price"),
                    available: 1_000,
                };
                (sku, entry)
            })
            .collect(),
    )
}

fn order_body(lines: usize) -> String {
    let items: Vec<_> = (0..lines)
        .map(|i| json!({"sku": format!("BENCH-{i}"), "quantity": 2}))
        .collect();
    json!({
        "items": items,
        "shipping": {"name": "Bench", "line1": "Hauptstr. 1", "city": "Berlin",
                     "postal_code": "10115", "country": "DE"},
        "payment": {"token": "tok_visa"}
    })
    .to_string()
}

async fn post_order(orders: &Orders, prices: &Prices, event: &str) -> Order {
    let req = lambda_http::request::from_str(event).expect("a valid event");
    let caller = Caller::from_context(lambda_http::RequestExt::request_context_ref(&req))
        .expect("a signed-in caller");
    let new = orders::api::order_request(&req).expect("a valid order");
    let trace = Trace {
        correlation_id: "bench-correlation".into(),
        causation_id: "bench-request".into(),
    };
    let (order, response) = orders::place(
        orders,
        prices,
        &caller,
        new,
        &trace,
        shared::time::now(),
        None,
    )
    .await
    .expect("the order is placed");
    black_box(response.to_response(false).expect("a response"));
    order
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let orders = Orders {
        outbox: Outbox::new("commerce-orders", "order_id"),
        stored: Mutex::new(None),
    };

    for lines in [1, 10] {
        let prices = catalog(lines);
        let event = http_event(
            "POST /orders",
            "/orders",
            json!(null),
            Some(order_body(lines)),
        );
        c.bench_function(&format!("POST /orders ({lines} lines)"), |b| {
            b.iter(|| rt.block_on(post_order(&orders, &prices, black_box(&event))));
        });
    }

    // An order of three lines stored as its item, read back by its owner.
    let order = rt.block_on(post_order(
        &orders,
        &catalog(3),
        &http_event("POST /orders", "/orders", json!(null), Some(order_body(3))),
    ));
    let path = format!("/orders/{}", order.order_id);
    let get = http_event(
        "GET /orders/{order_id}",
        &path,
        json!({"order_id": order.order_id}),
        None,
    );
    c.bench_function("GET /orders/{order_id}", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = lambda_http::request::from_str(black_box(&get)).expect("a valid event");
                let response = orders::api::get(&orders, req).await.expect("the order");
                assert_eq!(response.status(), 200);
                black_box(response)
            })
        });
    });

    let input =
        json!({"order_id": order.order_id, "correlation_id": "bench-correlation"}).to_string();
    c.bench_function("saga step orders-confirm", |b| {
        b.iter(|| {
            rt.block_on(async {
                let input: OrderStepInput =
                    serde_json::from_str(black_box(&input)).expect("a valid step input");
                let outcome = run_step(&orders, OrderStep::Confirm, input)
                    .await
                    .expect("the step runs");
                black_box(serde_json::to_string(&outcome).expect("an outcome"))
            })
        });
    });
}

criterion_group!(handlers, benches);
criterion_main!(handlers);
