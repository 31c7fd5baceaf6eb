//! `POST /products/{sku}/stock`: correct on-hand stock (admin), never below what is reserved,
//! at most once per `Idempotency-Key`.

use inventory::{DynamoProductStore, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = DynamoProductStore::from_sdk(&sdk)?;
    let idem = shared::idempotency::Idempotency::new(
        shared::aws::dynamodb(&sdk),
        shared::config::required("IDEMPOTENCY_TABLE")?,
    );
    shared::http::serve(|req| api::adjust_stock(&store, &idem, req)).await
}
