//! Outbox relay: on the service tables' streams, publishes new outbox items to the bus.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use outbox::bus::{DynamoMarks, EventBridgeBus};
use tracing::Instrument;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let bus_name = shared::config::required("EVENT_BUS_NAME")?;
    let sdk = shared::aws::sdk_config().await?;
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus_name);
    let bus = &bus;
    let marks = DynamoMarks::new(shared::aws::dynamodb(&sdk));
    let marks = &marks;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let records = &event.payload.records;
        let span = shared::telemetry::event_span(&event.context, records.len());
        let response = shared::metrics::measure_task(
            &event.context.request_id,
            records.len(),
            outbox::relay(bus, marks, records).instrument(span),
            |r: &DynamoDbEventResponse| r.batch_item_failures.len(),
        )
        .await;
        Ok::<DynamoDbEventResponse, std::convert::Infallible>(response)
    }))
    .await
}
