//! The DynamoDB adapter: the `fraud` table keyed by `id`, which holds three kinds of item
//! told apart by `record_type`:
//!
//! | `id` | `record_type` | what |
//! |---|---|---|
//! | `<order_id>` | `assessment` | an order's assessment, written once |
//! | `velocity#<user_id>#<YYYYMMDDHH>` | `velocity` | a user's orders in one UTC hour (`order_count`), expiring a day after the hour |
//! | `outbox#<event_id>` | `outbox` | an event for the relay ([`shared::outbox`]) |

use crate::domain::Assessment;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DurationRound, TimeDelta};
use shared::dynamo::{Item, StoreError, Transaction, from_item, to_item};
use shared::ids::UserId;
use shared::outbox::Outbox;
use shared::time::Timestamp;

/// `record_type` of assessments.
pub const ASSESSMENT_RECORD_TYPE: &str = "assessment";
/// `record_type` of velocity counters.
pub const VELOCITY_RECORD_TYPE: &str = "velocity";
/// A velocity counter lives this long after its hour ends (DynamoDB TTL), for looking at.
pub const VELOCITY_RETENTION_SECS: i64 = 24 * 3600;
/// How often a batch read is repeated for keys DynamoDB left unprocessed.
const UNPROCESSED_ATTEMPTS: u32 = 4;

/// One user's counter of orders in one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VelocityBucket {
    /// The item's `id`: `velocity#<user_id>#<YYYYMMDDHH>`.
    pub key: String,
    /// The user.
    pub user_id: UserId,
    /// The hour, `YYYYMMDDHH` (UTC).
    pub hour: String,
    /// DynamoDB TTL, epoch seconds.
    pub expires_at: i64,
}

impl VelocityBucket {
    /// The bucket of `user_id`'s orders in the hour of `at`.
    pub fn of(user_id: &UserId, at: Timestamp) -> Self {
        let start = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
        let hour = start.format("%Y%m%d%H").to_string();
        Self {
            key: format!("velocity#{user_id}#{hour}"),
            user_id: user_id.clone(),
            hour,
            expires_at: start.timestamp() + 3600 + VELOCITY_RETENTION_SECS,
        }
    }
}

/// What the table holds for an order about to be scored (one consistent batch read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    /// The order's assessment, when it was scored before.
    pub assessment: Option<Assessment>,
    /// The user's orders counted in the bucket so far (this one not yet).
    pub orders_counted: u64,
}

/// How recording an assessment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The assessment, the counter increment and the event were written together.
    Recorded,
    /// The order had an assessment already; nothing was written.
    AlreadyAssessed,
    /// The counter changed since it was read (another order of the same user was scored
    /// meanwhile); nothing was written, read and score again.
    CounterMoved,
}

