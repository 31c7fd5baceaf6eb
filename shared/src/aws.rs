//! AWS clients, built once per cold start from the standard SDK settings.
//!
//! Endpoints, region and credentials come from the environment the SDK already reads
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...), so the local stack points the same code at
//! the emulator and nothing here knows whether it runs locally or in AWS.

use crate::metrics::DynamoDbRequestCounter;
pub use aws_config::SdkConfig;
use aws_config::{AppName, BehaviorVersion};

/// Loads the shared SDK configuration from the environment.
///
/// Inside a function, the SDK's user agent names it (`app/<function name>`): CloudTrail
/// records it with every call, and the local emulator holds each function's calls against
/// the actions the declaration grants it (`local/sdk_calls.py`), which is how a call
/// that IAM would deny in AWS fails a test here.
pub async fn sdk_config() -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    match crate::config::optional("AWS_LAMBDA_FUNCTION_NAME").and_then(|n| AppName::new(n).ok()) {
        Some(app) => loader.app_name(app).load().await,
        None => loader.load().await,
    }
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

/// The ARN of execution `name` of the Step Functions state machine `state_machine_arn`
/// (the same account, region and machine name, resource type `execution`).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

#[cfg(test)]
mod execution_arn_tests {
    #[test]
    fn an_execution_arn_is_built_from_its_state_machine() {
        assert_eq!(
            super::execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:commerce-cancel-order",
                "cancel-01J-2"
            ),
            "arn:aws:states:eu-west-1:123456789012:execution:commerce-cancel-order:cancel-01J-2"
        );
    }
}
