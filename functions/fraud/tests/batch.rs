//! The scorer's batch path against the emulator: real multi-record Kinesis events (as
//! Lambda delivers them) through `fraud::batch::score_batch`, with the emulator's DynamoDB
//! and an SQS queue of the test's own as the failure queue. The saga side is a recording
//! [`SagaAnswer`] that, like Step Functions, refuses a token answered before, and can be
//! told that Step Functions is unreachable for one user's answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use fraud::answer::{Answer, AnswerError, Delivery, FRAUD_DENIED, SagaAnswer, TaskOutput};
use fraud::batch::{BatchOutcome, RecordResult, score_batch};
use fraud::dead_letters::FailureQueue;
use fraud::domain::Assessment;
use fraud::features::UserState;
use fraud::scoring::Scorer;
use fraud::store::FraudStore;
use shared::events::FraudDecision;
use shared::metrics::DynamoDbRequestCounter;
use shared::transactions::TransactionRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run through `make test`"))
}

struct Setup {
    store: FraudStore,
    client: aws_sdk_dynamodb::Client,
    requests: DynamoDbRequestCounter,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    failures: FailureQueue,
    scorer: Scorer,
}

async fn setup() -> Setup {
    let sdk = shared::aws::sdk_config().await.unwrap();
    let requests = DynamoDbRequestCounter::default();
    let counted = shared::aws::dynamodb_with_counter(&sdk, requests.clone());
    // A failure queue of the test's own, so it reads only its own letters.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("test-fraud-failures-{}", ulid::Ulid::new()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Setup {
        store: FraudStore::new(counted, env("FRAUD_TABLE")),
        client: shared::aws::dynamodb(&sdk),
        requests,
        failures: FailureQueue::new(sqs.clone(), &queue_url),
        sqs,
        queue_url,
        scorer: Scorer::compiled().unwrap(),
    }
}

impl Setup {
    /// Scores `records` as one batch; the outcome and the DynamoDB requests it took.
    async fn score(
        &self,
        saga: &RecordingSaga,
        records: &[KinesisEventRecord],
    ) -> (BatchOutcome, u64) {
        let before = self.requests.get();
        let outcome = score_batch(&self.store, saga, &self.failures, &self.scorer, records).await;
        (outcome, self.requests.get() - before)
    }

    /// A user's stored state and its version.
    async fn state(&self, user: &str) -> Option<(UserState, u64)> {
        let out = self
            .client
            .get_item()
            .table_name(env("FRAUD_TABLE"))
            .key("id", AttributeValue::S(format!("user#{user}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.map(|i| {
            let state: UserState = serde_json::from_str(i["state"].as_s().unwrap()).unwrap();
            let version = i["state_version"].as_n().unwrap().parse().unwrap();
            (state, version)
        })
    }

    /// The `FraudAssessed` outbox items of an order, as their envelopes.
    async fn events(&self, order_id: &str) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(env("FRAUD_TABLE"))
                .filter_expression("record_type = :o AND contains(detail, :id)")
                .expression_attribute_values(":o", AttributeValue::S("outbox".into()))
                .expression_attribute_values(":id", AttributeValue::S(order_id.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for i in out.items() {
                assert_eq!(i["detail_type"].as_s().unwrap(), "FraudAssessed");
                found.push(serde_json::from_str(i["detail"].as_s().unwrap()).unwrap());
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return found;
            }
        }
    }

    /// Every letter in the test's failure queue.
    async fn letters(&self) -> Vec<serde_json::Value> {
        let mut letters = Vec::new();
        for _ in 0..5 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if out.messages().is_empty() && !letters.is_empty() {
                break;
            }
            for m in out.messages() {
                letters.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
        }
        letters
    }
}

/// Records every answer; a token answered before is refused as Step Functions does. The
/// answers for `unreachable_for`'s tokens fail, as when Step Functions cannot be reached.
#[derive(Default)]
struct RecordingSaga {
    answers: Mutex<Vec<(String, Answer)>>,
    unreachable_for: Option<String>,
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
        if let Some(user) = &self.unreachable_for
            && task_token.starts_with(&format!("token-{user}-"))
        {
            return Err(AnswerError {
                operation: "SendTaskSuccess",
                source: Box::new(std::io::Error::other("Step Functions unreachable")),
            });
        }
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

/// A record of `user` for `amount` EUR, `minutes` after a fixed start; its token names the
/// user. The customer lives where the order ships and has had an account for 400 days.
fn transaction(user: &str, amount: &str, minutes: i64) -> TransactionRecord {
    let order_id = shared::ids::OrderId::new();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .to_utc()
        + chrono::TimeDelta::minutes(minutes);
    TransactionRecord {
        task_token: format!("token-{user}-{order_id}"),
        order_id,
        user_id: user.parse().unwrap(),
        amount: shared::money::Money::parse(amount, "EUR").unwrap(),
        item_count: 1,
        shipping_country: "DE".to_owned().try_into().unwrap(),
        profile_country: Some("DE".to_owned().try_into().unwrap()),
        account_created_at: Some(at - chrono::TimeDelta::days(400)),
        payment_fingerprint: shared::transactions::fingerprint(&format!("tok-{user}")),
        source_ip: None,
        correlation_id: Some("it-fraud".into()),
        requested_at: at,
    }
}

/// A Kinesis event record as Lambda delivers it: `data` under `partition_key`.
fn kinesis(partition_key: &str, seq: u64, data: &[u8]) -> KinesisEventRecord {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    serde_json::from_value(serde_json::json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": format!("{seq:020}"),
            "data": data,
            "approximateArrivalTimestamp": 1796126400.0
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("shardId-000000000000:{seq:020}"),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/commerce-fraud-score",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/commerce-transactions"
    }))
    .unwrap()
}

