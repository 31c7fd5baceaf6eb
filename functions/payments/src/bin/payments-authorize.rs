//! Saga step: hold the order's total on the customer's card (`PaymentDeclined`,
//! `PaymentProviderTimeout`, `PaymentUnavailable`).

use payments::store::PaymentStore;
use payments::stripe::StripeProvider;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = PaymentStore::from_sdk(&sdk)?;
    let provider = StripeProvider::from_env(&sdk).await?;
    shared::step::run(payments::AUTHORIZE, |input| {
        payments::authorize(&store, &provider, input)
    })
    .await
}
