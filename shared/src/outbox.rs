//! The transactional outbox: an event to publish is written as an item of the service's
//! own table, in the same DynamoDB transaction as the state change it describes. The
//! relay (`outbox-relay`) reads the table's stream and publishes each outbox item to the
//! bus, so no event is lost when a function dies between its write and its publish.
//!
//! An outbox item is marked `published_at` once the bus accepted it, and only then gets
//! its expiry: an item never published stays, visible to `commerce-ops republish`
//! (README: "Replay and redrive"), however long the relay or the bus was stuck.

use crate::dynamo::{StoreError, to_item};
use crate::events::{DomainEvent, Envelope};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

/// `record_type` of outbox items, which the relay looks for among stream records.
pub const OUTBOX_RECORD_TYPE: &str = "outbox";
/// Outbox items expire (DynamoDB TTL) a day after they were published; the relay
/// publishes them within seconds, the rest of the day is for looking at them. An item
/// not yet published has no expiry.
pub const OUTBOX_RETENTION_SECS: i64 = 24 * 3600;
/// The attribute set when the bus accepted the item (RFC 3339).
pub const PUBLISHED_AT: &str = "published_at";
/// The TTL attribute of the service tables.
pub const EXPIRES_AT: &str = "expires_at";

/// An event waiting to be published, as stored and as the relay reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Always [`OUTBOX_RECORD_TYPE`]; tells outbox items from the table's own items.
    pub record_type: String,
    /// The event's ULID (also in `detail`).
    pub event_id: String,
    /// EventBridge `source`.
    pub source: String,
    /// EventBridge `detail-type`.
    pub detail_type: String,
    /// EventBridge `detail`: the JSON envelope.
    pub detail: String,
    /// When the change happened, RFC 3339; the EventBridge event's `time`.
    pub occurred_at: String,
    /// When the bus accepted it (absent until then), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// DynamoDB TTL, epoch seconds: set when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl OutboxRecord {
    /// The record of an event.
    pub fn of<T: DomainEvent>(envelope: &Envelope<T>) -> Result<Self, StoreError> {
        let detail =
            serde_json::to_string(envelope).map_err(|e| StoreError::local("serialize event", e))?;
        Ok(Self {
            record_type: OUTBOX_RECORD_TYPE.to_owned(),
            event_id: envelope.metadata.event_id.clone(),
            source: T::SOURCE.to_owned(),
            detail_type: T::NAME.to_owned(),
            detail,
            occurred_at: envelope
                .metadata
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            published_at: None,
            expires_at: None,
        })
    }
}

/// The update that marks an outbox item published at `at` and starts its retention.
/// `key` is the item's key; the condition keeps a mark from creating an item.
pub fn mark_published(
    table: &str,
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<TransactWriteItem, StoreError> {
    use aws_sdk_dynamodb::types::{AttributeValue, Update};
    let key_name = key.keys().next().cloned().ok_or_else(|| {
        StoreError::local(
            "mark published",
            std::io::Error::other("an item key without attributes"),
        )
    })?;
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression("SET #published = :at, #expires = :expires")
        .condition_expression("attribute_exists(#k) AND #type = :outbox")
        .expression_attribute_names("#published", PUBLISHED_AT)
        .expression_attribute_names("#expires", EXPIRES_AT)
        .expression_attribute_names("#k", key_name)
        .expression_attribute_names("#type", "record_type")
        .expression_attribute_values(
            ":at",
            AttributeValue::S(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        )
        .expression_attribute_values(
            ":expires",
            AttributeValue::N((at.timestamp() + OUTBOX_RETENTION_SECS).to_string()),
        )
        .expression_attribute_values(":outbox", AttributeValue::S(OUTBOX_RECORD_TYPE.into()))
        .build()
        .map_err(|e| StoreError::local("build outbox mark", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Writes outbox items into one table, whose hash key is `key_attribute`.
#[derive(Debug, Clone)]
pub struct Outbox {
    table: String,
    key_attribute: &'static str,
}

impl Outbox {
    /// The outbox of `table`.
    pub fn new(table: impl Into<String>, key_attribute: &'static str) -> Self {
        Self {
            table: table.into(),
            key_attribute,
        }
    }

    /// The transaction item that records `envelope` for publishing. Its key is
    /// `outbox#<event id>`, which no domain item can have.
    pub fn put<T: DomainEvent>(
        &self,
        envelope: &Envelope<T>,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put_record(&OutboxRecord::of(envelope)?)
    }

    /// [`Outbox::put`] of a record already made.
    pub fn put_record(&self, record: &OutboxRecord) -> Result<TransactWriteItem, StoreError> {
        let mut item = to_item(record)?;
        item.insert(
            self.key_attribute.to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(format!("outbox#{}", record.event_id)),
        );
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", self.key_attribute)
            .build()
            .map_err(|e| StoreError::local("build outbox put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Sku;
    use crate::events::StockAdjusted;

    #[test]
    fn a_mark_sets_the_publication_and_the_expiry_of_an_existing_outbox_item() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .to_utc();
        let key = [(
            "order_id".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S("outbox#E1".into()),
        )]
        .into();
        let item = mark_published("t", key, at).unwrap();
        let u = item.update().unwrap();
        assert_eq!(
            u.condition_expression(),
            Some("attribute_exists(#k) AND #type = :outbox")
        );
        let values = u.expression_attribute_values().unwrap();
        assert_eq!(values[":at"].as_s().unwrap(), "2026-12-02T10:00:00.000Z");
        assert_eq!(
            values[":expires"].as_n().unwrap(),
            &(at.timestamp() + OUTBOX_RETENTION_SECS).to_string()
        );
        assert_eq!(u.expression_attribute_names().unwrap()["#k"], "order_id");
    }

    #[test]
    fn outbox_items_carry_the_envelope_and_wait_unexpiring_until_published() {
        let sku = Sku::try_from("ABC".to_owned()).unwrap();
        let env = Envelope::new(
            StockAdjusted {
                sku,
                delta: 1,
                on_hand: 1,
                reserved: 0,
                available: 1,
                version: 2,
            },
            crate::time::now(),
            "c",
            None,
        );
        let record = OutboxRecord::of(&env).unwrap();
        assert_eq!(record.detail_type, "StockAdjusted");
        assert_eq!(record.source, "commerce.inventory");
        let back: Envelope<StockAdjusted> = serde_json::from_str(&record.detail).unwrap();
        assert_eq!(back, env);
        assert_eq!(record.expires_at, None, "an unpublished item never expires");
        assert_eq!(record.published_at, None);

        let item = Outbox::new("t", "sku").put(&env).unwrap();
        let put = item.put().unwrap();
        assert_eq!(
            put.item()["sku"].as_s().unwrap(),
            &format!("outbox#{}", record.event_id)
        );
        assert_eq!(put.item()["record_type"].as_s().unwrap(), "outbox");
    }
}