/// The records of `transactions`, in order, keyed by user as the producer puts them.
fn batch(transactions: &[TransactionRecord]) -> Vec<KinesisEventRecord> {
    transactions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            kinesis(
                t.user_id.as_str(),
                i as u64 + 1,
                &serde_json::to_vec(t).unwrap(),
            )
        })
        .collect()
}

fn scored(outcome: &BatchOutcome) -> Vec<&Assessment> {
    outcome
        .results
        .iter()
        .filter_map(|r| match r {
            RecordResult::Scored(a, _) => Some(a),
            _ => None,
        })
        .collect()
}

/// 100 records from `users` users taking turns, each user's orders a minute apart.
fn hundred_from(users: usize) -> (Vec<String>, Vec<TransactionRecord>) {
    let names: Vec<String> = (0..users).map(|_| fresh_user()).collect();
    let transactions = (0..100)
        .map(|i| transaction(&names[i % users], "25.00", (i / users) as i64))
        .collect();
    (names, transactions)
}

/// DynamoDB requests of one batch of 100 new records from 1, 10 and 100 users, which
/// `make bench` reports (`.local/fraud-batch.json`). They follow from the layout: one
/// `BatchGetItem` per 100 users, then transactions of at most 100 items that keep each
/// user's items together (its state, and per order the assessment and its `FraudAssessed`
/// outbox item), at most 49 orders of one user in a round.
#[tokio::test]
async fn a_batch_of_100_takes_one_read_and_a_few_transactions() {
    let s = setup().await;
    let mut figures = BTreeMap::new();
    // 1 user: rounds of 49, 49 and 2 orders; 10 users: 21 items each, 4 users a
    // transaction; 100 users: 3 items each, 33 users a transaction.
    for (users, expected) in [(1, 1 + 3), (10, 1 + 3), (100, 1 + 4)] {
        let (names, transactions) = hundred_from(users);
        let saga = RecordingSaga::default();
        let (outcome, requests) = s.score(&saga, &batch(&transactions)).await;
        assert!(
            outcome.response.batch_item_failures.is_empty(),
            "{:?}",
            outcome.results
        );
        assert_eq!(scored(&outcome).len(), 100);
        assert_eq!(requests, expected, "{users} users");
        for name in &names {
            let (state, _) = s.state(name).await.unwrap();
            assert_eq!(
                state.recent.len(),
                (100 / users).min(fraud::features::RECENT)
            );
            assert_eq!(state.amounts.n, (100 / users) as u64);
        }
        for t in &transactions {
            assert_eq!(saga.answers_to(&t.task_token).len(), 1, "answered once");
        }
        figures.insert(users.to_string(), requests);
    }
    println!("DynamoDB requests per batch of 100 new records: {figures:?}");
    // For `make bench` (local/bench/run.py), as `make test` measured them.
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local");
    if local.is_dir() {
        let measured = serde_json::json!({
            "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "records": 100,
            "requests_by_users": figures,
        });
        std::fs::write(
            local.join("fraud-batch.json"),
            serde_json::to_string_pretty(&measured).unwrap() + "\n",
        )
        .unwrap();
    }
}

