//! Payment steps against the emulator and the local payment provider (localstripe, through
//! the Stripe adapter, configured as a deployed function is: its address and its secret key
//! from the emulator's Secrets Manager): each token's path, every step run twice changes
//! nothing the second time (one event per change), and answers lost after the provider
//! acted are resolved at the provider, never assumed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_sdk_dynamodb::types::AttributeValue;
use payments::domain::PaymentStatus;
use payments::provider::{IntentStatus, PaymentProvider};
use payments::store::PaymentStore;
use payments::stripe::StripeProvider;
use payments::{
    AuthorizeInput, CAPTURE_FAILED, INVALID_STATE, PAYMENT_DECLINED, PROVIDER_TIMEOUT, PaymentMove,
    PaymentStepInput,
};

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run through `make test`"))
}

async fn setup() -> (PaymentStore, aws_sdk_dynamodb::Client, StripeProvider) {
    let sdk = shared::aws::sdk_config().await.unwrap();
    let client = shared::aws::dynamodb(&sdk);
    let provider = StripeProvider::from_env(&sdk).await.unwrap();
    (
        PaymentStore::new(client.clone(), env("PAYMENTS_TABLE")),
        client,
        provider,
    )
}

/// The intent the payment of `order_id` names, as the provider has it now.
async fn intent_of(
    store: &PaymentStore,
    p: &StripeProvider,
    order_id: &str,
) -> payments::provider::Intent {
    let payment = store.get(order_id).await.unwrap().unwrap();
    p.retrieve(payment.provider_reference.as_deref().unwrap())
        .await
        .unwrap()
}

/// Makes the provider's answers to `operation` of `order_id` get lost `times` times, after
/// it acted (local/payment_provider.py).
fn lose_answers(order_id: &str, operation: &str, times: u32) {
    e2e_faults(
        order_id,
        &serde_json::json!([
            {"order_id": order_id, "operation": operation, "kind": "timeout_after", "times": times}
        ]),
    );
}

/// This test's fault rules, in its own file of `LOCAL_PROVIDER_FAULTS_DIR`.
fn e2e_faults(order_id: &str, rules: &serde_json::Value) {
    let dir = std::path::PathBuf::from(env("LOCAL_PROVIDER_FAULTS_DIR"));
    let partial = dir.join(format!(".{order_id}.tmp"));
    std::fs::write(&partial, serde_json::json!({ "rules": rules }).to_string()).unwrap();
    std::fs::rename(&partial, dir.join(format!("{order_id}.json"))).unwrap();
}

