//! The saga under faults, in a test binary of its own (test binaries run one after the
//! other, and these tests change the local stack for everyone while they run):
//! - every forward step's answer is lost once after the step ran (the emulator's fault
//!   injection): Step Functions retries each, and the order still confirms with one
//!   reservation and one charge;
//! - every compensation's answer is lost once, so each runs twice: nothing changes the
//!   second time;
//! - the fraud answer never arrives (the scorer's mapping is disabled): the wait times
//!   out and the order is rejected `TIMED_OUT`, its payment voided and its stock released.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod saga_support;

use e2e::*;
use saga_support::*;
use serde_json::json;

/// One of these tests at a time: faults and mappings are the stack's, not a test's.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Loses the next answer of each of `functions` once.
fn inject(functions: &[&str]) {
    let faults: serde_json::Map<String, serde_json::Value> = functions
        .iter()
        .map(|f| ((*f).to_owned(), json!(1)))
        .collect();
    write_faults(&serde_json::Value::Object(faults).to_string());
}

/// The faults not yet taken: each injected fault must have been hit.
fn faults_left() -> serde_json::Value {
    let path = std::env::var("LOCAL_FAULTS_FILE").unwrap();
    let faults: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let left: serde_json::Map<String, serde_json::Value> = faults
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_i64() != Some(0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::Value::Object(left)
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn every_forward_step_answering_late_still_confirms_once() {
    let _exclusive = EXCLUSIVE.lock().await;
    listen_to_bus("e2e-saga-events").await;
    let sku = fresh_sku("FLT");
    create_product(&sku, "15.00", "EUR", 10).await;
    inject(&[
        "inventory-reserve",
        "payments-authorize",
        "payments-request-fraud-check",
        "payments-capture",
        "inventory-commit",
        "orders-confirm",
    ]);
    let user = fresh_user_id();
    let order_id = place_for(&user, &sku, 3, "tok_visa").await;
    let p = Placed {
        user,
        sku,
        order_id,
    };
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(faults_left(), json!({}), "every injected fault was hit");
    assert_eq!(o["status"], "CONFIRMED", "{o}");
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "CAPTURED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 7, "reserved": 0, "available": 7}),
        "reserved and taken once"
    );
    let kinds = events_of(&p.order_id, 7).await;
    for kind in [
        "StockReserved",
        "PaymentAuthorized",
        "FraudAssessed",
        "PaymentCaptured",
        "StockCommitted",
        "OrderConfirmed",
    ] {
        assert_eq!(count(&kinds, kind), 1, "{kind} in {kinds:?}");
    }
    assert_invariants(&p, &o).await;
}

#[tokio::test]
async fn every_compensation_running_twice_changes_nothing_the_second_time() {
    let _exclusive = EXCLUSIVE.lock().await;
    listen_to_bus("e2e-saga-events").await;
    inject(&["payments-void", "inventory-release", "orders-reject"]);
    let p = place("15.00", 4, 2, "tok_capture_fails").await;
    let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(faults_left(), json!({}), "every compensation ran twice");
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some("PAYMENT_DECLINED")),
        "{o}"
    );
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "VOIDED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 4, "reserved": 0, "available": 4}),
        "released once"
    );
    let kinds = events_of(&p.order_id, 7).await;
    for kind in ["PaymentVoided", "StockReleased", "OrderRejected"] {
        assert_eq!(count(&kinds, kind), 1, "{kind} in {kinds:?}");
    }
    assert_invariants(&p, &o).await;
}

#[tokio::test]
async fn a_fraud_answer_that_never_arrives_times_the_order_out() {
    let _exclusive = EXCLUSIVE.lock().await;
    listen_to_bus("e2e-saga-events").await;
    let lambda = aws_sdk_lambda::Client::new(&aws().await);
    let mappings = lambda
        .list_event_source_mappings()
        .function_name("fraud-score")
        .send()
        .await
        .unwrap();
    let uuid = mappings.event_source_mappings()[0]
        .uuid()
        .unwrap()
        .to_owned();
    lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(false)
        .send()
        .await
        .unwrap();
    // The pollers re-read the mappings every 2 s: wait past that before placing.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;

    let outcome = async {
        let p = place("15.00", 5, 1, "tok_visa").await;
        let o = wait_for(&p.user, &p.order_id, &["CONFIRMED", "REJECTED"]).await;
        (p, o)
    }
    .await;
    lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(true)
        .send()
        .await
        .unwrap();

    let (p, o) = outcome;
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some("TIMED_OUT")),
        "{o}"
    );
    assert_eq!(
        payment(&p.user, &p.order_id).await.unwrap()["status"],
        "VOIDED"
    );
    assert_eq!(
        stock(&p.sku).await,
        json!({"on_hand": 5, "reserved": 0, "available": 5})
    );
    assert_invariants(&p, &o).await;
}
