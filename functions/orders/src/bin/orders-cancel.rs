//! `POST /orders/{order_id}/cancel`: cancel a confirmed order (its owner or an admin): refund and restock.

use orders::DynamoOrderStore;
use orders::workflow::{Workflows, cancel};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let orders = DynamoOrderStore::claimless_from_env(&sdk)?;
    let workflows = Workflows::cancel_order(&sdk)?;
    shared::http::serve(|req| cancel(&orders, &workflows, req)).await
}
