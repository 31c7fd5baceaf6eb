//! The idempotency store against the emulator's DynamoDB: real conditional writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use chrono::Duration;
use shared::idempotency::{Claim, Idempotency, StoredResponse, fingerprint};
use shared::metrics::DynamoDbRequestCounter;

async fn store() -> (Idempotency, DynamoDbRequestCounter) {
    let table = std::env::var("IDEMPOTENCY_TABLE")
        .expect("IDEMPOTENCY_TABLE is not set: run through `make test` (local/stack.py exec)");
    let sdk = shared::aws::sdk_config().await.unwrap();
    let counter = DynamoDbRequestCounter::default();
    (
        Idempotency::new(
            shared::aws::dynamodb_with_counter(&sdk, counter.clone()),
            table,
        ),
        counter,
    )
}

fn id() -> String {
    format!("it#{}", ulid::Ulid::new())
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 202,
        body: r#"{"order_id":"X"}"#.into(),
        location: Some("/orders/X".into()),
        content_type: None,
    }
}

#[tokio::test]
async fn twenty_concurrent_claims_of_one_key_give_it_to_exactly_one() {
    let (store, _) = store().await;
    let key = id();
    let fp = fingerprint(b"{}");
    let now = shared::time::now();
    let claims = futures::future::join_all((0..20).map(|_| store.claim(&key, &fp, now))).await;
    let acquired = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Acquired(_))))
        .count();
    let in_progress = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::InProgress { .. })))
        .count();
    assert_eq!((acquired, in_progress), (1, 19), "{claims:?}");
}

#[tokio::test]
async fn a_claim_is_replayed_refused_or_retaken_as_its_record_says() {
    let (store, counter) = store().await;
    let key = id();
    let fp = fingerprint(br#"{"a":1}"#);
    let now = shared::time::now();

    let before = counter.get();
    let Claim::Acquired(claimed) = store.claim(&key, &fp, now).await.unwrap() else {
        panic!("first claim")
    };
    assert_eq!(counter.get() - before, 1, "a claim is one round trip");

    let before = counter.get();
    match store.claim(&key, &fp, now).await.unwrap() {
        Claim::InProgress { retry_after_secs } => assert!((1..=60).contains(&retry_after_secs)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        counter.get() - before,
        1,
        "a refused claim reads the record in the same round trip"
    );
    assert!(matches!(
        store.claim(&key, &fingerprint(b"{}"), now).await.unwrap(),
        Claim::Mismatch
    ));

    assert!(store.complete(&claimed, &response(), now).await.unwrap());
    match store
        .claim(&key, &fp, now + Duration::hours(23))
        .await
        .unwrap()
    {
        Claim::Replay(r) => assert_eq!(r, response()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.claim(&key, &fingerprint(b"{}"), now).await.unwrap(),
        Claim::Mismatch
    ));
    // After the retention, the record is read as expired even if TTL has not deleted it.
    assert!(matches!(
        store
            .claim(&key, &fp, now + Duration::hours(25))
            .await
            .unwrap(),
        Claim::Acquired(_)
    ));
}

#[tokio::test]
async fn a_released_or_abandoned_claim_can_be_taken_again() {
    let (store, _) = store().await;
    let fp = fingerprint(b"[]");
    let now = shared::time::now();

    let key = id();
    let Claim::Acquired(claimed) = store.claim(&key, &fp, now).await.unwrap() else {
        panic!()
    };
    store.release(&claimed).await.unwrap();
    assert!(matches!(
        store.claim(&key, &fp, now).await.unwrap(),
        Claim::Acquired(_)
    ));

    // A claim whose Lambda died: once its lease runs out, the next request takes over,
    // and the old holder can neither complete nor release the new holder's claim.
    let key = id();
    let Claim::Acquired(dead) = store.claim(&key, &fp, now).await.unwrap() else {
        panic!()
    };
    let later = now + Duration::seconds(61);
    let Claim::Acquired(alive) = store.claim(&key, &fp, later).await.unwrap() else {
        panic!("lease expired")
    };
    assert!(
        !store.complete(&dead, &response(), later).await.unwrap(),
        "the old holder lost the key"
    );
    store.release(&dead).await.unwrap();
    assert!(
        matches!(
            store.claim(&key, &fp, later).await.unwrap(),
            Claim::InProgress { .. }
        ),
        "the old holder's release left the new claim alone"
    );
    assert!(store.complete(&alive, &response(), later).await.unwrap());
    assert!(matches!(
        store.claim(&key, &fp, later).await.unwrap(),
        Claim::Replay(_)
    ));
}
