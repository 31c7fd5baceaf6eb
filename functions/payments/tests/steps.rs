//! Payment steps against the emulator with the sandbox provider: each token's path, and
//! every step run twice changes nothing the second time (one event per change).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use payments::domain::PaymentStatus;
use payments::provider::SandboxProvider;
use payments::store::PaymentStore;
use payments::{
    CAPTURE_FAILED, INVALID_STATE, PAYMENT_DECLINED, PROVIDER_TIMEOUT, PaymentMove,
    PaymentStepInput,
};

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run through `make test`"))
}

async fn setup() -> (PaymentStore, aws_sdk_dynamodb::Client) {
    let sdk = shared::aws::sdk_config().await.unwrap();
    let client = shared::aws::dynamodb(&sdk);
    (
        PaymentStore::new(client.clone(), env("PAYMENTS_TABLE"), env("ORDERS_TABLE")),
        client,
    )
}

/// An order as the orders service stores it, paid with `token`.
async fn order(client: &aws_sdk_dynamodb::Client, token: &str) -> PaymentStepInput {
    let order_id = ulid::Ulid::new().to_string();
    let item = shared::dynamo::to_item(&serde_json::json!({
        "order_id": order_id, "user_id": "payer", "status": "PENDING",
        "total": {"amount": "42.00", "currency": "EUR"}, "payment_token": token
    }))
    .unwrap();
    client
        .put_item()
        .table_name(env("ORDERS_TABLE"))
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    PaymentStepInput {
        order_id,
        correlation_id: Some("it".into()),
    }
}

async fn events(client: &aws_sdk_dynamodb::Client, order_id: &str) -> Vec<String> {
    let out = client
        .scan()
        .table_name(env("PAYMENTS_TABLE"))
        .filter_expression("record_type = :o AND contains(detail, :id)")
        .expression_attribute_values(":o", AttributeValue::S("outbox".into()))
        .expression_attribute_values(":id", AttributeValue::S(order_id.to_owned()))
        .send()
        .await
        .unwrap();
    let mut kinds: Vec<String> = out
        .items()
        .iter()
        .map(|i| i["detail_type"].as_s().unwrap().clone())
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn a_good_card_is_authorized_captured_and_refunded_each_exactly_once() {
    let (store, client) = setup().await;
    let p = SandboxProvider;
    let input = order(&client, "tok_visa").await;
    let id = input.order_id.clone();

    for (step, status) in [
        (None, PaymentStatus::Authorized),
        (Some(PaymentMove::Capture), PaymentStatus::Captured),
        (Some(PaymentMove::Refund), PaymentStatus::Refunded),
    ] {
        for attempt in 0..2 {
            let out = match step {
                None => payments::authorize(&store, &p, input.clone())
                    .await
                    .unwrap(),
                Some(m) => payments::apply(&store, &p, m, input.clone()).await.unwrap(),
            };
            assert_eq!(out.status, status);
            assert_eq!(out.changed, attempt == 0, "{step:?} attempt {attempt}");
        }
    }
    // A void after the refund (a compensation meeting a payment already given back)
    // has nothing left to do; a capture of it is refused.
    let void = payments::apply(&store, &p, PaymentMove::Void, input.clone())
        .await
        .unwrap();
    assert_eq!(
        (void.status, void.changed),
        (PaymentStatus::Refunded, false),
        "a refunded payment holds nothing to void"
    );
    let err = payments::apply(&store, &p, PaymentMove::Capture, input.clone())
        .await
        .unwrap_err();
    assert_eq!(
        err.error_type, INVALID_STATE,
        "a refunded payment cannot be captured"
    );
    assert_eq!(
        events(&client, &id).await,
        ["PaymentAuthorized", "PaymentCaptured", "PaymentRefunded"]
    );
    let payment = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (payment.amount.amount(), payment.user_id.as_str()),
        ("42.00".to_owned(), "payer")
    );
}

#[tokio::test]
async fn declines_are_recorded_and_answered_the_same_on_retry() {
    let (store, client) = setup().await;
    let p = SandboxProvider;
    for (token, reason) in [
        ("tok_declined", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
    ] {
        let input = order(&client, token).await;
        for _ in 0..2 {
            let err = payments::authorize(&store, &p, input.clone())
                .await
                .unwrap_err();
            assert_eq!(
                (err.error_type, err.message.as_str()),
                (PAYMENT_DECLINED, reason)
            );
        }
        assert_eq!(
            store.get(&input.order_id).await.unwrap().unwrap().status,
            PaymentStatus::Declined
        );
        let void = payments::apply(&store, &p, PaymentMove::Void, input.clone())
            .await
            .unwrap();
        assert!(!void.changed, "nothing was authorized, so nothing to void");
        assert_eq!(events(&client, &input.order_id).await, ["PaymentDeclined"]);
    }
}

#[tokio::test]
async fn a_timeout_records_nothing_and_a_failed_capture_is_voided_once() {
    let (store, client) = setup().await;
    let p = SandboxProvider;
    let input = order(&client, "tok_timeout").await;
    let err = payments::authorize(&store, &p, input.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, PROVIDER_TIMEOUT);
    assert!(store.get(&input.order_id).await.unwrap().is_none());

    let input = order(&client, "tok_capture_fails").await;
    payments::authorize(&store, &p, input.clone())
        .await
        .unwrap();
    let err = payments::apply(&store, &p, PaymentMove::Capture, input.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, CAPTURE_FAILED);
    let first = payments::apply(&store, &p, PaymentMove::Void, input.clone())
        .await
        .unwrap();
    let again = payments::apply(&store, &p, PaymentMove::Void, input.clone())
        .await
        .unwrap();
    assert!(first.changed && !again.changed);
    assert_eq!(again.status, PaymentStatus::Voided);
    assert_eq!(
        events(&client, &input.order_id).await,
        ["PaymentAuthorized", "PaymentVoided"]
    );

    let never = PaymentStepInput {
        order_id: ulid::Ulid::new().to_string(),
        correlation_id: None,
    };
    assert!(
        !payments::apply(&store, &p, PaymentMove::Void, never)
            .await
            .unwrap()
            .changed
    );
}
