//! Saga starter: on the `order-placed` queue, starts one `place-order` execution per
//! `OrderPlaced`, named by the order id (a duplicate start is a no-op).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use orders::workflow::{Workflows, start_sagas};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let workflows = Workflows::from_env().await;
    let workflows = &workflows;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = shared::telemetry::event_span(&event.context, event.payload.records.len());
        let response = start_sagas(workflows, &event.payload.records)
            .instrument(span)
            .await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(response)
    }))
    .await
}
