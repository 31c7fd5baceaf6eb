//! Scoring against the emulator, through the library (not Kinesis): each order is
//! assessed, counted and announced once however often it is delivered, velocity raises
//! the score past five orders an hour, and the saga gets the answer the assessment calls
//! for. The saga side is a recording [`SagaAnswer`] that, like Step Functions, refuses a
//! token answered before; DynamoDB is the emulator's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use fraud::answer::{Answer, AnswerError, Delivery, FRAUD_DENIED, SagaAnswer, TaskOutput};
use fraud::domain::FraudCheckRequest;
use fraud::store::{FraudStore, VelocityBucket};
use shared::events::FraudDecision;
use shared::metrics::DynamoDbRequestCounter;
use shared::money::Money;
use std::collections::BTreeSet;
use std::sync::Mutex;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run through `make test`"))
}

struct Setup {
    store: FraudStore,
    client: aws_sdk_dynamodb::Client,
    requests: DynamoDbRequestCounter,
}

async fn setup() -> Setup {
    let sdk = shared::aws::sdk_config().await.unwrap();
    let requests = DynamoDbRequestCounter::default();
    let counted = shared::aws::dynamodb_with_counter(&sdk, requests.clone());
    Setup {
        store: FraudStore::new(counted, env("FRAUD_TABLE")),
        client: shared::aws::dynamodb(&sdk),
        requests,
    }
}

/// Records every answer; a token answered before is refused as Step Functions does.
#[derive(Default)]
struct RecordingSaga {
    answers: Mutex<Vec<(String, Answer)>>,
}

