//! Consuming the bus: every consumer is rule → SQS queue → Lambda, and this is the part
//! of that Lambda that is the same for all of them.
//!
//! [`process`] takes an SQS batch of EventBridge events and, per message:
//! - parses our own [`BusEvent`] (the stock EventBridge type drops the top-level
//!   `replay-name` that marks a replayed event) and the envelope's `metadata`;
//! - dedupes by `metadata.event_id` through [`crate::idempotency`]: one record per
//!   consumer, event and *delivery stream* (`live`, or the replay's name), so a
//!   redelivered message is handled once, while a replay, which operators start to
//!   rebuild state, reaches the handler again (marked, see [`Delivery::replay`]);
//! - runs the handler, which answers with the DynamoDB writes its effect is made of;
//!   those writes and the dedupe record commit in one transaction, so an event's effect
//!   happens exactly once or not at all;
//! - reports the messages that failed ([`SqsBatchResponse`], `ReportBatchItemFailures`),
//!   so the queue redelivers only them and, after its `maxReceiveCount`, parks them in its
//!   dead-letter queue, from which `commerce-ops redrive` brings them back.
//!
//! Handlers never repeat an outward side effect (a customer notification, a payment
//! call) for a replayed event; they may rebuild their own state from it.

use crate::dynamo::{StoreError, Transaction};
use crate::events::{DomainEvent, Envelope, Metadata};
use crate::idempotency::{Claim, Claimed, Idempotency, StoredResponse};
use crate::time::Timestamp;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Deserialize;
use std::future::Future;
use tracing::Instrument;

/// An EventBridge event as a rule delivers it to an SQS queue: the fields consumers use.
#[derive(Debug, Deserialize)]
struct BusEvent {
    /// `commerce.<service>`.
    source: String,
    /// The event's name.
    #[serde(rename = "detail-type")]
    detail_type: String,
    /// Set on events an archive replay sends: the replay's name.
    #[serde(rename = "replay-name", default)]
    replay_name: Option<String>,
    /// Our envelope.
    detail: serde_json::Value,
}

/// The envelope with its `data` not yet typed.
#[derive(Debug, Deserialize)]
struct RawEnvelope {
    metadata: Metadata,
    data: serde_json::Value,
}

/// One event handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event's name (`detail-type`).
    pub name: String,
    /// Its source.
    pub source: String,
    /// Its metadata: event id, times, correlation.
    pub metadata: Metadata,
    /// `Some(replay name)` when an archive replay sent it: rebuild state, repeat no
    /// outward side effect.
    pub replay: Option<String>,
    data: serde_json::Value,
}

impl Delivery {
    /// Parses one SQS message body. Anything that is not one of our events is
    /// [`ConsumerError::Poison`]: no retry can make it one.
    pub fn parse(body: &str) -> Result<Self, ConsumerError> {
        let event: BusEvent = serde_json::from_str(body)
            .map_err(|e| ConsumerError::Poison(format!("not an EventBridge event: {e}")))?;
        let envelope: RawEnvelope = serde_json::from_value(event.detail).map_err(|e| {
            ConsumerError::Poison(format!("{} without our envelope: {e}", event.detail_type))
        })?;
        Ok(Self {
            name: event.detail_type,
            source: event.source,
            metadata: envelope.metadata,
            replay: event.replay_name,
            data: envelope.data,
        })
    }

    /// Whether an archive replay sent it.
    pub fn is_replay(&self) -> bool {
        self.replay.is_some()
    }

    /// Whether it is a `T`.
    pub fn is<T: DomainEvent>(&self) -> bool {
        self.name == T::NAME && self.source == T::SOURCE
    }

    /// The event as a `T`; a `T` whose data does not parse is poison.
    pub fn event<T: DomainEvent>(&self) -> Result<Envelope<T>, ConsumerError> {
        if !self.is::<T>() {
            return Err(ConsumerError::Poison(format!(
                "expected {} from {}, got {} from {}",
                T::NAME,
                T::SOURCE,
                self.name,
                self.source
            )));
        }
        let data = T::deserialize(&self.data)
            .map_err(|e| ConsumerError::Poison(format!("{} data: {e}", T::NAME)))?;
        Ok(Envelope {
            metadata: self.metadata.clone(),
            data,
        })
    }

    /// The delivery stream the dedupe record is kept per: `live`, or the replay.
    fn stream(&self) -> String {
        match &self.replay {
            Some(name) => format!("replay:{name}"),
            None => "live".to_owned(),
        }
    }
}

/// Why a message was not handled. Both are reported as batch item failures (the queue
/// retries, then dead-letters); they differ in what the log says and whom it calls.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The message can never be handled (malformed, an event the consumer does not
    /// take, an event id reused with other content): it will end in the DLQ.
    #[error("poison message: {0}")]
    Poison(String),
    /// Worth trying again (a store error, a lost race).
    #[error("transient failure: {0}")]
    Transient(String),
    /// Worth trying again: DynamoDB throttled. Told apart from a fault in the log (and
    /// counted in the batch's `DynamoDbThrottled` metric), because it calls for capacity,
    /// not a fix.
    #[error("throttled: {0}")]
    Throttled(String),
}

