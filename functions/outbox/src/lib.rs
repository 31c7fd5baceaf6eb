//! The outbox relay: reads a service table's stream and publishes each new outbox item
//! to the `commerce` bus.
//!
//! Records come in stream order. Outbox items are grouped into `PutEvents` calls of at
//! most 10 entries and under 256 KB. Entries EventBridge refuses (throttling, a passing
//! fault) are sent again, alone, a few times with backoff; only an entry still refused
//! after that stops the relay, which reports its sequence number as the batch's failure.
//! Lambda then retries from exactly there: nothing after it is skipped, nothing before it
//! is published twice. (Its chunk-mates that were accepted are published again on that
//! retry, the one duplicate path; it needs EventBridge to refuse one entry for seconds,
//! and consumers dedupe by `event_id`.) Other items of the table (the products, the
//! orders) are not events and are passed over.

pub mod bus;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use shared::outbox::{OUTBOX_RECORD_TYPE, OutboxRecord};
use std::future::Future;

/// PutEvents takes at most this many entries.
pub const MAX_ENTRIES: usize = 10;
/// PutEvents takes at most 256 KB; we keep a margin for the size formula's details.
pub const MAX_REQUEST_BYTES: usize = 250 * 1024;
/// How often refused entries are sent again within one invocation, and the first wait.
const RESEND_ATTEMPTS: u32 = 3;
const RESEND_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// One event for the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    /// `source`.
    pub source: String,
    /// `detail-type`.
    pub detail_type: String,
    /// `detail`, the JSON envelope.
    pub detail: String,
    /// `time`, when the change happened.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The event id, for the log.
    pub event_id: String,
}

