//! Saga step: hold the order's total on the customer's card (`PaymentDeclined`,
//! `PaymentProviderTimeout`).

use payments::provider::SandboxProvider;
use payments::store::PaymentStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = PaymentStore::from_env(true).await?;
    let provider = SandboxProvider;
    shared::step::run(|input| payments::authorize(&store, &provider, input)).await
}
