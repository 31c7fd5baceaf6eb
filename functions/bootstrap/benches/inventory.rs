//! Warm handler cost of `GET /products`, without the network: the Lambda event decoded,
//! the caller and the page asked for, one page of products read back from their DynamoDB
//! items (in memory; the query's round trip is not measured), the next cursor encoded,
//! and the 200 answer. `make bench` runs it; see orders.rs beside it.

// A benchmark whose setup fails has nothing to measure: it stops there, loudly.
#![allow(clippy::expect_used, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{Criterion, criterion_group, criterion_main};
use inventory::domain::{Product, ProductName};
use inventory::{ProductEvent, ProductStore};
use serde_json::json;
use shared::catalog::Sku;
use shared::dynamo::{Item, StoreError, from_item, to_item};
use shared::money::Money;
use shared::pagination::PageRequest;
use std::hint::black_box;

/// The inventory table in memory, as the items a query of the catalog index returns.
struct Catalog(Vec<Item>);

impl ProductStore for Catalog {
    async fn get(&self, sku: &Sku) -> Result<Option<Product>, StoreError> {
        let wanted = AttributeValue::S(sku.to_string());
        self.0
            .iter()
            .find(|i| i.get("sku") == Some(&wanted))
            .cloned()
            .map(from_item)
            .transpose()
    }

    async fn save(
        &self,
        _: &Product,
        _: Option<u64>,
        _: &ProductEvent,
        _: Option<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn list(&self, page: &PageRequest) -> Result<(Vec<Product>, Option<Item>), StoreError> {
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let products = self
            .0
            .iter()
            .take(limit)
            .cloned()
            .map(from_item)
            .collect::<Result<Vec<Product>, _>>()?;
        let next = products.last().map(|p| {
            Item::from([
                ("catalog".to_owned(), AttributeValue::S("products".into())),
                ("sku".to_owned(), AttributeValue::S(p.sku.to_string())),
            ])
        });
        Ok((products, next))
    }
}

fn product(i: usize) -> Product {
    let now = shared::time::now();
    Product {
        sku: Sku::try_from(format!("BENCH-{i:04}")).expect("a valid sku"),
        name: ProductName::try_from(format!("Enamel mug no. {i}")).expect("a valid name"),
        price: Money::parse("12.50", "EUR").expect("a valid price"),
        on_hand: 100,
        reserved: 3,
        available: 97,
        version: 7,
        created_at: now,
        updated_at: now,
    }
}

fn list_event(limit: usize) -> String {
    json!({
        "version": "2.0",
        "routeKey": "GET /products",
        "rawPath": "/products",
        "rawQueryString": format!("limit={limit}"),
        "queryStringParameters": {"limit": limit.to_string()},
        "headers": {"host": "api.example.com", "user-agent": "bench"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "bench-request", "routeKey": "GET /products",
            "stage": "$default", "time": "07/Dec/2026:00:00:00 +0000", "timeEpoch": 1_796_601_600_000_u64,
            "http": {"method": "GET", "path": "/products", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "authorizer": {"jwt": {"claims": {"sub": "bench-user"}, "scopes": null}}
        },
        "isBase64Encoded": false
    })
    .to_string()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let catalog = Catalog(
        (0..100)
            .map(|i| to_item(&product(i)).expect("an item"))
            .collect(),
    );
    for limit in [20, 100] {
        let event = list_event(limit);
        c.bench_function(&format!("GET /products ({limit} per page)"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req =
                        lambda_http::request::from_str(black_box(&event)).expect("a valid event");
                    let response = inventory::api::list_products(&catalog, req)
                        .await
                        .expect("a page");
                    assert_eq!(response.status(), 200);
                    black_box(response)
                })
            });
        });
    }
}

criterion_group!(handlers, benches);
criterion_main!(handlers);
