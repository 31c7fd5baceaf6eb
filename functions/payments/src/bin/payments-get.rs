//! `GET /orders/{order_id}/payment`: the payment of an order (its owner or an admin).

use payments::store::PaymentStore;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = PaymentStore::from_env().await?;
    shared::http::serve(|req| payments::api::get(&store, req)).await
}
