//! `POST /orders/{order_id}/review`: an admin decides an order held for fraud review.

use orders::DynamoOrderStore;
use orders::workflow::{Workflows, review};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let orders = DynamoOrderStore::claimless_from_env(&sdk)?;
    let workflows = Workflows::answers(&sdk);
    shared::http::serve(|req| review(&orders, &workflows, req)).await
}
