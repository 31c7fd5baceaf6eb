//! The fraud scorer's work for one record, without the network: the user's features read
//! from a state holding a day of history ([`fraud::features`]), the amount converted to
//! euros ([`fraud::rates`]), the score with its reasons ([`fraud::model`]) and the state
//! updated with the record. What one core can score is one second over this figure. `make
//! bench` runs it; the batch path's DynamoDB requests are counted by the tests.
//!
//! Each iteration gets its own copy of the state, made before the clock starts and freed
//! after it stops, as a batch holds one state per user. (Criterion's batched inputs keep
//! thousands of copies alive at once; the first insert into each then grows its list into
//! fresh pages, and the figure was mostly page faults: 1.9 µs instead of 0.5.)

// A benchmark whose setup fails has nothing to measure: it stops there, loudly.
#![allow(clippy::expect_used, missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fraud::features::{HOUR_MS, Txn, UserState};
use fraud::model;
use fraud::rates;
use shared::money::Money;
use std::hint::black_box;

const T0: i64 = 1_796_000_000_000;

/// A customer with 20 orders over the last day (two cards, two shipping countries).
fn state() -> (UserState, Vec<String>) {
    let orders: Vec<String> = (0..21).map(|i| format!("01JDZ{i:021}")).collect();
    let mut state = UserState::default();
    for (i, order) in orders.iter().take(20).enumerate() {
        state.count(&Txn {
            order_id: order,
            at_ms: T0 + i as i64 * HOUR_MS,
            eur: 20.0 + i as f64,
            fingerprint: if i % 3 == 0 { "fp-b" } else { "fp-a" },
            ship_country: if i % 5 == 0 { "FR" } else { "DE" },
            profile_country: Some("DE"),
            account_created_ms: Some(T0 - 400 * 24 * HOUR_MS),
        });
    }
    (state, orders)
}

fn scoring(c: &mut Criterion) {
    let model = model::compiled().expect("the compiled model");
    let rates = rates::compiled().expect("the compiled rates");
    let (state, orders) = state();
    let amount = Money::parse("4200", "JPY").expect("an amount");
    let mut group = c.benchmark_group("fraud");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        "score one record (features, rates, model, state update)",
        |b| {
            b.iter_batched(
                || state.clone(),
                |mut state| {
                    let eur = rates.to_reference(black_box(&amount)).expect("a rate");
                    let txn = Txn {
                        order_id: &orders[20],
                        at_ms: T0 + 20 * HOUR_MS + 60_000,
                        eur,
                        fingerprint: "fp-a",
                        ship_country: "DE",
                        profile_country: Some("DE"),
                        account_created_ms: Some(T0 - 400 * 24 * HOUR_MS),
                    };
                    let score = model.score(&state.features(&txn));
                    state.count(&txn);
                    black_box((score, state))
                },
                BatchSize::PerIteration,
            );
        },
    );
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
