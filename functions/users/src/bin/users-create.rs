//! `POST /users`: a caller registers its own profile.

use users::{DynamoUserStore, api};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoUserStore::from_env().await?;
    shared::http::serve(|req| api::create(&store, req)).await
}
