//! The fraud service: baseline real-time scoring of the place-order saga's transactions,
//! and `GET /orders/{order_id}/risk`.
//!
//! The saga's payment step puts a fraud-check request (order, user, amount, task token)
//! on the Kinesis stream `transactions`, partitioned by user id, and waits on the token.
//! `fraud-score` reads the stream, scores each order, stores the assessment with its
//! `FraudAssessed` event and the user's velocity count in one transaction, and answers
//! the token: `SendTaskSuccess` with `{"decision", "score", "order_id"}` for approve and
//! review, `SendTaskFailure` with error `FraudDenied` for deny.
//!
//! # Scoring (`rules-v1`)
//!
//! The score (0..=1000) is the sum of the rules below, capped at 1000:
//!
//! | rule | condition | points | reason |
//! |---|---|---|---|
//! | amount, in major units whatever the currency | below 500 | 0 | |
//! | | 500 to below 2,000 | 250 | `amount_over_500` |
//! | | 2,000 to below 10,000 | 500 | `amount_over_2000` |
//! | | 10,000 and more | 800 | `amount_over_10000` |
//! | velocity: the user's orders in the order's UTC hour, this one included | each order beyond 5 | +100 | `velocity_<n>_orders_last_hour` |
//!
//! | score | decision |
//! |---|---|
//! | below 400 | `approve` |
//! | 400 to below 700 | `review` |
//! | 700 and more | `deny` |
//!
//! "The last hour" is the clock hour (UTC) of the request's `requested_at`: a counter per
//! user and hour, kept with an atomic `ADD`, so a redelivery counts in the same hour.
//!
//! # Next: `logit-v2` (not serving yet)
//!
//! [`features`] (per-user windows, amount z-score, distinct cards and shipping countries,
//! account age), [`rates`] (amounts in euros from a versioned table) and [`model`] (a
//! logistic model with non-negative weights from `model/model.json`, fitted and measured by
//! `make fraud-eval`, [`eval`]) are the scorer that replaces `rules-v1`; the batch path above
//! does not call them yet.
//!
//! # Exactly one assessment per order
//!
//! One consistent batch read gets the order's assessment and the user's counter. An order
//! already assessed is answered again with the stored decision (a token answered before
//! yields `TaskTimedOut`/`InvalidToken`, which counts as done). Otherwise the assessment
//! (put only if absent), the counter's increment (only if it still holds the count the
//! score used) and the outbox event are one transaction; if the counter moved meanwhile,
//! the order is read and scored again. So each order is counted once, and each score saw
//! an exact count. A new order costs two DynamoDB round trips, a redelivery one.

pub mod answer;
pub mod domain;
pub mod eval;
pub mod features;
pub mod model;
pub mod rates;
pub mod scoring;
pub mod store;

use answer::{Answer, AnswerError, Delivery, SagaAnswer};
use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_lambda_events::event::streams::KinesisEventResponse;
use domain::{Assessment, FraudCheckRequest};
use scoring::{MODEL_VERSION, Signals};
use shared::dynamo::StoreError;
use shared::events::{Envelope, FraudAssessed};
use shared::problem::error_chain;
use std::future::Future;
use store::{FraudStore, RecordOutcome, VelocityBucket};

/// How often one order is read and scored again because its user's counter moved
/// between the read and the write; past that the record is retried by the mapping.
pub const MAX_SCORING_ATTEMPTS: u32 = 8;

