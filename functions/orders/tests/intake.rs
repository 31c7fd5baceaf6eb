//! Order intake against the emulator: the round trips of each operation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use orders::domain::{Quantity, Shipping};
use orders::{DynamoCatalog, DynamoOrderStore, NewOrder, OrderStore, Trace};
use shared::catalog::Sku;
use shared::idempotency::{Claim, fingerprint};
use shared::identity::Caller;
use shared::metrics::DynamoDbRequestCounter;

#[tokio::test]
async fn intake_is_one_batch_read_and_one_transaction_and_reads_are_one_request() {
    let env = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run through `make test`"))
    };
    let sdk = shared::aws::sdk_config().await.unwrap();
    let counter = DynamoDbRequestCounter::default();
    let client = shared::aws::dynamodb_with_counter(&sdk, counter.clone());
    let idem = shared::idempotency::Idempotency::new(client.clone(), env("IDEMPOTENCY_TABLE"));
    let store = DynamoOrderStore::new(client.clone(), env("ORDERS_TABLE"), idem.clone());
    let catalog = DynamoCatalog::new(client.clone(), env("INVENTORY_TABLE"));

    // A product to order, written as the inventory service stores it.
    let id = ulid::Ulid::new().to_string();
    let sku = Sku::try_from(format!("IT-{}", &id[14..])).unwrap();
    client
        .put_item()
        .table_name(env("INVENTORY_TABLE"))
        .set_item(Some(
            shared::dynamo::to_item(&serde_json::json!({
                "sku": sku.as_str(), "catalog": "products", "name": "Cup",
                "price": {"amount": "3.00", "currency": "EUR"},
                "on_hand": 9, "reserved": 0, "available": 9, "version": 1,
                "created_at": "2026-11-21T00:00:00.000Z", "updated_at": "2026-11-21T00:00:00.000Z"
            }))
            .unwrap(),
        ))
        .send()
        .await
        .unwrap();

    let caller = Caller {
        user_id: format!("it-{}", id.to_lowercase()).parse().unwrap(),
        is_admin: false,
    };
    let new = NewOrder {
        lines: vec![(sku, Quantity::try_from(2).unwrap())],
        shipping: Shipping::parse(
            "A".into(),
            "B 1".into(),
            "C".into(),
            "D".into(),
            "DE".into(),
        )
        .unwrap(),
        payment_token: "tok_visa".into(),
        source_ip: Some("203.0.113.7".parse().unwrap()),
    };
    let now = shared::time::now();
    let before = counter.get();
    let Claim::Acquired(claimed) = idem
        .claim(&format!("it#{id}"), &fingerprint(b"{}"), now)
        .await
        .unwrap()
    else {
        panic!()
    };
    let trace = Trace {
        correlation_id: "c".into(),
        causation_id: "r".into(),
    };
    let (order, response) =
        orders::place(&store, &catalog, &caller, new, &trace, now, Some(&claimed))
            .await
            .unwrap();
    assert_eq!(
        counter.get() - before,
        3,
        "POST /orders: claim + BatchGetItem + TransactWriteItems"
    );
    assert_eq!(order.total.amount(), "6.00");

    // The transaction completed the claim: a repeat replays the stored answer.
    match idem
        .claim(&format!("it#{id}"), &fingerprint(b"{}"), now)
        .await
        .unwrap()
    {
        Claim::Replay(r) => assert_eq!(r, response),
        other => panic!("{other:?}"),
    }

    let before = counter.get();
    assert!(store.get(&order.order_id).await.unwrap().is_some());
    let page = shared::pagination::PageRequest {
        limit: 10,
        cursor: None,
    };
    assert_eq!(
        store
            .list_for_user(&caller.user_id, &page)
            .await
            .unwrap()
            .0
            .len(),
        1
    );
    assert_eq!(
        counter.get() - before,
        2,
        "GET /orders/{{id}} and GET /orders: one request each"
    );
}
