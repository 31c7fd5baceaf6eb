//! Stock reservation against the emulator: 200 orders race for 50 units and exactly 50
//! win; every step is idempotent by order id; the counts always add up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use inventory::domain::{ProductName, StockDelta};
use inventory::reservation::{
    Move, OUT_OF_STOCK, ReservationState, Reservations, StockLineInput, StockStepInput,
};
use inventory::{DynamoProductStore, ProductStore, Trace};
use shared::catalog::Sku;
use shared::money::Money;
use shared::step::TRANSIENT;

struct Env {
    products: DynamoProductStore,
    reservations: Reservations,
}

async fn env() -> Env {
    let table = std::env::var("INVENTORY_TABLE")
        .expect("INVENTORY_TABLE is not set: run through `make test`");
    let sdk = shared::aws::sdk_config().await.unwrap();
    let client = shared::aws::dynamodb(&sdk);
    Env {
        products: DynamoProductStore::new(client.clone(), table.clone()),
        reservations: Reservations::new(client, table),
    }
}

async fn product(env: &Env, on_hand: i64) -> Sku {
    let id = ulid::Ulid::new().to_string();
    let sku = Sku::try_from(format!("RSV-{}", &id[14..])).unwrap();
    let trace = Trace {
        correlation_id: "it".into(),
        causation_id: "it".into(),
    };
    let now = shared::time::now();
    inventory::upsert(
        &env.products,
        sku.clone(),
        ProductName::try_from("Lamp".to_owned()).unwrap(),
        Money::parse("30", "EUR").unwrap(),
        &trace,
        now,
    )
    .await
    .unwrap();
    inventory::adjust_stock(
        &env.products,
        sku.clone(),
        StockDelta::try_from(on_hand).unwrap(),
        &trace,
        now,
    )
    .await
    .unwrap();
    sku
}

fn input(order_id: &str, lines: &[(&Sku, u32)]) -> StockStepInput {
    StockStepInput {
        order_id: order_id.parse().expect("an order id"),
        items: lines
            .iter()
            .map(|(s, q)| StockLineInput {
                sku: (*s).clone(),
                quantity: *q,
            })
            .collect(),
        correlation_id: Some("it".into()),
    }
}

async fn counts(env: &Env, sku: &Sku) -> (i64, i64, i64) {
    let p = env.products.get(sku).await.unwrap().unwrap();
    assert_eq!(
        p.available,
        p.on_hand - p.reserved,
        "available = on hand - reserved"
    );
    assert!(p.available >= 0, "available never negative");
    (p.on_hand, p.reserved, p.available)
}

#[tokio::test]
async fn two_hundred_orders_race_for_fifty_units_and_exactly_fifty_win() {
    let env = env().await;
    let sku = product(&env, 50).await;
    let orders: Vec<String> = (0..200).map(|_| ulid::Ulid::new().to_string()).collect();
    let results = futures::future::join_all(orders.iter().map(|order_id| {
        let (env, sku) = (&env, &sku);
        async move {
            // As the state machine does: transient failures are retried, business ones not.
            for _ in 0..10 {
                match inventory::reservation::reserve_step(
                    &env.reservations,
                    input(order_id, &[(sku, 1)]),
                )
                .await
                {
                    Err(e) if e.error_type == TRANSIENT => continue,
                    other => return other,
                }
            }
            panic!("reservation of {order_id} kept failing transiently");
        }
    }))
    .await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(o) if o.changed))
        .count();
    let out_of_stock = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.error_type == OUT_OF_STOCK))
        .count();
    assert_eq!(
        (won, out_of_stock),
        (50, 150),
        "exactly 50 reserved, every other order out of stock"
    );
    assert_eq!(counts(&env, &sku).await, (50, 50, 0), "none oversold");
}

#[tokio::test]
async fn a_multi_line_reservation_is_all_or_none() {
    let env = env().await;
    let (plenty, scarce) = (product(&env, 10).await, product(&env, 1).await);
    let order = ulid::Ulid::new().to_string();
    let err = inventory::reservation::reserve_step(
        &env.reservations,
        input(&order, &[(&plenty, 3), (&scarce, 2)]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, OUT_OF_STOCK);
    assert!(
        err.message.contains(scarce.as_str()) && !err.message.contains(plenty.as_str()),
        "{}",
        err.message
    );
    assert_eq!(
        counts(&env, &plenty).await,
        (10, 0, 10),
        "the line that fitted was not reserved either"
    );
    assert_eq!(counts(&env, &scarce).await, (1, 0, 1));
    assert!(env.reservations.get(&order).await.unwrap().is_none());
}

#[tokio::test]
async fn every_step_changes_nothing_the_second_time() {
    let env = env().await;
    let sku = product(&env, 10).await;

    // Reserve, twice: held once.
    let order = ulid::Ulid::new().to_string();
    let first =
        inventory::reservation::reserve_step(&env.reservations, input(&order, &[(&sku, 4)]))
            .await
            .unwrap();
    let again =
        inventory::reservation::reserve_step(&env.reservations, input(&order, &[(&sku, 4)]))
            .await
            .unwrap();
    assert!(first.changed && !again.changed);
    assert_eq!(counts(&env, &sku).await, (10, 4, 6));

    // Commit, twice: taken once. Restock, twice: back once.
    for (step, expected) in [(Move::Commit, (6, 0, 6)), (Move::Restock, (10, 0, 10))] {
        let first = inventory::reservation::move_step(&env.reservations, step, input(&order, &[]))
            .await
            .unwrap();
        let again = inventory::reservation::move_step(&env.reservations, step, input(&order, &[]))
            .await
            .unwrap();
        assert!(first.changed && !again.changed, "{step:?}");
        assert_eq!(counts(&env, &sku).await, expected, "{step:?}");
    }
    // A restocked order cannot be released or committed again.
    let err =
        inventory::reservation::move_step(&env.reservations, Move::Commit, input(&order, &[]))
            .await
            .unwrap_err();
    assert_eq!(err.error_type, inventory::reservation::INVALID_STATE);

    // Reserve then release, twice: given back once. Releasing what was never reserved
    // (the reservation failed) gives nothing back and seals the order's key.
    let order = ulid::Ulid::new().to_string();
    inventory::reservation::reserve_step(&env.reservations, input(&order, &[(&sku, 7)]))
        .await
        .unwrap();
    assert_eq!(counts(&env, &sku).await, (10, 7, 3));
    let first =
        inventory::reservation::move_step(&env.reservations, Move::Release, input(&order, &[]))
            .await
            .unwrap();
    let again =
        inventory::reservation::move_step(&env.reservations, Move::Release, input(&order, &[]))
            .await
            .unwrap();
    assert!(first.changed && !again.changed);
    assert_eq!(again.status, ReservationState::Released);
    assert_eq!(counts(&env, &sku).await, (10, 0, 10));
    let late = ulid::Ulid::new().to_string();
    let never =
        inventory::reservation::move_step(&env.reservations, Move::Release, input(&late, &[]))
            .await
            .unwrap();
    assert_eq!(never.status, ReservationState::Released);
    // The release sealed the order's key: a reserve arriving after it (an invocation that
    // outlived its timeout) holds nothing.
    let reserved =
        inventory::reservation::reserve_step(&env.reservations, input(&late, &[(&sku, 2)]))
            .await
            .unwrap();
    assert_eq!(
        (reserved.status, reserved.changed),
        (ReservationState::Released, false)
    );
    assert_eq!(counts(&env, &sku).await, (10, 0, 10));
}