#[tokio::test]
async fn each_users_records_are_scored_in_stream_order() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let (a, b) = (fresh_user(), fresh_user());
    // a, b, a, b, ...: each user's orders a minute apart, so each sees one more in its last
    // hour than the one before it.
    let transactions: Vec<_> = (0..12)
        .map(|i| transaction(if i % 2 == 0 { &a } else { &b }, "30.00", i / 2))
        .collect();
    let (outcome, _) = s.score(&saga, &batch(&transactions)).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    for user in [&a, &b] {
        let counts: Vec<u32> = scored(&outcome)
            .iter()
            .filter(|x| x.user_id.as_str() == user)
            .map(|x| x.features.count_1h)
            .collect();
        assert_eq!(counts, (1..=6).collect::<Vec<_>>(), "{user}");
    }
    // Velocity shows: a's sixth order in six minutes scores higher than its first.
    let all = scored(&outcome);
    assert!(
        all[10].score > all[0].score,
        "{} vs {}",
        all[10].score,
        all[0].score
    );
}

#[tokio::test]
async fn a_poison_record_is_parked_and_the_other_99_are_scored() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let (_, transactions) = hundred_from(33);
    let mut records = batch(&transactions[..99]);
    let poison = br#"{"order_id": "not-an-order", "user_id": "u-poison"}"#;
    records.insert(50, kinesis("u-poison", 500, poison));
    let (outcome, _) = s.score(&saga, &records).await;
    assert!(
        outcome.response.batch_item_failures.is_empty(),
        "no retry for a record that can never be scored"
    );
    assert_eq!(scored(&outcome).len(), 99);
    let RecordResult::Parked(reason) = &outcome.results[50] else {
        panic!("{:?}", outcome.results[50]);
    };
    assert!(reason.contains("not a fraud-check request"), "{reason}");
    let letters = s.letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["sequence_number"], format!("{:020}", 500));
    assert_eq!(letter["partition_key"], "u-poison");
    assert_eq!(letter["reason"], reason.as_str());
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(letter["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, poison, "the record's data is kept for a later look");
}

#[tokio::test]
async fn a_transient_failure_retries_only_that_users_records_and_counts_nothing_twice() {
    let s = setup().await;
    let (a, b, c) = (fresh_user(), fresh_user(), fresh_user());
    let users = [&a, &b, &c];
    let transactions: Vec<_> = (0..9)
        .map(|i| transaction(users[i % 3], "45.00", i as i64 / 3))
        .collect();
    let records = batch(&transactions);
    let down = RecordingSaga {
        unreachable_for: Some(b.clone()),
        ..Default::default()
    };
    let (outcome, _) = s.score(&down, &records).await;
    let failed: Vec<&str> = outcome
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref().unwrap())
        .collect();
    let of_b: Vec<&str> = records
        .iter()
        .filter(|r| r.kinesis.partition_key == b)
        .map(|r| r.kinesis.sequence_number.as_str())
        .collect();
    assert_eq!(failed, of_b, "only b's records");
    let state_b = s.state(&b).await.unwrap();

    // Lambda retries from b's first record: b's orders are answered now, from what was
    // stored, and nobody's windows count anything twice.
    let first = records
        .iter()
        .position(|r| r.kinesis.partition_key == b)
        .unwrap();
    let up = RecordingSaga::default();
    let (retry, _) = s.score(&up, &records[first..]).await;
    assert!(retry.response.batch_item_failures.is_empty());
    assert!(
        retry
            .results
            .iter()
            .all(|r| matches!(r, RecordResult::AnsweredAgain(..))),
        "{:?}",
        retry.results
    );
    for t in transactions.iter().filter(|t| t.user_id.as_str() == b) {
        assert_eq!(up.answers_to(&t.task_token).len(), 1);
    }
    assert_eq!(s.state(&b).await.unwrap(), state_b);
    for user in users {
        assert_eq!(s.state(user).await.unwrap().0.amounts.n, 3);
    }
}