/// Why an order could not be scored or answered now; the record is retried.
#[derive(Debug, thiserror::Error)]
pub enum FraudError {
    /// The fraud table failed.
    #[error("fraud store failed")]
    Store(#[from] StoreError),
    /// Step Functions did not take the answer.
    #[error("answering the saga failed")]
    Answer(#[from] AnswerError),
    /// Other orders of the user kept moving its counter.
    #[error("velocity counter of order {0} kept moving")]
    Contention(String),
}

/// What scoring one request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The order's assessment (new, or the one stored before).
    pub assessment: Assessment,
    /// What the saga was told.
    pub answer: Answer,
    /// False when the order had been assessed before (a redelivery).
    pub newly_assessed: bool,
    /// How the answer ended.
    pub delivery: Delivery,
}

/// Scores one request (once per order) and answers its task token; see the crate doc.
pub async fn assess(
    store: &FraudStore,
    saga: &impl SagaAnswer,
    request: &FraudCheckRequest,
) -> Result<Outcome, FraudError> {
    let bucket = VelocityBucket::of(&request.user_id, request.requested_at);
    for _ in 0..MAX_SCORING_ATTEMPTS {
        let prior = store.prior(&request.order_id, &bucket).await?;
        if let Some(assessment) = prior.assessment {
            return answer(saga, request, assessment, false).await;
        }
        let orders_this_hour = prior.orders_counted + 1;
        let scored = scoring::score(&Signals {
            amount: request.amount,
            orders_this_hour,
        });
        let assessment = Assessment {
            order_id: request.order_id.clone(),
            user_id: request.user_id.clone(),
            score: scored.score,
            decision: scored.decision,
            reasons: scored.reasons,
            model_version: MODEL_VERSION.to_owned(),
            orders_this_hour,
            assessed_at: shared::time::now(),
        };
        let event = Envelope::new(
            FraudAssessed {
                order_id: assessment.order_id.clone(),
                score: assessment.score,
                decision: assessment.decision,
                reasons: assessment.reasons.clone(),
                model_version: assessment.model_version.clone(),
            },
            assessment.assessed_at,
            request.correlation(),
            Some(&request.order_id),
        );
        let event = store.outbox().put(&event)?;
        match store
            .record(&assessment, &bucket, prior.orders_counted, event)
            .await?
        {
            RecordOutcome::Recorded => return answer(saga, request, assessment, true).await,
            // Read again: the stored assessment, or the counter's new value.
            RecordOutcome::AlreadyAssessed | RecordOutcome::CounterMoved => continue,
        }
    }
    Err(FraudError::Contention(request.order_id.to_string()))
}

async fn answer(
    saga: &impl SagaAnswer,
    request: &FraudCheckRequest,
    assessment: Assessment,
    newly_assessed: bool,
) -> Result<Outcome, FraudError> {
    let answer = answer::for_assessment(&assessment);
    let delivery = saga.send(&request.task_token, &answer).await?;
    tracing::info!(
        order_id = %assessment.order_id,
        correlation_id = %request.correlation(),
        score = assessment.score,
        decision = ?assessment.decision,
        reasons = ?assessment.reasons,
        newly_assessed,
        delivery = ?delivery,
        "fraud check answered"
    );
    Ok(Outcome {
        assessment,
        answer,
        newly_assessed,
        delivery,
    })
}

/// How many users' records of one batch are scored at once. Each user's records are
/// scored one after another, in stream order.
pub const USERS_AT_ONCE: usize = 16;

/// Handles a Kinesis batch with `handle`: the records of one partition key (the user, as
/// the producer partitions the stream) one after another in stream order, different keys
/// concurrently (up to [`USERS_AT_ONCE`]), as Lambda's parallelization factor does within
/// a shard. A key's records stop at its first failure (or record that is not a fraud-check
/// request); the lowest failed sequence number is reported, so Lambda checkpoints just
/// before it and retries from there. Records after it that were handled meanwhile come
/// again and are answered from their stored assessment (scoring is once per order); none
/// is skipped. A record that keeps failing ends, after the mapping's retries, in its
/// on-failure queue.
pub async fn process_batch<F, Fut>(
    records: &[KinesisEventRecord],
    handle: F,
) -> KinesisEventResponse
where
    F: Fn(FraudCheckRequest) -> Fut,
    Fut: Future<Output = Result<(), FraudError>>,
{
    use futures::StreamExt;

    let mut keys: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let key = record.kinesis.partition_key.as_str();
        let group = *keys.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(i);
    }
    let handle = &handle;
    let failed: Vec<usize> = futures::stream::iter(groups)
        .map(|group| async move {
            for i in group {
                let record = &records[i];
                let result = match FraudCheckRequest::parse(&record.kinesis.data.0) {
                    Ok(request) => handle(request).await.map_err(|e| error_chain(&e)),
                    Err(e) => Err(error_chain(&e)),
                };
                if let Err(reason) = result {
                    let sequence_number = &record.kinesis.sequence_number;
                    tracing::error!(%sequence_number, %reason, "fraud check failed; retrying from this record");
                    return Some(i);
                }
            }
            None
        })
        .buffer_unordered(USERS_AT_ONCE)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    let mut response = KinesisEventResponse::default();
    if let Some(first) = failed.into_iter().min() {
        response.add_failure(records[first].kinesis.sequence_number.clone());
    }
    response
}

/// `fraud-score`: scores every request of a Kinesis batch and answers the saga.
pub async fn score_batch(
    store: &FraudStore,
    saga: &impl SagaAnswer,
    records: &[KinesisEventRecord],
) -> KinesisEventResponse {
    process_batch(records, |request| async move {
        assess(store, saga, &request).await.map(|_| ())
    })
    .await
}

/// `GET /orders/{order_id}/risk`: administrators only.
pub mod api {
    use crate::domain::AssessmentView;
    use crate::store::FraudStore;
    use http::StatusCode;
    use lambda_http::{Body, Request, RequestExt, Response};
    use shared::ApiError;
    use shared::identity::Caller;

