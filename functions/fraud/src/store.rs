//! The DynamoDB adapter: the `fraud` table keyed by `id`, which holds three kinds of item
//! told apart by `record_type`:
//!
//! | `id` | `record_type` | what |
//! |---|---|---|
//! | `user#<user_id>` | `user_state` | what the scorer knows of a user ([`UserState`], JSON in `state`), with its `state_version` |
//! | `<order_id>` | `assessment` | an order's assessment, written once |
//! | `outbox#<event_id>` | `outbox` | an event for the relay ([`shared::outbox`]) |
//!
//! A batch reads the states of its users in one `BatchGetItem` and writes each user's new
//! state, only if its version is still the one read, together with the assessments and
//! events of that user's new orders, in conditional `TransactWriteItems` of up to 100 items.

use crate::domain::Assessment;
use crate::features::UserState;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shared::dynamo::{Item, StoreError, Transaction, from_item, to_item};
use shared::ids::{OrderId, UserId};
use shared::outbox::Outbox;
use std::collections::HashMap;

/// `record_type` of assessments.
pub const ASSESSMENT_RECORD_TYPE: &str = "assessment";
/// `record_type` of user states.
pub const USER_STATE_RECORD_TYPE: &str = "user_state";
/// A user's state outlives the user's last transaction by this long (DynamoDB TTL): its
/// running statistics of amounts are what tells a customer's usual from an outlier.
pub const USER_STATE_RETENTION_SECS: i64 = 400 * 24 * 3600;
/// The most items one `TransactWriteItems` may hold.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// The most keys one `BatchGetItem` may ask for.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// How often a batch read is repeated for keys DynamoDB left unprocessed.
const UNPROCESSED_ATTEMPTS: u32 = 4;

/// Assessments, user states and the outbox in the `fraud` table.
#[derive(Debug, Clone)]
pub struct FraudStore {
    client: Client,
    table: String,
    outbox: Outbox,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The key of a user's state.
pub fn state_key(user: &UserId) -> String {
    format!("user#{user}")
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

    /// The states of `users` (a user never scored has the default state, version 0), in one
    /// consistent `BatchGetItem` per 100 users. A stored state that cannot be read fails
    /// that user alone (its records are retried, and end in the failure queue).
    pub async fn states(
        &self,
        users: &[&UserId],
    ) -> Result<HashMap<UserId, Result<UserState, String>>, StoreError> {
        let mut states: HashMap<UserId, Result<UserState, String>> = users
            .iter()
            .map(|u| ((*u).clone(), Ok(UserState::default())))
            .collect();
        let by_key: HashMap<String, &UserId> = users.iter().map(|u| (state_key(u), *u)).collect();
        for item in self.items(users.iter().map(|u| state_key(u))).await? {
            let key = match item.get("id") {
                Some(AttributeValue::S(k)) => k.clone(),
                _ => continue,
            };
            if let Some(user) = by_key.get(&key) {
                states.insert((*user).clone(), state_of(item));
            }
        }
        Ok(states)
    }

    /// The stored assessments of `orders`, in one consistent `BatchGetItem` per 100 orders:
    /// what a redelivered record is answered from.
    pub async fn assessments(
        &self,
        orders: &[&OrderId],
    ) -> Result<HashMap<OrderId, Assessment>, StoreError> {
        let mut found = HashMap::new();
        for item in self.items(orders.iter().map(|o| o.to_string())).await? {
            match assessment_of(item).transpose() {
                Ok(Some(assessment)) => {
                    found.insert(assessment.order_id.clone(), assessment);
                }
                Ok(None) => {}
                // Left out: its record fails alone ("not readable"), and is retried.
                Err(e) => {
                    tracing::error!(error = %shared::problem::error_chain(&e), "an assessment does not parse")
                }
            }
        }
        Ok(found)
    }

    /// The items at `ids` (distinct), in one consistent `BatchGetItem` per 100.
    async fn items(&self, ids: impl Iterator<Item = String>) -> Result<Vec<Item>, StoreError> {
        let ids: Vec<String> = ids.collect();
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH_GET_KEYS) {
            let keys = chunk
                .iter()
                .map(|id| shared::dynamo::key("id", id.as_str()))
                .collect();
            found.extend(
                shared::dynamo::batch_get(
                    &self.client,
                    &self.table,
                    keys,
                    None,
                    UNPROCESSED_ATTEMPTS,
                )
                .await?,
            );
        }
        Ok(found)
    }

    /// The write of `user`'s new `state`, which holds only if the stored state is still the
    /// one read: version `read_version` (0: none stored yet).
    pub fn state_put(
        &self,
        user: &UserId,
        state: &UserState,
        read_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let json =
            serde_json::to_string(state).map_err(|e| StoreError::local("serialize state", e))?;
        let last_secs = state
            .last_ms
            .map_or_else(|| shared::time::now().timestamp(), |ms| ms / 1000);
        let put = Put::builder()
            .table_name(&self.table)
            .item("id", s(state_key(user)))
            .item("record_type", s(USER_STATE_RECORD_TYPE))
            .item("user_id", s(user.as_str()))
            .item("state", s(json))
            .item(
                "state_version",
                AttributeValue::N(state.version.to_string()),
            )
            .item(
                "expires_at",
                AttributeValue::N((last_secs + USER_STATE_RETENTION_SECS).to_string()),
            );
        let put = if read_version == 0 {
            put.condition_expression("attribute_not_exists(id)")
        } else {
            put.condition_expression("state_version = :read")
                .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
        }
        .build()
        .map_err(|e| StoreError::local("build state put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The write of a new assessment, which holds only if the order has none.
    pub fn assessment_put(&self, assessment: &Assessment) -> Result<TransactWriteItem, StoreError> {
        let mut item = to_item(assessment)?;
        item.insert("id".to_owned(), s(assessment.order_id.as_str()));
        item.insert("record_type".to_owned(), s(ASSESSMENT_RECORD_TYPE));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| StoreError::local("build assessment put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes `items` (at most [`MAX_TRANSACTION_ITEMS`]) as one transaction.
    pub async fn commit(&self, items: Vec<TransactWriteItem>) -> Result<Transaction, StoreError> {
        shared::dynamo::transact(&self.client, items, None).await
    }
}

/// A user's state as stored, with its version.
fn state_of(item: Item) -> Result<UserState, String> {
    let Some(AttributeValue::S(json)) = item.get("state") else {
        return Err("the stored state has no `state`".into());
    };
    let mut state: UserState =
        serde_json::from_str(json).map_err(|e| format!("the stored state does not parse: {e}"))?;
    state.version = match item.get("state_version") {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|e| format!("the stored state_version {n} does not parse: {e}"))?,
        _ => return Err("the stored state has no `state_version`".into()),
    };
    Ok(state)
}

/// The assessment in `item`, or `None` when the item is of another kind.
fn assessment_of(item: Item) -> Option<Result<Assessment, StoreError>> {
    let is_assessment = matches!(
        item.get("record_type"),
        Some(AttributeValue::S(t)) if t == ASSESSMENT_RECORD_TYPE
    );
    is_assessment.then(|| from_item(item))
}