#[tokio::test]
async fn a_redelivered_batch_changes_no_window_and_gets_the_stored_decisions() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let (names, transactions) = hundred_from(10);
    let records = batch(&transactions);
    let (first, _) = s.score(&saga, &records).await;
    let states = futures::future::join_all(names.iter().map(|n| s.state(n))).await;

    let (again, requests) = s.score(&saga, &records).await;
    assert!(again.response.batch_item_failures.is_empty());
    assert_eq!(
        requests, 2,
        "the states, then the stored assessments; nothing written"
    );
    let after = futures::future::join_all(names.iter().map(|n| s.state(n))).await;
    assert_eq!(states, after, "windows unchanged");
    for (was, is) in first.results.iter().zip(&again.results) {
        let (RecordResult::Scored(a, _), RecordResult::AnsweredAgain(b, d)) = (was, is) else {
            panic!("{was:?} then {is:?}");
        };
        assert_eq!(a, b);
        assert_eq!(*d, Delivery::AlreadyClosed("InvalidToken"));
    }
    assert_eq!(
        s.events(transactions[0].order_id.as_str()).await.len(),
        1,
        "one FraudAssessed per order"
    );
    // A retried saga step (a new token for the same order, later) gets the stored decision.
    let retried = TransactionRecord {
        task_token: format!("token-{}-retried", names[0]),
        requested_at: transactions[0].requested_at + chrono::TimeDelta::minutes(3),
        ..transactions[0].clone()
    };
    let (third, _) = s.score(&saga, &batch(&[retried])).await;
    assert!(
        matches!(
            third.results[0],
            RecordResult::AnsweredAgain(_, Delivery::Delivered)
        ),
        "{:?}",
        third.results
    );
    assert_eq!(s.state(&names[0]).await, states[0]);
}

#[tokio::test]
async fn the_same_order_twice_in_a_batch_is_counted_once_and_both_tokens_answered() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let user = fresh_user();
    // A saga step retried with a new token puts the same order again, here in one batch,
    // next to another order of the same user.
    let first = transaction(&user, "35.00", 0);
    let retried = TransactionRecord {
        task_token: format!("token-{user}-retried"),
        ..first.clone()
    };
    let other = transaction(&user, "36.00", 1);
    let records = batch(&[first.clone(), retried.clone(), other.clone()]);
    let (outcome, _) = s.score(&saga, &records).await;
    assert!(
        outcome.response.batch_item_failures.is_empty(),
        "{:?}",
        outcome.results
    );
    let (RecordResult::Scored(a, _), RecordResult::AnsweredAgain(b, Delivery::Delivered)) =
        (&outcome.results[0], &outcome.results[1])
    else {
        panic!("{:?}", outcome.results);
    };
    assert_eq!(a, b);
    assert_eq!(s.state(&user).await.unwrap().0.amounts.n, 2, "counted once");
    assert_eq!(s.events(first.order_id.as_str()).await.len(), 1);
    // Redelivered as a whole: both records of the order are answered from one read of it.
    let (again, requests) = s.score(&saga, &records).await;
    assert!(
        again.response.batch_item_failures.is_empty(),
        "{:?}",
        again.results
    );
    assert_eq!(requests, 2);
    assert!(
        again
            .results
            .iter()
            .all(|r| matches!(r, RecordResult::AnsweredAgain(..)))
    );
}

#[tokio::test]
async fn an_order_in_a_currency_without_a_rate_is_held_for_review_and_remembered() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let user = fresh_user();
    // Bermudian dollars: a currency the rates table (rates-2025-01) does not have.
    let t = TransactionRecord {
        amount: shared::money::Money::parse("120.00", "BMD").unwrap(),
        ..transaction(&user, "1.00", 0)
    };
    let records = batch(std::slice::from_ref(&t));
    let (outcome, _) = s.score(&saga, &records).await;
    let a = scored(&outcome)[0];
    assert_eq!(a.decision, FraudDecision::Review);
    assert_eq!(a.reasons, ["no_rate_for_currency"]);
    let (state, _) = s.state(&user).await.unwrap();
    assert!(state.has_seen(t.order_id.as_str()));
    assert_eq!(
        state.amounts.n, 0,
        "its amount means nothing next to the others"
    );
    let (again, _) = s.score(&saga, &records).await;
    assert!(
        matches!(again.results[0], RecordResult::AnsweredAgain(..)),
        "{:?}",
        again.results
    );
}

