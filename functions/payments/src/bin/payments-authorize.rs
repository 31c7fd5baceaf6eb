//! Saga step: hold the order's total on the customer's card (`PaymentDeclined`,
//! `PaymentProviderTimeout`).

use payments::provider::SandboxProvider;
use payments::store::PaymentStore;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = PaymentStore::from_env(true).await?;
    let provider = SandboxProvider;
    shared::step::run(|input| payments::authorize(&store, &provider, input)).await
}
