//! `GET /products/{sku}`: read a product with its stock.

use inventory::{DynamoProductStore, api};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoProductStore::from_env().await?;
    shared::http::serve(|req| api::get_product(&store, req)).await
}
