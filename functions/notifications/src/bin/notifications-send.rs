//! Notifications consumer: on the `notifications` queue, tells the customer about
//! `OrderConfirmed`, `OrderRejected`, `OrderCancelled` and `PaymentRefunded`, once per
//! event; a replayed event notifies no one.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let dedupe = shared::consumer::Dedupe::from_env().await?;
    let notifier = notifications::from_env().await?;
    let (dedupe, notifier) = (&dedupe, &notifier);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = shared::telemetry::event_span(&event.context, event.payload.records.len());
        let response = shared::consumer::process(dedupe, notifier, &event.payload.records)
            .instrument(span)
            .await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(response)
    }))
    .await
}
