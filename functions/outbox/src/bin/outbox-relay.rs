//! Outbox relay: on the service tables' streams, publishes new outbox items to the bus.

use aws_lambda_events::event::dynamodb::Event;
use outbox::bus::{DynamoMarks, EventBridgeBus};

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let bus_name = shared::config::required("EVENT_BUS_NAME")?;
    let sdk = shared::aws::sdk_config().await?;
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus_name);
    let marks = DynamoMarks::new(shared::aws::dynamodb(&sdk));
    shared::stream::run::<Event, _>(async |records| outbox::relay(&bus, &marks, records).await)
        .await
}
