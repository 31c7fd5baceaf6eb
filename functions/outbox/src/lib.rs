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
//!
//! Every item the bus accepted is marked `published_at` (one transaction per chunk), which
//! also starts its retention ([`shared::outbox`]). What the relay could not publish is
//! therefore never lost when the mapping gives up on a batch (after its retries, or an
//! outage of the bus longer than them): the items stay unmarked, and
//! `commerce-ops republish` publishes them. An outbox item that does not parse cannot
//! block the events behind it: it is logged, left unmarked for the operator, and the
//! relay goes on.

pub mod bus;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use shared::outbox::{OUTBOX_RECORD_TYPE, OutboxRecord};
use std::collections::HashMap;
use std::future::Future;

/// PutEvents takes at most this many entries.
pub const MAX_ENTRIES: usize = 10;
/// PutEvents takes at most 256 KB; we keep a margin for the size formula's details.
pub const MAX_REQUEST_BYTES: usize = 250 * 1024;
/// How often refused entries are sent again within one invocation
/// (after [`shared::retry::BUS_RESEND`]'s pauses).
const RESEND_ATTEMPTS: u32 = 3;

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
    /// The correlation id of the request that caused the event (from the envelope's
    /// metadata), for the log: an order's events are found by it.
    pub correlation_id: String,
}

impl BusEntry {
    /// The entry of an outbox item.
    pub fn of(record: OutboxRecord) -> Result<Self, String> {
        let time = chrono::DateTime::parse_from_rfc3339(&record.occurred_at)
            .map_err(|e| format!("occurred_at: {e}"))?
            .to_utc();
        Ok(BusEntry {
            correlation_id: correlation_of(&record.detail),
            source: record.source,
            detail_type: record.detail_type,
            detail: record.detail,
            time,
            event_id: record.event_id,
        })
    }

