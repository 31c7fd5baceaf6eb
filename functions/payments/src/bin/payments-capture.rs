//! Saga step: take the held amount (`PaymentCaptureFailed`).

use payments::PaymentMove;
use payments::provider::SandboxProvider;
use payments::store::PaymentStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let store = PaymentStore::from_env(false).await?;
    let provider = SandboxProvider;
    shared::step::run(|input| payments::apply(&store, &provider, PaymentMove::Capture, input)).await
}
