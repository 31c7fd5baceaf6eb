//! `GET /products`: the catalog in SKU order, paginated.

use inventory::{DynamoProductStore, api};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoProductStore::from_env().await?;
    shared::http::serve(|req| api::list_products(&store, req)).await
}
