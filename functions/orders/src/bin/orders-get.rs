//! `GET /orders/{order_id}`: read an order (its owner or an admin).

use orders::{DynamoOrderStore, api};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let store = DynamoOrderStore::from_env(shared::aws::dynamodb(&sdk)).await?;
    shared::http::serve(|req| api::get(&store, req)).await
}
