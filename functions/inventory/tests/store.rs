//! The inventory library against the emulator: optimistic concurrency keeps every
//! concurrent stock change, and each write is one read plus one transaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use inventory::domain::{ProductName, StockDelta};
use inventory::{DynamoProductStore, ProductStore, Trace};
use shared::catalog::Sku;
use shared::metrics::DynamoDbRequestCounter;
use shared::money::Money;

async fn store() -> (DynamoProductStore, DynamoDbRequestCounter) {
    let table = std::env::var("INVENTORY_TABLE")
        .expect("INVENTORY_TABLE is not set: run through `make test`");
    let sdk = shared::aws::sdk_config().await.unwrap();
    let counter = DynamoDbRequestCounter::default();
    (
        DynamoProductStore::new(
            shared::aws::dynamodb_with_counter(&sdk, counter.clone()),
            table,
        ),
        counter,
    )
}

fn sku() -> Sku {
    let id = ulid::Ulid::new().to_string();
    Sku::try_from(format!("IT-{}", &id[14..])).unwrap()
}

fn trace() -> Trace {
    Trace {
        correlation_id: "it".into(),
        causation_id: "it".into(),
    }
}

#[tokio::test]
async fn each_write_is_one_read_and_one_transaction_and_reads_are_one_request() {
    let (store, counter) = store().await;
    let sku = sku();
    let price = Money::parse("4.20", "EUR").unwrap();
    let name = ProductName::try_from("Spoon".to_owned()).unwrap();
    let now = shared::time::now();

    let before = counter.get();
    let (_, created) = inventory::upsert(&store, sku.clone(), name.clone(), price, &trace(), now)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        counter.get() - before,
        2,
        "create: GetItem + TransactWriteItems"
    );

    let before = counter.get();
    inventory::adjust_stock(
        &store,
        sku.clone(),
        StockDelta::try_from(7).unwrap(),
        &trace(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        counter.get() - before,
        2,
        "adjust: GetItem + TransactWriteItems"
    );

    let before = counter.get();
    let (p, created) = inventory::upsert(&store, sku.clone(), name, price, &trace(), now)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(p.on_hand, 7);
    assert_eq!(
        counter.get() - before,
        2,
        "replace: GetItem + TransactWriteItems"
    );

    let before = counter.get();
    assert!(store.get(&sku).await.unwrap().is_some());
    let page = shared::pagination::PageRequest {
        limit: 5,
        cursor: None,
    };
    assert!(!store.list(&page).await.unwrap().0.is_empty());
    assert_eq!(counter.get() - before, 2, "get and list: one request each");
}

#[tokio::test]
async fn concurrent_stock_changes_are_all_kept() {
    let (store, _) = store().await;
    let sku = sku();
    let now = shared::time::now();
    inventory::upsert(
        &store,
        sku.clone(),
        ProductName::try_from("Fork".to_owned()).unwrap(),
        Money::parse("1", "EUR").unwrap(),
        &trace(),
        now,
    )
    .await
    .unwrap();
    let deltas = [5_i64, 3, 2, 7, 1, 4];
    let results = futures::future::join_all(deltas.iter().map(|d| {
        let store = store.clone();
        let sku = sku.clone();
        async move {
            inventory::adjust_stock(
                &store,
                sku,
                StockDelta::try_from(*d).unwrap(),
                &trace(),
                now,
            )
            .await
        }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let p = store.get(&sku).await.unwrap().unwrap();
    let kept: i64 = deltas
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(d, _)| d)
        .sum();
    assert_eq!(p.on_hand, kept, "no lost update");
    assert_eq!(p.available, kept);
    assert!(
        ok >= 4,
        "optimistic retries let most writers through: {ok} of 6"
    );
    assert_eq!(p.version, 1 + ok as u64);
}