impl RecordingSaga {
    fn answers_to(&self, token: &str) -> Vec<Answer> {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == token)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

impl SagaAnswer for RecordingSaga {
    async fn send(&self, task_token: &str, answer: &Answer) -> Result<Delivery, AnswerError> {
        let mut answers = self.answers.lock().unwrap();
        let seen = answers.iter().any(|(t, _)| t == task_token);
        answers.push((task_token.to_owned(), answer.clone()));
        Ok(if seen {
            Delivery::AlreadyClosed("InvalidToken")
        } else {
            Delivery::Delivered
        })
    }
}

fn fresh_user() -> String {
    format!("u-{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn request(user_id: &str, amount: &str) -> FraudCheckRequest {
    let order_id = shared::ids::OrderId::new();
    FraudCheckRequest {
        task_token: format!("token-{order_id}"),
        order_id,
        user_id: user_id.parse().unwrap(),
        amount: Money::parse(amount, "EUR").unwrap(),
        item_count: 1,
        shipping_country: "DE".to_owned().try_into().unwrap(),
        profile_country: None,
        account_created_at: None,
        payment_fingerprint: shared::transactions::fingerprint("tok_visa"),
        source_ip: None,
        correlation_id: Some("it-fraud".into()),
        requested_at: shared::time::now(),
    }
}

async fn orders_counted(s: &Setup, r: &FraudCheckRequest) -> i64 {
    let key = VelocityBucket::of(&r.user_id, r.requested_at).key;
    let out = s
        .client
        .get_item()
        .table_name(env("FRAUD_TABLE"))
        .key("id", AttributeValue::S(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item
        .and_then(|i| i.get("order_count").cloned())
        .map(|n| n.as_n().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// The `FraudAssessed` outbox items of an order, as their envelopes.
async fn events(s: &Setup, order_id: &str) -> Vec<serde_json::Value> {
    let out = s
        .client
        .scan()
        .table_name(env("FRAUD_TABLE"))
        .filter_expression("record_type = :o AND contains(detail, :id)")
        .expression_attribute_values(":o", AttributeValue::S("outbox".into()))
        .expression_attribute_values(":id", AttributeValue::S(order_id.to_owned()))
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| {
            assert_eq!(i["detail_type"].as_s().unwrap(), "FraudAssessed");
            assert_eq!(i["source"].as_s().unwrap(), "commerce.fraud");
            serde_json::from_str(i["detail"].as_s().unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn an_order_is_assessed_once_and_a_redelivery_gets_the_stored_decision() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let first = request(&fresh_user(), "42.00");

    let before = s.requests.get();
    let out = fraud::assess(&s.store, &saga, &first).await.unwrap();
    assert_eq!(
        s.requests.get() - before,
        2,
        "one batch read, one transaction"
    );
    assert!(out.newly_assessed);
    assert_eq!(out.delivery, Delivery::Delivered);
    assert_eq!(
        (out.assessment.score, out.assessment.decision),
        (0, FraudDecision::Approve)
    );
    assert!(out.assessment.reasons.is_empty());
    assert_eq!(out.assessment.model_version, "rules-v1");
    let expected = Answer::Success(TaskOutput {
        decision: FraudDecision::Approve,
        score: 0,
        order_id: first.order_id.clone(),
    });
    assert_eq!(out.answer, expected);
    assert_eq!(
        s.store.assessment(&first.order_id).await.unwrap().as_ref(),
        Some(&out.assessment)
    );

    // The same record again (the token is answered already), and a retried saga step
    // with a fresh token: both get the stored decision; nothing is written again.
    let before = s.requests.get();
    let again = fraud::assess(&s.store, &saga, &first).await.unwrap();
    assert_eq!(s.requests.get() - before, 1, "a redelivery is one read");
    assert!(!again.newly_assessed);
    assert_eq!(again.delivery, Delivery::AlreadyClosed("InvalidToken"));
    assert_eq!(again.assessment, out.assessment);
    let retried = FraudCheckRequest {
        task_token: "a-new-token".into(),
        requested_at: first.requested_at + chrono::TimeDelta::minutes(3),
        ..first.clone()
    };
    let third = fraud::assess(&s.store, &saga, &retried).await.unwrap();
    assert_eq!(third.delivery, Delivery::Delivered);
    assert_eq!(
        saga.answers_to("a-new-token"),
        std::slice::from_ref(&expected)
    );
    assert_eq!(
        saga.answers_to(&first.task_token),
        [expected.clone(), expected]
    );

    assert_eq!(orders_counted(&s, &first).await, 1, "velocity counted once");
    let published = events(&s, &first.order_id).await;
    assert_eq!(published.len(), 1, "one FraudAssessed per order");
    let e = &published[0];
    assert_eq!(
        e["data"],
        serde_json::json!({"order_id": first.order_id, "score": 0, "decision": "approve",
                           "reasons": [], "model_version": "rules-v1"})
    );
    assert_eq!(e["metadata"]["correlation_id"], "it-fraud");
    assert_eq!(e["metadata"]["causation_id"], first.order_id.as_str());
}

#[tokio::test]
async fn orders_beyond_five_an_hour_raise_the_score_and_each_counts_once() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let user = fresh_user();
    let mut outcomes = Vec::new();
    for _ in 0..7 {
        let r = request(&user, "600.00");
        let out = fraud::assess(&s.store, &saga, &r).await.unwrap();
        let again = fraud::assess(&s.store, &saga, &r).await.unwrap();
        assert_eq!(again.assessment, out.assessment);
        outcomes.push((r, out));
    }
    let scores: Vec<(u32, FraudDecision)> = outcomes
        .iter()
        .map(|(_, o)| (o.assessment.score, o.assessment.decision))
        .collect();
    use FraudDecision::{Approve, Review};
    assert_eq!(
        scores,
        [
            (250, Approve),
            (250, Approve),
            (250, Approve),
            (250, Approve),
            (250, Approve),
            (350, Approve),
            (450, Review)
        ]
    );
    let (last, out) = outcomes.last().unwrap();
    assert_eq!(
        out.assessment.reasons,
        ["amount_over_500", "velocity_7_orders_last_hour"]
    );
    assert_eq!(
        out.answer,
        Answer::Success(TaskOutput {
            decision: Review,
            score: 450,
            order_id: last.order_id.clone()
        })
    );
    assert_eq!(orders_counted(&s, last).await, 7);
}

#[tokio::test]
async fn a_denied_order_fails_the_task_with_fraud_denied_every_time() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let r = request(&fresh_user(), "10000.00");
    let out = fraud::assess(&s.store, &saga, &r).await.unwrap();
    let denied = Answer::Failure {
        error: FRAUD_DENIED,
        cause: "score 800 (amount_over_10000)".into(),
    };
    assert_eq!(
        (out.assessment.score, out.assessment.decision),
        (800, FraudDecision::Deny)
    );
    assert_eq!(out.answer, denied);
    let again = fraud::assess(&s.store, &saga, &r).await.unwrap();
    assert_eq!(again.answer, denied);
    assert_eq!(saga.answers_to(&r.task_token), [denied.clone(), denied]);
    let published = events(&s, &r.order_id).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["data"]["decision"], "deny");
    assert_eq!(
        published[0]["data"]["reasons"],
        serde_json::json!(["amount_over_10000"])
    );
}

/// One user's orders scored at once, each delivered twice at once: every order is
/// assessed and counted once, and each score saw a different, exact count.
#[tokio::test]
async fn concurrent_deliveries_count_every_order_exactly_once() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let user = fresh_user();
    let requests: Vec<FraudCheckRequest> = (0..5).map(|_| request(&user, "10.00")).collect();
    let runs = requests
        .iter()
        .chain(requests.iter())
        .map(|r| fraud::assess(&s.store, &saga, r));
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.newly_assessed).count(), 5);
    let counts: BTreeSet<u64> = outcomes
        .iter()
        .map(|o| o.assessment.orders_this_hour)
        .collect();
    assert_eq!(counts, (1..=5).collect());
    assert_eq!(orders_counted(&s, &requests[0]).await, 5);
    for r in &requests {
        assert_eq!(events(&s, &r.order_id).await.len(), 1);
    }
}

fn risk_request(order_id: &str, admin: bool) -> lambda_http::Request {
    let groups = if admin { "[admin]" } else { "[]" };
    let path = format!("/orders/{}/risk", order_id.replace('#', "%23"));
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "GET /orders/{order_id}/risk",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "127.0.0.1:3000"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": {
                "sub": "someone", "iss": "local", "aud": "commerce", "cognito:groups": groups
            }, "scopes": null}},
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {"method": "GET", "path": path,
                     "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "risk-test",
            "routeKey": "GET /orders/{order_id}/risk",
            "stage": "$default",
            "time": "21/Nov/2026:19:30:00 +0000",
            "timeEpoch": 1795203000000_i64
        },
        "isBase64Encoded": false,
        "pathParameters": {"order_id": order_id}
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn get_risk(s: &Setup, order_id: &str, admin: bool) -> (u16, serde_json::Value) {
    let handler = |req| fraud::api::get_risk(&s.store, req);
    let response = shared::http::respond(&handler, risk_request(order_id, admin)).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap();
    (status, body)
}

