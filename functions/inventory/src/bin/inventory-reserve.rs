//! Saga step: reserve every line of an order (all or none); `OutOfStock` when a line is short.

use inventory::reservation::Reservations;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = Reservations::from_env().await?;
    shared::step::run(inventory::reservation::RESERVE, |input| {
        inventory::reservation::reserve_step(&store, input)
    })
    .await
}
