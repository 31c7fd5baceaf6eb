//! Saga step: the order is paid and its stock committed: `CONFIRMED`.

use orders::DynamoOrderStore;
use orders::saga::{OrderStep, run_step};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = DynamoOrderStore::claimless_from_env(&sdk)?;
    shared::step::run(orders::saga::CONFIRM, |input| {
        run_step(&store, OrderStep::Confirm, input)
    })
    .await
}
