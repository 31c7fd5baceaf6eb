//! The runner of a stream consumer: a function an event source mapping feeds with batches
//! of a DynamoDB stream's or a Kinesis stream's records (`outbox-relay`, `fraud-score`).
//!
//! One runner per trigger, each owning what every function of its kind needs: the
//! invocation's span, its EMF metrics line ([`crate::metrics::measure_task`]: latency,
//! DynamoDB requests and throttles, records and failed records) and its answer. The others:
//! [`crate::http::serve`] (API routes), [`crate::step::run`] (saga steps) and
//! [`crate::consumer::run`] (bus consumers behind SQS).
//!
//! A stream consumer answers `ReportBatchItemFailures`: the records it names are retried
//! (with everything after them on the shard), so the handler decides what failed and the
//! runner only reports it.

use aws_lambda_events::event::dynamodb::{Event as DynamoDbEvent, EventRecord};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::{DynamoDbEventResponse, KinesisEventResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

/// A batch of stream records as the mapping delivers it.
pub trait Batch: DeserializeOwned + Send + 'static {
    /// One record of the batch.
    type Record;
    /// The answer that names the records to retry.
    type Answer: Serialize + Send;
    /// The batch's records, in shard order.
    fn records(&self) -> &[Self::Record];
    /// How many records `answer` names as failed.
    fn failures(answer: &Self::Answer) -> usize;
}

impl Batch for DynamoDbEvent {
    type Record = EventRecord;
    type Answer = DynamoDbEventResponse;
    fn records(&self) -> &[EventRecord] {
        &self.records
    }
    fn failures(answer: &DynamoDbEventResponse) -> usize {
        answer.batch_item_failures.len()
    }
}

impl Batch for KinesisEvent {
    type Record = KinesisEventRecord;
    type Answer = KinesisEventResponse;
    fn records(&self) -> &[KinesisEventRecord] {
        &self.records
    }
    fn failures(answer: &KinesisEventResponse) -> usize {
        answer.batch_item_failures.len()
    }
}

/// Runs a stream consumer: each batch `B` through `handler` under the invocation's span
/// (function, request id, batch size), with its metrics line, answering what the handler
/// answers. A handler never fails the invocation: what it could not do, it names in its
/// answer, so only those records are retried.
pub async fn run<B, F>(handler: F) -> Result<(), lambda_runtime::Error>
where
    B: Batch,
    F: AsyncFn(&[B::Record]) -> B::Answer,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<B>| async move {
            let records = event.payload.records();
            let span = crate::telemetry::event_span(&event.context, records.len());
            let answer = crate::metrics::measure_task(
                &event.context.request_id,
                records.len(),
                Box::pin(handler(records)).instrument(span),
                |a: &B::Answer| crate::metrics::Report::batch(B::failures(a)),
            )
            .await;
            Ok::<B::Answer, std::convert::Infallible>(answer)
        },
    ))
    .await
}
