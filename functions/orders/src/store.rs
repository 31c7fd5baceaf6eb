//! The DynamoDB adapter of [`OrderStore`]: the `orders` table keyed by `order_id`, the
//! `by_user` index (user id, order id; ULIDs sort by time) for a customer's orders
//! newest first, and the table's outbox.

use crate::domain::Order;
use crate::{Intake, OrderStore};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shared::config::{self, ConfigError};
use shared::dynamo::{Item, StoreError, from_item, to_item};
use shared::idempotency::Idempotency;
use shared::outbox::Outbox;
use shared::pagination::PageRequest;

/// The index of a customer's orders.
pub const BY_USER_INDEX: &str = "by_user";

/// Orders in the `orders` table.
#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: Client,
    table: String,
    outbox: Outbox,
    idempotency: Idempotency,
}

impl DynamoOrderStore {
    /// A store on `table`, completing idempotency claims in `idempotency`.
    pub fn new(client: Client, table: impl Into<String>, idempotency: Idempotency) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "order_id"),
            table,
            idempotency,
        }
    }

    /// The store a Lambda uses: `ORDERS_TABLE` and `IDEMPOTENCY_TABLE`.
    pub async fn from_env(client: Client) -> Result<Self, ConfigError> {
        let table = config::required("ORDERS_TABLE")?;
        let idempotency = Idempotency::new(client.clone(), config::required("IDEMPOTENCY_TABLE")?);
        Ok(Self::new(client, table, idempotency))
    }

    /// The idempotency store the handlers claim keys in.
    pub fn idempotency(&self) -> &Idempotency {
        &self.idempotency
    }
}

impl OrderStore for DynamoOrderStore {
    async fn insert(&self, order: &Order, intake: Intake<'_>) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(order)?))
            .condition_expression("attribute_not_exists(order_id)")
            .build()
            .map_err(|e| StoreError::request("build order put", e))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.outbox.put(intake.event)?,
        ];
        if let Some((claimed, response)) = intake.claim {
            items.push(
                self.idempotency
                    .completion(claimed, response, order.created_at)?,
            );
        }
        // Scoped by the order id; the token is derived from what is written (`shared::dynamo::transact`).
        let outcome = shared::dynamo::transact(&self.client, items, Some(&order.order_id)).await?;
        Ok(outcome.committed())
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("order_id", AttributeValue::S(order_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::request("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn list_for_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<(Vec<Order>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_USER_INDEX)
            .key_condition_expression("user_id = :u")
            .expression_attribute_values(":u", AttributeValue::S(user_id.to_owned()))
            .scan_index_forward(false)
            .limit(page.limit)
            .set_exclusive_start_key(page.cursor.clone())
            .send()
            .await
            .map_err(|e| StoreError::request("Query", e))?;
        let orders = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Order>, _>>()?;
        Ok((orders, out.last_evaluated_key))
    }
}