    /// The fraud assessment of an order: 403 for a non-admin, 404 when there is none.
    pub async fn get_risk(store: &FraudStore, req: Request) -> Result<Response<Body>, ApiError> {
        let caller = Caller::from_context(req.request_context_ref())?;
        caller.require_admin()?;
        let order_id = shared::http::path_param(&req, "order_id")?;
        let not_found = || ApiError::NotFound(format!("No fraud assessment for order {order_id}"));
        if ulid::Ulid::from_string(&order_id).is_err() {
            return Err(not_found());
        }
        let assessment = store.assessment(&order_id).await?.ok_or_else(not_found)?;
        shared::http::json(StatusCode::OK, &AssessmentView::from(&assessment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn record(seq: u32, data: &[u8]) -> KinesisEventRecord {
        record_of("u-1", seq, data)
    }

    fn record_of(partition_key: &str, seq: u32, data: &[u8]) -> KinesisEventRecord {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        serde_json::from_value(serde_json::json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": partition_key,
                "sequenceNumber": format!("{seq:06}"),
                "data": data,
                "approximateArrivalTimestamp": 1795290000.0
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:{seq:06}"),
            "eventName": "aws:kinesis:record",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/commerce-transactions"
        }))
        .unwrap()
    }

    fn request(order: u32) -> Vec<u8> {
        let order_id = format!("01JDZ8F3Q4K5M6N7P8R9S0{order:04}");
        serde_json::to_vec(&serde_json::json!({
            "order_id": order_id, "user_id": "u-1",
            "amount": {"amount": "12.50", "currency": "EUR"},
            "item_count": 1, "shipping_country": "DE", "profile_country": null,
            "account_created_at": null, "source_ip": null,
            "payment_fingerprint": shared::transactions::fingerprint("tok"),
            "task_token": format!("token-{order}"), "correlation_id": "c",
            "requested_at": "2026-11-21T19:30:00Z"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn every_record_is_handled_in_order_when_all_succeed() {
        let seen = RefCell::new(Vec::new());
        let records: Vec<_> = (1..=4).map(|i| record(i, &request(i))).collect();
        let response = process_batch(&records, |r| {
            seen.borrow_mut().push(r.task_token);
            async { Ok(()) }
        })
        .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(*seen.borrow(), ["token-1", "token-2", "token-3", "token-4"]);
    }

    #[tokio::test]
    async fn a_failing_record_stops_the_batch_at_its_sequence_number() {
        let seen = RefCell::new(Vec::new());
        let records: Vec<_> = (1..=5).map(|i| record(i, &request(i))).collect();
        let response = process_batch(&records, |r| {
            seen.borrow_mut().push(r.task_token.clone());
            async move {
                if r.task_token == "token-3" {
                    Err(FraudError::Contention(r.order_id.to_string()))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("000003")
        );
        assert_eq!(*seen.borrow(), ["token-1", "token-2", "token-3"]);
    }

    #[tokio::test]
    async fn users_are_scored_concurrently_and_the_lowest_failure_is_reported() {
        // u-1: 1, 3 (fails), 5; u-2: 2, 4. Both users' first records wait for each other:
        // scored one user after the other, this would never finish.
        let gate = tokio::sync::Barrier::new(2);
        let seen = RefCell::new(Vec::new());
        let records = vec![
            record_of("u-1", 1, &request(1)),
            record_of("u-2", 2, &request(2)),
            record_of("u-1", 3, &request(3)),
            record_of("u-2", 4, &request(4)),
            record_of("u-1", 5, &request(5)),
        ];
        let batch = process_batch(&records, |r| {
            seen.borrow_mut().push(r.task_token.clone());
            let gate = &gate;
            async move {
                if r.task_token == "token-1" || r.task_token == "token-2" {
                    gate.wait().await;
                }
                if r.task_token == "token-3" {
                    Err(FraudError::Contention(r.order_id.to_string()))
                } else {
                    Ok(())
                }
            }
        });
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), batch)
            .await
            .expect("the two users were scored one after the other");
        let reported: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect();
        assert_eq!(reported, ["000003"]);
        let seen = seen.borrow();
        // u-1 stopped at its failure; u-2 went on; each user's records in stream order.
        assert!(!seen.contains(&"token-5".to_owned()), "{seen:?}");
        let of = |t: &str| seen.iter().position(|s| s == t).unwrap();
        assert!(of("token-1") < of("token-3"));
        assert!(of("token-2") < of("token-4"));
        assert_eq!(seen.len(), 4);
    }

    #[tokio::test]
    async fn a_record_that_is_no_request_fails_at_itself() {
        let seen = RefCell::new(0);
        let records = vec![
            record(1, &request(1)),
            record(2, b"{\"order_id\": 7}"),
            record(3, &request(3)),
        ];
        let response = process_batch(&records, |_| {
            *seen.borrow_mut() += 1;
            async { Ok(()) }
        })
        .await;
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("000002")
        );
        assert_eq!(*seen.borrow(), 1);
    }
}
