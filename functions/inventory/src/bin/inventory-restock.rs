//! Cancellation step: a confirmed order's units come back to the shelf.

use inventory::reservation::Move;
use inventory::reservation::Reservations;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = Reservations::from_env().await?;
    shared::step::run(inventory::reservation::RESTOCK, |input| {
        inventory::reservation::move_step(&store, Move::Restock, input)
    })
    .await
}