impl From<StoreError> for ConsumerError {
    fn from(e: StoreError) -> Self {
        let chain = crate::problem::error_chain(&e);
        if e.is_throttled() {
            Self::Throttled(chain)
        } else {
            Self::Transient(chain)
        }
    }
}

/// What a consumer does with one event.
pub trait Handler: Sync {
    /// Its name: dedupe records are kept per consumer.
    fn name(&self) -> &str;

    /// Handles `delivery`, answering with the writes that make its effect (empty for
    /// none). They commit together with the event's dedupe record.
    fn handle(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Vec<TransactWriteItem>, ConsumerError>> + Send;
}

/// The DynamoDB pieces [`process`] needs: the client and the idempotency store.
#[derive(Debug, Clone)]
pub struct Dedupe {
    client: aws_sdk_dynamodb::Client,
    store: Idempotency,
}

/// How one message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The handler ran and its effect committed.
    Handled,
    /// This consumer handled the event before (same delivery stream): nothing done.
    Duplicate,
}

impl Dedupe {
    /// On `client`, with dedupe records in the idempotency table `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let store = Idempotency::new(client.clone(), table);
        Self { client, store }
    }

    /// On the function's DynamoDB client ([`crate::aws::dynamodb`]), with the table from
    /// `IDEMPOTENCY_TABLE`.
    pub fn from_env(client: aws_sdk_dynamodb::Client) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(
            client,
            crate::config::required("IDEMPOTENCY_TABLE")?,
        ))
    }

    /// Handles one parsed delivery at most once per consumer and stream.
    async fn handle_once<H: Handler>(
        &self,
        handler: &H,
        delivery: &Delivery,
        now: Timestamp,
    ) -> Result<Outcome, ConsumerError> {
        let id = crate::idempotency::record_id(
            &format!("event:{}", handler.name()),
            &delivery.stream(),
            &delivery.metadata.event_id,
        );
        let fingerprint = crate::idempotency::fingerprint_of(&(
            &delivery.name,
            &delivery.metadata,
            &delivery.data,
        ));
        let claimed = match self.store.claim(&id, &fingerprint, now).await? {
            Claim::Acquired(c) => c,
            Claim::Replay(_) => return Ok(Outcome::Duplicate),
            Claim::InProgress { retry_after_secs } => {
                return Err(ConsumerError::Transient(format!(
                    "another delivery of {} is being handled (lease: {retry_after_secs} s)",
                    delivery.metadata.event_id
                )));
            }
            Claim::Mismatch => {
                return Err(ConsumerError::Poison(format!(
                    "event id {} was handled before with other content",
                    delivery.metadata.event_id
                )));
            }
        };
        match self.commit(handler, delivery, &claimed, now).await {
            Ok(()) => Ok(Outcome::Handled),
            Err(e) => {
                if let Err(release) = self.store.release(&claimed).await {
                    tracing::warn!(error = %release, id = %claimed.id, "could not release the dedupe claim; it lapses with its lease");
                }
                Err(e)
            }
        }
    }

    async fn commit<H: Handler>(
        &self,
        handler: &H,
        delivery: &Delivery,
        claimed: &Claimed,
        now: Timestamp,
    ) -> Result<(), ConsumerError> {
        let mut writes = handler.handle(delivery).await?;
        let done = StoredResponse {
            status: 200,
            body: serde_json::json!({"handled": delivery.name}).to_string(),
            location: None,
            content_type: None,
        };
        if writes.is_empty() {
            return match self.store.complete(claimed, &done, now).await? {
                true => Ok(()),
                false => Err(ConsumerError::Transient(
                    "the dedupe claim was taken over".into(),
                )),
            };
        }
        if writes.len() >= 100 {
            return Err(ConsumerError::Poison(format!(
                "{} needs {} writes; one transaction holds 99 besides the dedupe record",
                delivery.name,
                writes.len()
            )));
        }
        writes.push(self.store.completion(claimed, &done, now)?);
        match crate::dynamo::transact(&self.client, writes, Some(&claimed.token)).await? {
            Transaction::Committed => Ok(()),
            Transaction::Cancelled(codes) => Err(ConsumerError::Transient(format!(
                "transaction cancelled ({codes:?}); the event is tried again"
            ))),
        }
    }
}

