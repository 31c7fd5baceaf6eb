//! `POST /users`: a caller registers its own profile.

use users::{DynamoUserStore, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoUserStore::from_env().await?;
    shared::http::serve(|req| api::create(&store, req)).await
}
