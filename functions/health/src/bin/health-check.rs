//! `GET /health`: whether this region can serve requests (its tables and bus reachable), for
//! the Route 53 health check in front of it. No identity: the health checkers have none.

use health::{AwsProbe, Region, api};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let region = Region::from_env()?;
    let sdk = shared::aws::sdk_config().await?;
    let probe = AwsProbe::new(&sdk);
    shared::http::serve(|_req| api::check(&probe, &region)).await
}