#[tokio::test]
async fn two_consumers_scoring_the_same_users_at_once_lose_no_update() {
    let s = setup().await;
    // Two consumers at once on the same users, as with a parallelization factor above 1
    // when one user's records reach two of them (a redriven or replayed record). Each
    // writes only if the state is still the one it read, so the later writer reads again.
    let users: Vec<String> = (0..5).map(|_| fresh_user()).collect();
    let mut one = Vec::new();
    let mut two = Vec::new();
    for user in &users {
        for i in 0..20 {
            let t = transaction(user, "20.00", i);
            if i % 2 == 0 { &mut one } else { &mut two }.push(t);
        }
    }
    let (saga_one, saga_two) = (RecordingSaga::default(), RecordingSaga::default());
    let (one, two) = (batch(&one), batch(&two));
    let ((x, _), (y, _)) = tokio::join!(s.score(&saga_one, &one), s.score(&saga_two, &two));
    assert!(x.response.batch_item_failures.is_empty(), "{:?}", x.results);
    assert!(y.response.batch_item_failures.is_empty(), "{:?}", y.results);
    for user in &users {
        let (state, version) = s.state(user).await.unwrap();
        assert_eq!(state.amounts.n, 20, "{user}: every order counted once");
        let orders: BTreeSet<&str> = state.recent.iter().map(|r| r.o.as_str()).collect();
        assert_eq!(orders.len(), 20, "{user}");
        assert_eq!(version, 2, "{user}: one write per consumer");
        // Each score saw an exact state: whichever consumer wrote first saw only its own
        // orders (1..=10 of the day); the other read that state again and each of its
        // orders also saw the first writer's orders up to its time. A lost update would
        // show as both seeing only their own.
        let counts = |o: &BatchOutcome| -> Vec<u32> {
            scored(o)
                .into_iter()
                .filter(|a| a.user_id.as_str() == user)
                .map(|a| a.features.count_24h)
                .collect()
        };
        let alone: Vec<u32> = (1..=10).collect();
        let after = |mine: i64, other: i64| -> Vec<u32> {
            (0..10)
                .map(|j| {
                    let t = 2 * j + mine;
                    let others = (0..10).filter(|k| 2 * k + other <= t).count();
                    (j as usize + 1 + others) as u32
                })
                .collect()
        };
        let (cx, cy) = (counts(&x), counts(&y));
        assert!(
            (cx == alone && cy == after(1, 0)) || (cy == alone && cx == after(0, 1)),
            "{user}: {cx:?} {cy:?}"
        );
    }
    println!("rounds: first consumer {}, second {}", x.rounds, y.rounds);
}

#[tokio::test]
async fn a_large_amount_from_a_new_user_is_denied_and_the_saga_told_so() {
    let s = setup().await;
    let saga = RecordingSaga::default();
    let t = transaction(&fresh_user(), "30000.00", 0);
    let (outcome, _) = s.score(&saga, &batch(std::slice::from_ref(&t))).await;
    let a = scored(&outcome)[0];
    assert_eq!(a.decision, FraudDecision::Deny, "{a:?}");
    assert_eq!(a.reasons.first().map(String::as_str), Some("large_amount"));
    let answers = saga.answers_to(&t.task_token);
    assert!(
        matches!(&answers[..], [Answer::Failure { error, .. }] if *error == FRAUD_DENIED),
        "{answers:?}"
    );
    let event = &s.events(t.order_id.as_str()).await[0];
    assert_eq!(event["data"]["decision"], "deny");
    assert_eq!(event["data"]["model_version"], "logit-v2/rates-2025-01");
    assert_eq!(event["metadata"]["correlation_id"], "it-fraud");
    assert_eq!(event["metadata"]["causation_id"], t.order_id.as_str());
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
    let user = fresh_user();
    let t = transaction(&user, "2500.00", 0);
    let (outcome, _) = s.score(&saga, &batch(std::slice::from_ref(&t))).await;
    let a = scored(&outcome)[0].clone();

    let (status, body) = get_risk(&s, t.order_id.as_str(), true).await;
    assert_eq!(status, 200, "{body}");
    let assessed_at = a
        .assessed_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        body,
        serde_json::json!({"order_id": t.order_id, "score": a.score, "decision": a.decision,
                           "reasons": a.reasons, "model_version": "logit-v2/rates-2025-01",
                           "assessed_at": assessed_at})
    );
    assert_eq!(get_risk(&s, t.order_id.as_str(), false).await.0, 403);
    let unscored = ulid::Ulid::new().to_string();
    assert_eq!(get_risk(&s, &unscored, true).await.0, 404);
    assert_eq!(get_risk(&s, "not-an-order", true).await.0, 404);
    // A user's state is no order.
    assert_eq!(get_risk(&s, &format!("user#{user}"), true).await.0, 404);
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
        cause: "score 997 (large_amount, spend_24h)".into(),
    };
    for answer in [success, failure] {
        assert_eq!(
            sfn.send(&token, &answer).await.unwrap(),
            Delivery::AlreadyClosed("InvalidToken"),
            "{answer:?}"
        );
    }
}
