//! Saga compensation: give an order's reserved units back (idempotent; nothing reserved is nothing to do).

use inventory::reservation::Move;
use inventory::reservation::Reservations;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = Reservations::from_env().await?;
    shared::step::run(inventory::reservation::RELEASE, |input| {
        inventory::reservation::move_step(&store, Move::Release, input)
    })
    .await
}
