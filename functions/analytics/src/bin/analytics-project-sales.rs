//! Sales projection: on the `sales-projection` queue, folds `OrderConfirmed` and
//! `OrderCancelled` into the sales read model, live and from archive replays alike.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let dynamodb = shared::aws::dynamodb(&sdk);
    let dedupe = shared::consumer::Dedupe::from_env(dynamodb.clone())?;
    shared::consumer::run(dedupe, analytics::SalesProjection::from_env(dynamodb)?).await
}