#[tokio::test]
async fn the_risk_of_an_order_is_shown_to_admins_only() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let r = request(&fresh_user(), "2500.00");
    let out = fraud::assess(&s.store, &saga, &r).await.unwrap();

    let (status, body) = get_risk(&s, &r.order_id, true).await;
    assert_eq!(status, 200, "{body}");
    let assessed_at = out
        .assessment
        .assessed_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        body,
        serde_json::json!({"order_id": r.order_id, "score": 500, "decision": "review",
                           "reasons": ["amount_over_2000"], "model_version": "rules-v1",
                           "assessed_at": assessed_at})
    );
    assert_eq!(get_risk(&s, &r.order_id, false).await.0, 403);
    let unscored = ulid::Ulid::new().to_string();
    assert_eq!(get_risk(&s, &unscored, true).await.0, 404);
    assert_eq!(get_risk(&s, "not-an-order", true).await.0, 404);
    // A counter's key is no order id.
    let counter = VelocityBucket::of(&r.user_id, r.requested_at).key;
    assert_eq!(get_risk(&s, &counter, true).await.0, 404);
}

/// Step Functions refuses a token nobody waits on (`InvalidToken`; `TaskTimedOut` for a
/// timed-out one): the adapter takes that as done, so a redelivery is not a failure.
#[tokio::test]
async fn step_functions_takes_a_token_nobody_waits_on_as_done() {
    let sdk = shared::aws::sdk_config().await.unwrap();
    let sfn = fraud::answer::StepFunctions::new(aws_sdk_sfn::Client::new(&sdk));
    let token = format!("unknown-{}", ulid::Ulid::new());
    let success = Answer::Success(TaskOutput {
        decision: FraudDecision::Approve,
        score: 0,
        order_id: shared::ids::OrderId::new(),
    });
    let failure = Answer::Failure {
        error: FRAUD_DENIED,
        cause: "score 800 (amount_over_10000)".into(),
    };
    for answer in [success, failure] {
        assert_eq!(
            sfn.send(&token, &answer).await.unwrap(),
            Delivery::AlreadyClosed("InvalidToken"),
            "{answer:?}"
        );
    }
}
