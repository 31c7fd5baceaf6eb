//! `GET /orders/{order_id}/risk`: the fraud assessment of an order (admin only).

use fraud::store::FraudStore;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = FraudStore::from_env(&sdk)?;
    shared::http::serve(|req| fraud::api::get_risk(&store, req)).await
}
