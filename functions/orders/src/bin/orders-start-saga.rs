//! Saga starter: on the `order-placed` queue, starts one `place-order` execution per
//! `OrderPlaced`, named by the order id (a duplicate start is a no-op); a replayed
//! `OrderPlaced` starts nothing.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use orders::workflow::Workflows;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let workflows = Workflows::from_env().await;
    let dedupe = shared::consumer::Dedupe::from_env().await?;
    let (workflows, dedupe) = (&workflows, &dedupe);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = shared::telemetry::event_span(&event.context, event.payload.records.len());
        let response = shared::consumer::process(dedupe, workflows, &event.payload.records)
            .instrument(span)
            .await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(response)
    }))
    .await
}
