//! Sales projection: on the `sales-projection` queue, folds `OrderConfirmed` and
//! `OrderCancelled` into the sales read model, live and from archive replays alike.

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let dynamodb = shared::aws::dynamodb(&sdk);
    let dedupe = shared::consumer::Dedupe::from_env(dynamodb.clone())?;
    shared::consumer::run(dedupe, analytics::SalesProjection::from_env(dynamodb)?).await
}
