//! Sales projection: on the `sales-projection` queue, folds `OrderConfirmed` and
//! `OrderCancelled` into the sales read model, live and from archive replays alike.

use analytics::SalesProjection;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let dedupe = shared::consumer::Dedupe::from_env().await?;
    let projection = SalesProjection::from_env().await?;
    let (dedupe, projection) = (&dedupe, &projection);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = shared::telemetry::event_span(&event.context, event.payload.records.len());
        let response = shared::consumer::process(dedupe, projection, &event.payload.records)
            .instrument(span)
            .await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(response)
    }))
    .await
}
