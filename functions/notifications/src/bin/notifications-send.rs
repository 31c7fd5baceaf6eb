//! Notifications consumer: on the `notifications` queue, tells the customer about
//! `OrderConfirmed`, `OrderRejected`, `OrderCancelled` and `PaymentRefunded`, once per
//! event; a replayed event notifies no one.

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let dynamodb = shared::aws::dynamodb(&sdk);
    let dedupe = shared::consumer::Dedupe::from_env(dynamodb)?;
    shared::consumer::run(dedupe, notifications::from_env()?).await
}