/// The Lambda runtime loop of a bus consumer: each SQS batch through [`process`] under the
/// invocation's span. One call for every consumer's `main`.
pub async fn run<H: Handler>(dedupe: Dedupe, handler: H) -> Result<(), lambda_runtime::Error> {
    let (dedupe, handler) = (&dedupe, &handler);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let records = &event.payload.records;
            let span = crate::telemetry::event_span(&event.context, records.len());
            let response = crate::metrics::measure_task(
                &event.context.request_id,
                records.len(),
                // Boxed, as a step's: the nesting of a consumer's future otherwise overflows
                // rustc's query depth when `main`'s future is laid out.
                Box::pin(process(dedupe, handler, records, &event.context.request_id))
                    .instrument(span),
                |r: &SqsBatchResponse| crate::metrics::Report::batch(r.batch_item_failures.len()),
            )
            .await;
            Ok::<SqsBatchResponse, std::convert::Infallible>(response)
        },
    ))
    .await
}

/// Handles an SQS batch of bus events with `handler`, each at most once; answers the
/// messages that failed, so only they are redelivered.
///
/// Each event is handled in its own span ([`crate::telemetry::record_span`]) carrying its
/// event id and correlation id, so every line an event causes is found by the id of the
/// request that started it.
pub async fn process<H: Handler>(
    dedupe: &Dedupe,
    handler: &H,
    messages: &[SqsMessage],
    request_id: &str,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let (mut handled, mut duplicates, mut failed) = (0_u32, 0_u32, 0_u32);
    for message in messages {
        let message_id = message.message_id.clone().unwrap_or_default();
        let result = match Delivery::parse(message.body.as_deref().unwrap_or_default()) {
            Ok(delivery) => {
                let span = crate::telemetry::record_span(
                    request_id,
                    &delivery.metadata.event_id,
                    &delivery.metadata.correlation_id,
                );
                let outcome = dedupe
                    .handle_once(handler, &delivery, crate::time::now())
                    .instrument(span.clone())
                    .await;
                if let Ok(o) = &outcome {
                    span.in_scope(|| {
                        tracing::info!(
                            consumer = handler.name(),
                            event = %delivery.name,
                            event_id = %delivery.metadata.event_id,
                            correlation_id = %delivery.metadata.correlation_id,
                            replay = delivery.replay.as_deref().unwrap_or(""),
                            outcome = ?o,
                            "event"
                        )
                    });
                }
                outcome
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(Outcome::Handled) => handled += 1,
            Ok(Outcome::Duplicate) => duplicates += 1,
            Err(e) => {
                failed += 1;
                match &e {
                    ConsumerError::Poison(_) => {
                        tracing::error!(consumer = handler.name(), %message_id, error = %e, "message refused; it goes to the DLQ after the queue's max receives");
                    }
                    ConsumerError::Transient(_) => {
                        tracing::warn!(consumer = handler.name(), %message_id, error = %e, "message failed; the queue redelivers it");
                    }
                    ConsumerError::Throttled(_) => {
                        tracing::warn!(consumer = handler.name(), %message_id, error = %e, throttled = true, "message throttled; the queue redelivers it");
                    }
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    tracing::info!(
        consumer = handler.name(),
        handled,
        duplicates,
        failed,
        "batch"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(replay: Option<&str>) -> String {
        let mut e = json!({
            "version": "0", "id": "e1", "source": "commerce.orders", "detail-type": "OrderCancelled",
            "account": "123456789012", "time": "2026-11-21T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "metadata": {"event_id": "01JD0000000000000000000000", "occurred_at": "2026-11-21T10:00:00Z",
                             "correlation_id": "c", "causation_id": null, "schema_version": 1},
                "data": {"order_id": "01JDZ000000000000000000001", "user_id": "u1", "total": {"amount": "10.00", "currency": "EUR"}}
            }
        });
        if let Some(r) = replay {
            e["replay-name"] = json!(r);
        }
        e.to_string()
    }

    #[test]
    fn a_live_event_parses_with_its_metadata() {
        let d = Delivery::parse(&body(None)).unwrap();
        assert_eq!(d.name, "OrderCancelled");
        assert!(!d.is_replay());
        assert_eq!(d.stream(), "live");
        let e = d.event::<crate::events::OrderCancelled>().unwrap();
        assert_eq!(e.data.order_id, "01JDZ000000000000000000001");
        assert_eq!(e.metadata.event_id, "01JD0000000000000000000000");
    }

    #[test]
    fn a_replayed_event_keeps_its_replay_name() {
        let d = Delivery::parse(&body(Some("rebuild-1"))).unwrap();
        assert_eq!(d.replay.as_deref(), Some("rebuild-1"));
        assert!(d.is_replay());
        assert_eq!(d.stream(), "replay:rebuild-1");
    }

    #[test]
    fn what_is_not_our_event_is_poison() {
        for bad in [
            "not json".to_owned(),
            json!({"id": "x", "source": "s", "detail-type": "T", "detail": {"no": "envelope"}})
                .to_string(),
            String::new(),
        ] {
            assert!(
                matches!(Delivery::parse(&bad), Err(ConsumerError::Poison(_))),
                "{bad}"
            );
        }
        let d = Delivery::parse(&body(None)).unwrap();
        assert!(matches!(
            d.event::<crate::events::OrderConfirmed>(),
            Err(ConsumerError::Poison(_))
        ));
    }
}
