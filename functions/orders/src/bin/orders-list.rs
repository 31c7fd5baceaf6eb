//! `GET /orders`: the caller's orders newest first (an admin may name `?user_id=`).

use orders::{DynamoOrderStore, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = DynamoOrderStore::claimless_from_env(&sdk)?;
    shared::http::serve(|req| api::list(&store, req)).await
}
