//! `GET /orders/{order_id}`: read an order (its owner or an admin).

use orders::{DynamoOrderStore, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = DynamoOrderStore::claimless_from_env(&sdk)?;
    shared::http::serve(|req| api::get(&store, req)).await
}
