//! `PUT /products/{sku}`: create or replace a product (admin).

use inventory::{DynamoProductStore, api};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoProductStore::from_env().await?;
    shared::http::serve(|req| api::put_product(&store, req)).await
}
