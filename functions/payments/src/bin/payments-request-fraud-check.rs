//! Saga step: put the transaction and the task token on the `transactions` stream for
//! the fraud scorer, whose answer the state machine waits for.

use payments::fraud_check::{TransactionStream, request};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let stream = TransactionStream::from_env().await?;
    shared::step::run(payments::fraud_check::REQUEST, |input| {
        request(&stream, input)
    })
    .await
}
