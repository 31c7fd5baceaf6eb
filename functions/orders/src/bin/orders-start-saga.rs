//! Saga starter: on the `order-placed` queue, starts one `place-order` execution per
//! `OrderPlaced`, named by the order id (a duplicate start is a no-op); a replayed
//! `OrderPlaced` starts nothing.

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let dynamodb = shared::aws::dynamodb(&sdk);
    let dedupe = shared::consumer::Dedupe::from_env(dynamodb.clone())?;
    let starter = orders::workflow::SagaStarter {
        workflows: orders::workflow::Workflows::place_order(&sdk)?,
        orders: orders::store::DynamoOrderStore::claimless_from_env(&sdk)?,
        profiles: users::profiles::Profiles::from_env(dynamodb.clone())?,
    };
    shared::consumer::run(dedupe, starter).await
}
