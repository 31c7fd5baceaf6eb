//! Saga step: take the held amount (`PaymentCaptureFailed`).

use payments::PaymentMove;
use payments::provider::SandboxProvider;
use payments::store::PaymentStore;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = PaymentStore::from_env(false).await?;
    let provider = SandboxProvider;
    shared::step::run(|input| payments::apply(&store, &provider, PaymentMove::Capture, input)).await
}