impl BusEntry {
    /// The entry's size as EventBridge counts it toward the request limit.
    pub fn size(&self) -> usize {
        14 + self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// The bus, as the relay needs it.
pub trait EventBus: Send + Sync {
    /// Publishes `entries` in one request. `Ok` holds, per entry in order, `None` when
    /// published or `Some(error)` when refused; `Err` means the request failed as a whole.
    fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> impl Future<Output = Result<Vec<Option<String>>, Box<dyn std::error::Error + Send + Sync>>> + Send;
}

/// A stream record that is a new outbox item, with its sequence number.
fn outbox_entry(record: &EventRecord) -> Option<Result<BusEntry, String>> {
    if record.event_name != "INSERT" {
        return None;
    }
    let is_outbox = matches!(
        record.change.new_image.get("record_type"),
        Some(serde_dynamo::AttributeValue::S(t)) if t == OUTBOX_RECORD_TYPE
    );
    if !is_outbox {
        return None;
    }
    let parsed = serde_dynamo::from_item::<_, OutboxRecord>(record.change.new_image.clone())
        .map_err(|e| format!("outbox item does not parse: {e}"))
        .and_then(|r| {
            let time = chrono::DateTime::parse_from_rfc3339(&r.occurred_at)
                .map_err(|e| format!("occurred_at: {e}"))?
                .to_utc();
            Ok(BusEntry {
                source: r.source,
                detail_type: r.detail_type,
                detail: r.detail,
                time,
                event_id: r.event_id,
            })
        });
    Some(parsed)
}

fn failure(sequence_number: Option<&String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut item = DynamoDbBatchItemFailure::default();
    item.item_identifier = sequence_number.cloned();
    response.batch_item_failures.push(item);
    response
}

/// Publishes the outbox items of `records` in order; see the module doc.
pub async fn relay(bus: &impl EventBus, records: &[EventRecord]) -> DynamoDbEventResponse {
    let mut pending: Vec<(Option<&String>, BusEntry)> = Vec::new();
    for record in records {
        let seq = record.change.sequence_number.as_ref();
        match outbox_entry(record) {
            None => continue,
            Some(Ok(entry)) => pending.push((seq, entry)),
            Some(Err(reason)) => {
                // Publish what precedes it, then stop here: a bad item is ours to fix, and
                // the mapping's retries and on-failure destination keep it visible.
                tracing::error!(sequence_number = ?seq, %reason, "unpublishable outbox item");
                let before = publish_in_order(bus, &pending).await;
                return before.unwrap_or_else(|| failure(seq));
            }
        }
    }
    publish_in_order(bus, &pending).await.unwrap_or_default()
}

/// Publishes in chunks; `Some(failure)` names the first record not published.
async fn publish_in_order(
    bus: &impl EventBus,
    pending: &[(Option<&String>, BusEntry)],
) -> Option<DynamoDbEventResponse> {
    let mut start = 0;
    while start < pending.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < pending.len()
            && end - start < MAX_ENTRIES
            && (end == start || bytes + pending[end].1.size() <= MAX_REQUEST_BYTES)
        {
            bytes += pending[end].1.size();
            end += 1;
        }
        let chunk = &pending[start..end];
        // Indices (into `chunk`) not yet accepted by the bus.
        let mut remaining: Vec<usize> = (0..chunk.len()).collect();
        for attempt in 0..=RESEND_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RESEND_BACKOFF * 4_u32.pow(attempt - 1)).await;
            }
            let entries: Vec<BusEntry> = remaining.iter().map(|&i| chunk[i].1.clone()).collect();
            match bus.put_events(&entries).await {
                Ok(results) => {
                    let mut refused = Vec::new();
                    for (k, &i) in remaining.iter().enumerate() {
                        let entry = &chunk[i].1;
                        match results.get(k) {
                            Some(None) => {
                                tracing::info!(event_id = %entry.event_id, detail_type = %entry.detail_type, "published");
                            }
                            Some(Some(error)) => {
                                tracing::warn!(event_id = %entry.event_id, %error, attempt, "bus refused entry");
                                refused.push(i);
                            }
                            None => refused.push(i),
                        }
                    }
                    remaining = refused;
                }
                Err(err) => {
                    tracing::warn!(error = %err, attempt, "PutEvents failed");
                }
            }
            if remaining.is_empty() {
                break;
            }
        }
        if let Some(&first) = remaining.first() {
            return Some(failure(chunk[first].0));
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A bus in memory that refuses the entries whose event ids it is told to, `times`
    /// times each (`u32::MAX`: always).
    #[derive(Default)]
    struct MemoryBus {
        published: Mutex<Vec<BusEntry>>,
        calls: Mutex<Vec<usize>>,
        refuse: Vec<String>,
        times: u32,
        refused: Mutex<std::collections::HashMap<String, u32>>,
    }

    impl EventBus for MemoryBus {
        async fn put_events(
            &self,
            entries: &[BusEntry],
        ) -> Result<Vec<Option<String>>, Box<dyn std::error::Error + Send + Sync>> {
            self.calls.lock().unwrap().push(entries.len());
            Ok(entries
                .iter()
                .map(|e| {
                    let mut refused = self.refused.lock().unwrap();
                    let count = refused.entry(e.event_id.clone()).or_default();
                    if self.refuse.contains(&e.event_id) && *count < self.times {
                        *count += 1;
                        Some("ThrottlingException".to_owned())
                    } else {
                        self.published.lock().unwrap().push(e.clone());
                        None
                    }
                })
                .collect())
        }
    }

    fn record(seq: u32, outbox: bool, detail_len: usize) -> EventRecord {
        let mut image = serde_json::json!({
            "sku": {"S": format!("outbox#E{seq}")},
            "event_id": {"S": format!("E{seq}")},
            "source": {"S": "commerce.inventory"},
            "detail_type": {"S": "StockAdjusted"},
            "detail": {"S": "x".repeat(detail_len)},
            "occurred_at": {"S": "2026-11-21T19:30:00.000Z"},
            "expires_at": {"N": "1795290000"}
        });
        if outbox {
            image["record_type"] = serde_json::json!({"S": "outbox"});
        }
        serde_json::from_value(serde_json::json!({
            "eventID": format!("id{seq}"),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1795290000.0,
                "Keys": {"sku": {"S": "k"}},
                "NewImage": image,
                "SequenceNumber": format!("{seq:06}"),
                "SizeBytes": 10,
                "StreamViewType": "NEW_IMAGE"
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn publishes_outbox_items_in_chunks_of_ten_and_skips_other_items() {
        let bus = MemoryBus::default();
        let records: Vec<EventRecord> = (1..=25).map(|i| record(i, i % 5 != 0, 10)).collect();
        let response = relay(&bus, &records).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(*bus.calls.lock().unwrap(), vec![10, 10]);
        let ids: Vec<String> = bus
            .published
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_id.clone())
            .collect();
        let expected: Vec<String> = (1..=25)
            .filter(|i| i % 5 != 0)
            .map(|i| format!("E{i}"))
            .collect();
        assert_eq!(ids, expected);
    }

    #[tokio::test]
    async fn chunks_stay_under_the_request_size() {
        let bus = MemoryBus::default();
        let records: Vec<EventRecord> = (1..=6).map(|i| record(i, true, 100 * 1024)).collect();
        relay(&bus, &records).await;
        assert_eq!(*bus.calls.lock().unwrap(), vec![2, 2, 2]);
    }

    fn published_ids(bus: &MemoryBus) -> Vec<String> {
        bus.published
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_id.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_briefly_refused_entry_is_sent_again_and_nothing_is_published_twice() {
        let bus = MemoryBus {
            refuse: vec!["E13".into()],
            times: 2,
            ..Default::default()
        };
        let records: Vec<EventRecord> = (1..=20).map(|i| record(i, true, 10)).collect();
        let response = relay(&bus, &records).await;
        assert!(response.batch_item_failures.is_empty());
        let mut ids = published_ids(&bus);
        assert_eq!(ids.len(), 20, "each published exactly once: {ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20);
        assert_eq!(
            *bus.calls.lock().unwrap(),
            vec![10, 10, 1, 1],
            "only the refused entry was resent"
        );
    }

    #[tokio::test]
    async fn an_entry_refused_for_good_stops_the_batch_at_its_sequence_number() {
        let bus = MemoryBus {
            refuse: vec!["E13".into()],
            times: u32::MAX,
            ..Default::default()
        };
        let records: Vec<EventRecord> = (1..=30).map(|i| record(i, true, 10)).collect();
        let response = relay(&bus, &records).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("000013")
        );
        // The third chunk was never attempted; E13's chunk-mates went out once each.
        let ids = published_ids(&bus);
        assert_eq!(ids.len(), 19);
        assert!(!ids.contains(&"E21".to_owned()));
        assert_eq!(*bus.calls.lock().unwrap(), vec![10, 10, 1, 1, 1]);
    }

    #[tokio::test]
    async fn an_unparsable_outbox_item_fails_at_itself_after_publishing_what_precedes() {
        let bus = MemoryBus::default();
        let mut records: Vec<EventRecord> = (1..=4).map(|i| record(i, true, 10)).collect();
        records[2].change.new_image.remove("detail");
        let response = relay(&bus, &records).await;
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("000003")
        );
        assert_eq!(bus.published.lock().unwrap().len(), 2);
    }
}
