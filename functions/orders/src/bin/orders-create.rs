//! `POST /orders`: place an order (idempotent by `Idempotency-Key`); 202 `PENDING`.

use orders::{DynamoCatalog, DynamoOrderStore, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let client = shared::aws::dynamodb(&sdk);
    let store = DynamoOrderStore::from_env(client.clone()).await?;
    let catalog = DynamoCatalog::from_env(client)?;
    let Some(idempotency) = store.idempotency() else {
        return Err("the orders store has no idempotency table".into());
    };
    shared::http::serve(|req| api::create(&store, &catalog, idempotency, req)).await
}