/// An order to pay with `token`, as the saga's input hands it to `payments-authorize`. The
/// order is also written to the orders table as the orders service would have: the payment
/// steps never read it, but the provider's books are reconciled against the orders
/// (local/provider_books.py), and an intent for an order that does not exist is a violation.
async fn order(client: &aws_sdk_dynamodb::Client, token: &str) -> AuthorizeInput {
    let order_id = shared::ids::OrderId::new();
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
    AuthorizeInput {
        order_id,
        user_id: "payer".parse().unwrap(),
        total: shared::money::Money::parse("42.00", "EUR").unwrap(),
        payment_token: token.into(),
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
    let (store, client, p) = setup().await;
    let input = order(&client, "tok_visa").await;
    let id = input.order_id.clone();

    for (step, status, at_provider) in [
        (
            None,
            PaymentStatus::Authorized,
            IntentStatus::RequiresCapture,
        ),
        (
            Some(PaymentMove::Capture),
            PaymentStatus::Captured,
            IntentStatus::Succeeded,
        ),
        (
            Some(PaymentMove::Refund),
            PaymentStatus::Refunded,
            IntentStatus::Succeeded,
        ),
    ] {
        for attempt in 0..2 {
            let out = match step {
                None => payments::authorize(&store, &p, input.clone())
                    .await
                    .unwrap(),
                Some(m) => payments::apply(&store, &p, m, input.step()).await.unwrap(),
            };
            assert_eq!(out.status, status);
            assert_eq!(out.changed, attempt == 0, "{step:?} attempt {attempt}");
        }
        assert_eq!(
            intent_of(&store, &p, &id).await.status,
            at_provider,
            "{step:?}"
        );
    }
    assert_eq!(intent_of(&store, &p, &id).await.amount_refunded, 4200);
    // A void after the refund (a compensation meeting a payment already given back)
    // has nothing left to do; a capture of it is refused.
    let void = payments::apply(&store, &p, PaymentMove::Void, input.step())
        .await
        .unwrap();
    assert_eq!(
        (void.status, void.changed),
        (PaymentStatus::Refunded, false),
        "a refunded payment holds nothing to void"
    );
    let err = payments::apply(&store, &p, PaymentMove::Capture, input.step())
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
    let (store, client, p) = setup().await;
    for (token, reason) in [
        ("tok_declined", "generic_decline"),
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
        assert!(
            !intent_of(&store, &p, &input.order_id)
                .await
                .status
                .holds_money()
        );
        let void = payments::apply(&store, &p, PaymentMove::Void, input.step())
            .await
            .unwrap();
        assert!(!void.changed, "nothing was authorized, so nothing to void");
        assert_eq!(events(&client, &input.order_id).await, ["PaymentDeclined"]);
    }
}

#[tokio::test]
async fn a_timeout_leaves_a_pending_payment_whose_void_cancels_the_intent() {
    let (store, client, p) = setup().await;
    let input = order(&client, "tok_timeout").await;
    let err = payments::authorize(&store, &p, input.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, PROVIDER_TIMEOUT);
    let pending = store.get(&input.order_id).await.unwrap().unwrap();
    assert_eq!(
        pending.status,
        PaymentStatus::Pending,
        "the intent exists: its row names it"
    );
    let void = payments::apply(&store, &p, PaymentMove::Void, input.step())
        .await
        .unwrap();
    assert_eq!((void.status, void.changed), (PaymentStatus::Voided, true));
    assert_eq!(
        intent_of(&store, &p, &input.order_id).await.status,
        IntentStatus::Canceled
    );

    let input = order(&client, "tok_capture_fails").await;
    payments::authorize(&store, &p, input.clone())
        .await
        .unwrap();
    let err = payments::apply(&store, &p, PaymentMove::Capture, input.step())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, CAPTURE_FAILED);
    let first = payments::apply(&store, &p, PaymentMove::Void, input.step())
        .await
        .unwrap();
    let again = payments::apply(&store, &p, PaymentMove::Void, input.step())
        .await
        .unwrap();
    assert!(first.changed && !again.changed);
    assert_eq!(again.status, PaymentStatus::Voided);
    assert_eq!(
        intent_of(&store, &p, &input.order_id).await.status,
        IntentStatus::Canceled
    );
    assert_eq!(
        events(&client, &input.order_id).await,
        ["PaymentAuthorized", "PaymentVoided"]
    );
}

#[tokio::test]
async fn a_hold_whose_answer_was_lost_is_released_by_the_void_and_never_by_assumption() {
    let (store, client, p) = setup().await;
    let input = order(&client, "tok_visa").await;
    // The provider places the hold; no answer reaches the function, on any attempt.
    lose_answers(&input.order_id, "authorize", 2);
    let err = payments::authorize(&store, &p, input.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, PROVIDER_TIMEOUT);
    assert_eq!(
        intent_of(&store, &p, &input.order_id).await.status,
        IntentStatus::RequiresCapture,
        "the provider holds the money though the payment never heard"
    );
    // The saga gives up and compensates: the void asks the provider and lets it go.
    let void = payments::apply(&store, &p, PaymentMove::Void, input.step())
        .await
        .unwrap();
    assert_eq!((void.status, void.changed), (PaymentStatus::Voided, true));
    assert_eq!(
        intent_of(&store, &p, &input.order_id).await.status,
        IntentStatus::Canceled
    );
    // An authorize that outlives the void (a late retry) holds nothing and changes nothing.
    let late = payments::authorize(&store, &p, input.clone())
        .await
        .unwrap_err();
    assert_eq!(late.error_type, INVALID_STATE);
    assert_eq!(
        intent_of(&store, &p, &input.order_id).await.status,
        IntentStatus::Canceled
    );
    assert_eq!(
        store.get(&input.order_id).await.unwrap().unwrap().status,
        PaymentStatus::Voided
    );
    assert_eq!(events(&client, &input.order_id).await, ["PaymentVoided"]);
}