/// Assessments and velocity counters in the `fraud` table.
#[derive(Debug, Clone)]
pub struct FraudStore {
    client: Client,
    table: String,
    outbox: Outbox,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl FraudStore {
    /// The store of `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "id"),
            table,
        }
    }

    /// The store a Lambda uses: `FRAUD_TABLE`, on the function's SDK settings.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        let table = shared::config::required("FRAUD_TABLE")?;
        Ok(Self::new(shared::aws::dynamodb(sdk), table))
    }

    /// The outbox of the fraud table.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The assessment of an order (one strongly consistent read).
    pub async fn assessment(&self, order_id: &str) -> Result<Option<Assessment>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::request("GetItem", e))?;
        out.item.and_then(assessment_of).transpose()
    }

    /// The order's assessment and the bucket's count, in one consistent `BatchGetItem`.
    pub async fn prior(
        &self,
        order_id: &str,
        bucket: &VelocityBucket,
    ) -> Result<Prior, StoreError> {
        let keys = vec![
            shared::dynamo::key("id", order_id),
            shared::dynamo::key("id", bucket.key.as_str()),
        ];
        let items =
            shared::dynamo::batch_get(&self.client, &self.table, keys, None, UNPROCESSED_ATTEMPTS)
                .await?;
        let mut prior = Prior {
            assessment: None,
            orders_counted: 0,
        };
        for item in items {
            let id = item.get("id").and_then(|v| v.as_s().ok()).cloned();
            if id.as_deref() == Some(order_id) {
                prior.assessment = assessment_of(item).transpose()?;
            } else if id.as_deref() == Some(bucket.key.as_str()) {
                prior.orders_counted = item
                    .get("order_count")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
            }
        }
        Ok(prior)
    }

    /// Writes the assessment (only if the order has none), adds one to the bucket (only if
    /// it still holds `counted`, the count the score used) and records `event`, in one
    /// transaction: an order is assessed, counted and announced once, or not at all.
    pub async fn record(
        &self,
        assessment: &Assessment,
        bucket: &VelocityBucket,
        counted: u64,
        event: TransactWriteItem,
    ) -> Result<RecordOutcome, StoreError> {
        let mut item = to_item(assessment)?;
        item.insert("id".to_owned(), s(assessment.order_id.as_str()));
        item.insert("record_type".to_owned(), s(ASSESSMENT_RECORD_TYPE));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| StoreError::local("build assessment put", e))?;

        let update = Update::builder()
            .table_name(&self.table)
            .key("id", s(&bucket.key))
            .update_expression(
                "SET #rt = :rt, #user = :user, #hour = :hour, #exp = :exp ADD #n :one",
            )
            .expression_attribute_names("#rt", "record_type")
            .expression_attribute_names("#user", "user_id")
            .expression_attribute_names("#hour", "hour")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_names("#n", "order_count")
            .expression_attribute_values(":rt", s(VELOCITY_RECORD_TYPE))
            .expression_attribute_values(":user", s(bucket.user_id.as_str()))
            .expression_attribute_values(":hour", s(&bucket.hour))
            .expression_attribute_values(":exp", AttributeValue::N(bucket.expires_at.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        let update = if counted == 0 {
            update
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", "id")
        } else {
            update
                .condition_expression("#n = :counted")
                .expression_attribute_values(":counted", AttributeValue::N(counted.to_string()))
        }
        .build()
        .map_err(|e| StoreError::local("build velocity update", e))?;

        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
            event,
        ];
        match shared::dynamo::transact(&self.client, items, None).await? {
            Transaction::Committed => Ok(RecordOutcome::Recorded),
            outcome if outcome.condition_failed(0) => Ok(RecordOutcome::AlreadyAssessed),
            // The counter's condition, or a conflict with another scorer on it: read again.
            Transaction::Cancelled(_) => Ok(RecordOutcome::CounterMoved),
        }
    }
}

/// The assessment in `item`, or `None` when the item is of another kind.
fn assessment_of(item: Item) -> Option<Result<Assessment, StoreError>> {
    let is_assessment = matches!(
        item.get("record_type"),
        Some(AttributeValue::S(t)) if t == ASSESSMENT_RECORD_TYPE
    );
    is_assessment.then(|| from_item(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_utc_hours_that_expire_a_day_after_the_hour() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T19:59:59.999+01:00")
            .unwrap()
            .to_utc();
        let b = VelocityBucket::of(&"u-1".parse().unwrap(), at);
        assert_eq!(b.key, "velocity#u-1#2026112118");
        assert_eq!(b.hour, "2026112118");
        let hour_start = chrono::DateTime::parse_from_rfc3339("2026-11-21T18:00:00Z")
            .unwrap()
            .timestamp();
        assert_eq!(b.expires_at, hour_start + 3600 + 24 * 3600);
        let next = at + TimeDelta::milliseconds(1);
        assert_eq!(
            VelocityBucket::of(&"u-1".parse().unwrap(), next).hour,
            "2026112119"
        );
    }
}
