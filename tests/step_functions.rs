//! Step Functions in the emulator runs our real functions: a Task state invokes a Rust
//! Lambda through the launcher's forwarding to cargo lambda watch, and a function error
//! reaches `Catch` under its `errorType` name, as in AWS. The saga relies on both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_sfn::types::ExecutionStatus;
use e2e::*;
use serde_json::{Value, json};
use std::time::Duration;

/// errorType lambda_runtime reports when an event is not the function's payload type.
const DESERIALIZE_ERROR: &str = "&lambda_runtime::deserializer::DeserializeError";

/// A payload-2.0 API event for `GET /users/{id}` by `caller`, as the gateway builds it.
fn get_user_event(id: &str, caller: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "GET /users/{user_id}",
        "rawPath": format!("/users/{id}"),
        "rawQueryString": "",
        "headers": {"accept": "application/json"},
        "pathParameters": {"user_id": id},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": {"sub": caller}, "scopes": null}},
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {"method": "GET", "path": format!("/users/{id}"), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "sfn"},
            "requestId": format!("sfn-{id}"),
            "routeKey": "GET /users/{user_id}",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
}

fn definition() -> String {
    json!({
        "Comment": "Reads a profile through the real users-get function",
        "StartAt": "ReadProfile",
        "States": {
            "ReadProfile": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:users-get",
                    "Payload.$": "$.event"
                },
                "ResultSelector": {"statusCode.$": "$.Payload.statusCode", "body.$": "$.Payload.body"},
                "ResultPath": "$.result",
                "Catch": [{
                    "ErrorEquals": [DESERIALIZE_ERROR],
                    "ResultPath": "$.error",
                    "Next": "Refused"
                }],
                "Next": "Done"
            },
            "Refused": {"Type": "Pass", "Result": "caught", "ResultPath": "$.outcome", "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    })
    .to_string()
}

async fn run(sfn: &aws_sdk_sfn::Client, arn: &str, input: &Value) -> Value {
    let started = sfn
        .start_execution()
        .state_machine_arn(arn)
        .name(ulid::Ulid::new().to_string())
        .input(input.to_string())
        .send()
        .await
        .unwrap();
    for _ in 0..600 {
        let d = sfn
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .unwrap();
        match d.status() {
            ExecutionStatus::Running => tokio::time::sleep(Duration::from_millis(200)).await,
            ExecutionStatus::Succeeded => {
                return serde_json::from_str(d.output().unwrap()).unwrap();
            }
            other => panic!("execution ended {other:?}: {:?} {:?}", d.error(), d.cause()),
        }
    }
    panic!("execution did not finish in 120 s");
}

#[tokio::test]
async fn a_state_machine_invokes_a_real_function_and_catches_its_error_type() {
    let id = fresh_user_id();
    let res = http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(&id, false))
        .json(&json!({"email": "grace@example.com", "name": "Grace Hopper", "country": "US"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let sfn = aws_sdk_sfn::Client::new(&aws().await);
    let machine = sfn
        .create_state_machine()
        .name(format!("forwarding-{}", ulid::Ulid::new()))
        .definition(definition())
        .role_arn("arn:aws:iam::123456789012:role/commerce-local-lambda")
        .send()
        .await
        .unwrap();
    let arn = machine.state_machine_arn();

    let out = run(&sfn, arn, &json!({"event": get_user_event(&id, &id)})).await;
    assert_eq!(out["result"]["statusCode"], 200, "{out}");
    let body: Value = serde_json::from_str(out["result"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["user_id"], id.as_str());
    assert_eq!(body["name"], "Grace Hopper");

    let out = run(
        &sfn,
        arn,
        &json!({"event": {"not": "an API Gateway event"}}),
    )
    .await;
    assert_eq!(out["outcome"], "caught", "{out}");
    assert_eq!(out["error"]["Error"], DESERIALIZE_ERROR, "{out}");
    let cause: Value = serde_json::from_str(out["error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorType"], DESERIALIZE_ERROR);
}