#[tokio::test]
async fn a_compensation_without_a_payment_seals_the_order_against_a_late_authorize() {
    let (store, client, p) = setup().await;
    let input = order(&client, "tok_visa").await;
    let sealed = payments::apply(&store, &p, PaymentMove::Void, input.step())
        .await
        .unwrap();
    assert_eq!(
        (sealed.status, sealed.changed),
        (PaymentStatus::Voided, true)
    );
    let late = payments::authorize(&store, &p, input.clone())
        .await
        .unwrap_err();
    assert_eq!(late.error_type, INVALID_STATE);
    let payment = store.get(&input.order_id).await.unwrap().unwrap();
    assert_eq!(
        (payment.status, payment.provider_reference),
        (PaymentStatus::Voided, None)
    );
    assert!(
        events(&client, &input.order_id).await.is_empty(),
        "no money moved"
    );

    // Without the order's customer and total (cancel-order's input) it has nothing to
    // seal with, and nothing to give back.
    let never = PaymentStepInput {
        order_id: shared::ids::OrderId::new(),
        correlation_id: None,
        user_id: None,
        total: None,
    };
    assert!(
        !payments::apply(&store, &p, PaymentMove::Void, never)
            .await
            .unwrap()
            .changed
    );
}

#[tokio::test]
async fn a_provider_that_refuses_connections_is_unavailable_and_opens_the_breaker() {
    use payments::breaker::{Breaker, Policy, State};
    // A port nothing listens on: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let policy = Policy {
        min_failures: 3,
        ..Policy::default()
    };
    let p = StripeProvider::new(
        &url,
        "sk_test_local",
        payments::stripe::Settings::default(),
        Breaker::new(policy),
    )
    .unwrap();
    let amount = shared::money::Money::parse("1.00", "EUR").unwrap();
    for _ in 0..3 {
        let err = p
            .create_intent("o-refused", "tok_visa", &amount)
            .await
            .unwrap_err();
        assert!(
            matches!(err, payments::provider::ProviderError::Unavailable(_)),
            "{err:?}"
        );
    }
    assert_eq!(p.breaker().state(), State::Open);
    // Open: the next call fails at once, without a connection.
    let started = std::time::Instant::now();
    let err = p
        .create_intent("o-refused", "tok_visa", &amount)
        .await
        .unwrap_err();
    assert!(
        format!("{err}").contains("circuit breaker is open"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn five_hundreds_and_rate_limits_are_retried_with_the_same_key_and_act_once() {
    let (_, _, p) = setup().await;
    let amount = shared::money::Money::parse("3.00", "EUR").unwrap();
    let order_id = ulid::Ulid::new().to_string();
    e2e_faults(
        &order_id,
        &serde_json::json!([
            {"order_id": order_id, "operation": "intent", "kind": "server_error", "times": 1},
            {"order_id": order_id, "operation": "authorize", "kind": "rate_limited", "times": 1},
        ]),
    );
    let intent = p
        .create_intent(&order_id, "tok_visa", &amount)
        .await
        .unwrap();
    // A 429 without Stripe-Should-Retry is not retried: the provider is unavailable now.
    let err = p.confirm(&order_id, &intent.id).await.unwrap_err();
    assert!(
        matches!(err, payments::provider::ProviderError::Unavailable(_)),
        "{err:?}"
    );
    let held = p.confirm(&order_id, &intent.id).await.unwrap();
    assert_eq!(held.status, IntentStatus::RequiresCapture);
    // The create after a 500 made one intent: asked again, the provider answers the same.
    assert_eq!(
        p.create_intent(&order_id, "tok_visa", &amount)
            .await
            .unwrap()
            .id,
        intent.id
    );
    // No order stands behind this hold: let it go (the provider's books are checked after
    // the load smoke, local/provider_books.py).
    assert_eq!(
        p.cancel(&order_id, &intent.id).await.unwrap().status,
        IntentStatus::Canceled
    );
}
