//! `GET /products`: the catalog in SKU order, paginated.

use inventory::{DynamoProductStore, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoProductStore::from_env().await?;
    shared::http::serve(|req| api::list_products(&store, req)).await
}
