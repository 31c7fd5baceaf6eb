//! AWS clients, built once per cold start from the standard SDK settings.
//!
//! Endpoints, region and credentials come from the environment the SDK already reads
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...), so the local stack points the same code at
//! the emulator and nothing here knows whether it runs locally or in AWS.

use crate::metrics::DynamoDbRequestCounter;
use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;

/// Loads the shared SDK configuration from the environment.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A DynamoDB client whose requests are counted for the per-invocation metrics
/// (see [`crate::metrics`]), so every operation's round trips are visible.
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    dynamodb_with_counter(config, DynamoDbRequestCounter::default())
}

/// A DynamoDB client that also counts into `counter`; tests use it to prove how many
/// round trips an operation makes.
pub fn dynamodb_with_counter(
    config: &SdkConfig,
    counter: DynamoDbRequestCounter,
) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(config)
        .interceptor(counter)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}
