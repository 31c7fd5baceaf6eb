//! The EventBridge adapter of [`EventBus`].

use crate::{BusEntry, EventBus};
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

/// The `commerce` bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    /// Publishes to `bus_name` through `client`.
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

impl EventBus for EventBridgeBus {
    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Option<String>>, Box<dyn std::error::Error + Send + Sync>> {
        let request_entries = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .time(DateTime::from_millis(e.time.timestamp_millis()))
                    .build()
            })
            .collect::<Vec<_>>();
        let out = self
            .client
            .put_events()
            .set_entries(Some(request_entries))
            .send()
            .await?;
        Ok(out
            .entries()
            .iter()
            .map(|r| {
                r.error_code()
                    .map(|code| format!("{code}: {}", r.error_message().unwrap_or_default()))
            })
            .collect())
    }
}

/// The DynamoDB adapter of [`crate::OutboxMarks`]: one transaction per chunk of accepted
/// items, each update conditioned on the outbox item existing.
#[derive(Debug, Clone)]
pub struct DynamoMarks {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoMarks {
    /// Marks through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client) -> Self {
        Self { client }
    }
}

impl crate::OutboxMarks for DynamoMarks {
    async fn mark_published(
        &self,
        items: &[crate::ItemRef],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let at = shared::time::now();
        let writes = items
            .iter()
            .map(|i| shared::outbox::mark_published(&i.table, i.key.clone(), at))
            .collect::<Result<Vec<_>, _>>()?;
        match shared::dynamo::transact(&self.client, writes, Some("outbox-published")).await? {
            shared::dynamo::Transaction::Committed => Ok(()),
            shared::dynamo::Transaction::Cancelled(reasons) => {
                Err(format!("marking cancelled: {reasons:?}").into())
            }
        }
    }
}
