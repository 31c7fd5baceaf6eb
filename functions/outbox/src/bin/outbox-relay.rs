//! Outbox relay: on the service tables' streams, publishes new outbox items to the bus.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use outbox::bus::{DynamoMarks, EventBridgeBus};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let bus_name = shared::config::required("EVENT_BUS_NAME")?;
    let sdk = shared::aws::sdk_config().await;
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus_name);
    let bus = &bus;
    let marks = DynamoMarks::new(shared::aws::dynamodb(&sdk));
    let marks = &marks;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let span = shared::telemetry::event_span(&event.context, event.payload.records.len());
        let response = outbox::relay(bus, marks, &event.payload.records)
            .instrument(span)
            .await;
        Ok::<DynamoDbEventResponse, std::convert::Infallible>(response)
    }))
    .await
}