    /// The entry's size as EventBridge counts it toward the request limit.
    pub fn size(&self) -> usize {
        14 + self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// The envelope's `metadata.correlation_id`, or empty when the detail has none (the relay
/// publishes what the outbox holds either way).
fn correlation_of(detail: &str) -> String {
    serde_json::from_str::<serde_json::Value>(detail)
        .ok()
        .and_then(|d| d["metadata"]["correlation_id"].as_str().map(str::to_owned))
        .unwrap_or_default()
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

/// An outbox item to mark once the bus accepted it: its table and key.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRef {
    /// The table (from the stream record's source ARN).
    pub table: String,
    /// The item's key.
    pub key: HashMap<String, AttributeValue>,
}

/// Marking outbox items published, as the relay needs it.
pub trait OutboxMarks: Send + Sync {
    /// Marks `items` published now.
    fn mark_published(
        &self,
        items: &[ItemRef],
    ) -> impl Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send;
}

/// The table of a DynamoDB stream ARN (`arn:...:table/<name>/stream/<label>`).
pub fn table_of_stream(arn: &str) -> Option<&str> {
    let rest = arn.split_once(":table/")?.1;
    Some(rest.split_once("/stream/").map_or(rest, |(t, _)| t))
}

fn item_ref(record: &EventRecord) -> Option<ItemRef> {
    let table = table_of_stream(record.event_source_arn.as_deref()?)?.to_owned();
    let key: HashMap<String, AttributeValue> = record.change.keys.clone().into();
    Some(ItemRef { table, key })
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
        .and_then(BusEntry::of);
    Some(parsed)
}

fn failure(sequence_number: Option<&String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut item = DynamoDbBatchItemFailure::default();
    item.item_identifier = sequence_number.cloned();
    response.batch_item_failures.push(item);
    response
}

/// Publishes the outbox items of `records` in order and marks them; see the module doc.
pub async fn relay(
    bus: &impl EventBus,
    marks: &impl OutboxMarks,
    records: &[EventRecord],
) -> DynamoDbEventResponse {
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for record in records {
        let seq = record.change.sequence_number.as_ref();
        match outbox_entry(record) {
            None => continue,
            Some(Ok(entry)) => pending.push(Pending {
                seq,
                entry,
                item: item_ref(record),
            }),
            Some(Err(reason)) => {
                // Ours to fix, not a reason to hold back the events behind it: it stays
                // unmarked, and `commerce-ops republish` reports it.
                tracing::error!(
                    sequence_number = ?seq,
                    table = ?item_ref(record).map(|i| i.table),
                    %reason,
                    "unpublishable outbox item: passed over, left unmarked for the operator"
                );
            }
        }
    }
    publish_in_order(bus, marks, &pending)
        .await
        .unwrap_or_default()
}

/// An outbox item waiting for the bus.
struct Pending<'a> {
    seq: Option<&'a String>,
    entry: BusEntry,
    item: Option<ItemRef>,
}

/// Marks what the bus accepted; a failed mark only means the item may be published again
/// by `commerce-ops republish` (consumers dedupe by event id).
async fn mark(marks: &impl OutboxMarks, accepted: &[&Pending<'_>]) {
    let items: Vec<ItemRef> = accepted.iter().filter_map(|p| p.item.clone()).collect();
    if items.is_empty() {
        return;
    }
    if let Err(err) = marks.mark_published(&items).await {
        tracing::warn!(error = %err, items = items.len(), "published but not marked: commerce-ops republish may publish them again");
    }
}

/// Consecutive chunks of entries of these sizes for one `PutEvents` each: at most
/// [`MAX_ENTRIES`] and [`MAX_REQUEST_BYTES`] (an entry larger than that goes alone, and
/// the bus refuses it).
pub fn chunk_ranges(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < sizes.len()
            && end - start < MAX_ENTRIES
            && (end == start || bytes + sizes[end] <= MAX_REQUEST_BYTES)
        {
            bytes += sizes[end];
            end += 1;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Publishes in chunks; `Some(failure)` names the first record not published.
async fn publish_in_order(
    bus: &impl EventBus,
    marks: &impl OutboxMarks,
    pending: &[Pending<'_>],
) -> Option<DynamoDbEventResponse> {
    let sizes: Vec<usize> = pending.iter().map(|p| p.entry.size()).collect();
    for range in chunk_ranges(&sizes) {
        let chunk = &pending[range];
        // Indices (into `chunk`) not yet accepted by the bus.
        let mut remaining: Vec<usize> = (0..chunk.len()).collect();
        for attempt in 0..=RESEND_ATTEMPTS {
            if attempt > 0 {
                shared::retry::BUS_RESEND.wait(attempt).await;
            }
            let entries: Vec<BusEntry> =
                remaining.iter().map(|&i| chunk[i].entry.clone()).collect();
            match bus.put_events(&entries).await {
                Ok(results) => {
                    let mut refused = Vec::new();
                    for (k, &i) in remaining.iter().enumerate() {
                        let entry = &chunk[i].entry;
                        match results.get(k) {
                            Some(None) => {
                                tracing::info!(event_id = %entry.event_id, detail_type = %entry.detail_type, correlation_id = %entry.correlation_id, "published");
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
        let accepted: Vec<&Pending<'_>> = (0..chunk.len())
            .filter(|i| !remaining.contains(i))
            .map(|i| &chunk[i])
            .collect();
        mark(marks, &accepted).await;
        if let Some(&first) = remaining.first() {
            return Some(failure(chunk[first].seq));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn republish_leaves_what_consumers_no_longer_remember_unless_forced() {
        let now = shared::time::now();
        let young_until = now - chrono::Duration::seconds(60);
        let remembered_from = Some(now - chrono::Duration::hours(24));
        let at = |hours: i64| now - chrono::Duration::hours(hours);
        assert_eq!(age_of(now, young_until, remembered_from), Age::Young);
        assert_eq!(age_of(at(1), young_until, remembered_from), Age::Due);
        assert_eq!(age_of(at(23), young_until, remembered_from), Age::Due);
        assert_eq!(age_of(at(25), young_until, remembered_from), Age::TooOld);
        assert_eq!(age_of(at(25), young_until, None), Age::Due, "forced");
        assert_eq!(CONSUMER_MEMORY.as_secs(), 24 * 3600);
    }

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

    /// Marks in memory: the keys marked, per call.
    #[derive(Default)]
    struct MemoryMarks {
        marked: Mutex<Vec<Vec<String>>>,
    }

    impl OutboxMarks for MemoryMarks {
        async fn mark_published(
            &self,
            items: &[ItemRef],
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.marked.lock().unwrap().push(
                items
                    .iter()
                    .map(|i| {
                        assert_eq!(i.table, "t");
                        i.key["sku"].as_s().unwrap().clone()
                    })
                    .collect(),
            );
            Ok(())
        }
    }

    impl MemoryMarks {
        fn all(&self) -> Vec<String> {
            self.marked
                .lock()
                .unwrap()
                .iter()
                .flatten()
                .cloned()
                .collect()
        }
    }

    #[test]
    fn the_table_comes_from_the_stream_arn() {
        assert_eq!(
            table_of_stream(
                "arn:aws:dynamodb:us-east-1:123456789012:table/commerce-orders/stream/2026-12-02T00:00:00.000"
            ),
            Some("commerce-orders")
        );
        assert_eq!(
            table_of_stream("arn:aws:kinesis:us-east-1:1:stream/x"),
            None
        );
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
                "Keys": {"sku": {"S": format!("outbox#E{seq}")}},
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
        let marks = MemoryMarks::default();
        let records: Vec<EventRecord> = (1..=25).map(|i| record(i, i % 5 != 0, 10)).collect();
        let response = relay(&bus, &marks, &records).await;
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
        let marked: Vec<String> = expected.iter().map(|e| format!("outbox#{e}")).collect();
        assert_eq!(marks.all(), marked, "every published item is marked");
        assert_eq!(marks.marked.lock().unwrap().len(), 2, "one mark per chunk");
    }

    #[tokio::test]
    async fn chunks_stay_under_the_request_size() {
        let bus = MemoryBus::default();
        let marks = MemoryMarks::default();
        let records: Vec<EventRecord> = (1..=6).map(|i| record(i, true, 100 * 1024)).collect();
        relay(&bus, &marks, &records).await;
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
        let marks = MemoryMarks::default();
        let records: Vec<EventRecord> = (1..=20).map(|i| record(i, true, 10)).collect();
        let response = relay(&bus, &marks, &records).await;
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
        let marks = MemoryMarks::default();
        let records: Vec<EventRecord> = (1..=30).map(|i| record(i, true, 10)).collect();
        let response = relay(&bus, &marks, &records).await;
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
        let marked = marks.all();
        assert_eq!(
            marked.len(),
            19,
            "what the bus accepted is marked, nothing else"
        );
        assert!(!marked.contains(&"outbox#E13".to_owned()));
    }

    #[tokio::test]
    async fn an_unparsable_outbox_item_is_passed_over_unmarked_and_the_events_behind_it_go_out() {
        let bus = MemoryBus::default();
        let marks = MemoryMarks::default();
        let mut records: Vec<EventRecord> = (1..=4).map(|i| record(i, true, 10)).collect();
        records[2].change.new_image.remove("detail");
        let response = relay(&bus, &marks, &records).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "it does not block the shard"
        );
        assert_eq!(published_ids(&bus), vec!["E1", "E2", "E4"]);
        assert_eq!(
            marks.all(),
            vec!["outbox#E1", "outbox#E2", "outbox#E4"],
            "left unmarked, so commerce-ops republish reports it"
        );
    }
}

/// What [`republish`] found in one table and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepublishReport {
    /// The table.
    pub table: String,
    /// Outbox items never marked published, older than the cut-off.
    pub unpublished: usize,
    /// Of those, how many the bus accepted now (0 on a dry run).
    pub published: usize,
    /// Items that do not parse (key, reason): an operator must look at them.
    pub unpublishable: Vec<(String, String)>,
    /// Items the bus refused again (publish later).
    pub refused: usize,
    /// Items older than the consumers' dedupe window, left unpublished (without `force`):
    /// a consumer that handled one before would no longer know it and act again.
    pub too_old: usize,
}

/// What [`republish`] does with an unpublished item that happened at `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Younger than the cut-off: most likely still on its way through the stream.
    Young,
    /// To publish.
    Due,
    /// Older than the consumers' dedupe window: published only when forced.
    TooOld,
}

/// The decision for an item of `time`, with the cut-off `young_until` and the oldest time a
/// consumer still remembers, `remembered_from` (`None`: forced, any age).
pub fn age_of(
    time: shared::time::Timestamp,
    young_until: shared::time::Timestamp,
    remembered_from: Option<shared::time::Timestamp>,
) -> Age {
    if time > young_until {
        Age::Young
    } else if remembered_from.is_some_and(|from| time < from) {
        Age::TooOld
    } else {
        Age::Due
    }
}

/// How long a consumer remembers an event it handled: its dedupe record's retention
/// ([`shared::idempotency::RETENTION_SECS`], 24 hours). An event published again later
/// is new to it.
pub const CONSUMER_MEMORY: std::time::Duration =
    std::time::Duration::from_secs(shared::idempotency::RETENTION_SECS.unsigned_abs());

/// Publishes, oldest first, the outbox items of `table` that were never marked published
/// and are older than `older_than` (younger ones are most likely on their way through
/// the stream), and marks those the bus accepted. Consumers dedupe by event id, so an
/// item the relay published but could not mark is harmless to publish again, within the
/// consumers' memory ([`CONSUMER_MEMORY`]): older items are left and counted (`too_old`)
/// unless `force`, since a customer would be notified again.
///
/// It scans the table (filtered server-side to unpublished outbox items): an operator's
/// tool for after an incident, not a hot path.
pub async fn republish(
    ddb: &aws_sdk_dynamodb::Client,
    bus: &impl EventBus,
    marks: &impl OutboxMarks,
    table: &str,
    older_than: std::time::Duration,
    force: bool,
    dry_run: bool,
) -> Result<RepublishReport, Box<dyn std::error::Error + Send + Sync>> {
    let now = shared::time::now();
    let cutoff =
        now - chrono::Duration::from_std(older_than).unwrap_or_else(|_| chrono::Duration::zero());
    let remembered_from = (!force).then(|| {
        now - chrono::Duration::from_std(CONSUMER_MEMORY)
            .unwrap_or_else(|_| chrono::Duration::zero())
    });
    let mut report = RepublishReport {
        table: table.to_owned(),
        ..Default::default()
    };
    let mut found: Vec<(BusEntry, ItemRef)> = Vec::new();
    let mut pages = ddb
        .scan()
        .table_name(table)
        .consistent_read(true)
        // Items that carry an expiry without a publication mark predate the marks (the
        // relay then set the expiry at write): they were the relay's to publish.
        .filter_expression(
            "#type = :outbox AND attribute_not_exists(#published) AND attribute_not_exists(#expires)",
        )
        .expression_attribute_names("#type", "record_type")
        .expression_attribute_names("#published", shared::outbox::PUBLISHED_AT)
        .expression_attribute_names("#expires", shared::outbox::EXPIRES_AT)
        .expression_attribute_values(":outbox", AttributeValue::S(OUTBOX_RECORD_TYPE.into()))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item?;
        // The key is the attribute holding `outbox#<event id>`.
        let key: HashMap<String, AttributeValue> = item
            .iter()
            .filter(|(_, v)| v.as_s().is_ok_and(|s| s.starts_with("outbox#")))
            .take(1)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key_text = key
            .values()
            .next()
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let parsed = shared::dynamo::from_item::<OutboxRecord>(item)
            .map_err(|e| e.to_string())
            .and_then(BusEntry::of);
        match parsed {
            Ok(_) if key.is_empty() => {}
            Ok(entry) => match age_of(entry.time, cutoff, remembered_from) {
                Age::Young => {}
                Age::TooOld => report.too_old += 1,
                Age::Due => found.push((
                    entry,
                    ItemRef {
                        table: table.to_owned(),
                        key,
                    },
                )),
            },
            Err(reason) => report.unpublishable.push((key_text, reason)),
        }
    }
    found.sort_by_key(|(e, _)| (e.time, e.event_id.clone()));
    report.unpublished = found.len();
    if dry_run {
        return Ok(report);
    }
    let sizes: Vec<usize> = found.iter().map(|(e, _)| e.size()).collect();
    for range in chunk_ranges(&sizes) {
        let chunk = &found[range];
        let entries: Vec<BusEntry> = chunk.iter().map(|(e, _)| e.clone()).collect();
        let results = match bus.put_events(&entries).await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(error = %err, "PutEvents failed");
                report.refused += chunk.len();
                continue;
            }
        };
        let accepted: Vec<ItemRef> = chunk
            .iter()
            .zip(results.iter().map(Some).chain(std::iter::repeat(None)))
            .filter(|(_, r)| matches!(r, Some(None)))
            .map(|((_, i), _)| i.clone())
            .collect();
        report.refused += chunk.len() - accepted.len();
        report.published += accepted.len();
        if !accepted.is_empty()
            && let Err(err) = marks.mark_published(&accepted).await
        {
            tracing::warn!(error = %err, "republished but not marked");
        }
    }
    Ok(report)
}
