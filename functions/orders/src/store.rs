//! The DynamoDB adapter of the orders table, the one place that knows its attribute and
//! index names: the `orders` table keyed by `order_id`, the `by_user` index (user id,
//! order id; ULIDs sort by time) for a customer's orders newest first, and the table's
//! outbox. It is the intake's [`OrderStore`] and the saga steps'
//! [`shared::step::Ledger`] (`crate::saga`).

use crate::domain::Order;
use crate::domain::OrderStatus;
use crate::{Intake, OrderStore};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shared::config::{self, ConfigError};
use shared::dynamo::{Item, StoreError, from_item, to_attribute, to_item};
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
    /// Where intake completes its idempotency claims (the API's functions only).
    idempotency: Option<Idempotency>,
}

/// A condition a transition adds to the guard on the status read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A hold replacing a review token: the stored attempt is still the one read (`None`:
    /// none was stored), and the new attempt comes after it.
    AttemptAfter(Option<u32>, u32),
}

impl DynamoOrderStore {
    /// A store on `table`, completing idempotency claims in `idempotency`.
    pub fn new(client: Client, table: impl Into<String>, idempotency: Idempotency) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "order_id"),
            table,
            idempotency: Some(idempotency),
        }
    }

    /// The store of every function that claims no idempotency keys (the read routes, the
    /// saga's steps and the routes that steer it): `ORDERS_TABLE` alone, the one variable
    /// their declaration gives them, on the function's SDK settings.
    pub fn claimless_from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required("ORDERS_TABLE")?;
        Ok(Self::without_idempotency(shared::aws::dynamodb(sdk), table))
    }

    /// A store on `table` that completes no idempotency claims.
    pub fn without_idempotency(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "order_id"),
            table,
            idempotency: None,
        }
    }

    /// The table's outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Moves `order` from its status to `next`, with `event` and extra `SET`s, in one
    /// transaction guarded by the status read. `Ok(false)`: the status changed meanwhile.
    pub async fn transition(
        &self,
        order: &Order,
        next: OrderStatus,
        extra: &[(&str, AttributeValue)],
        event: Option<TransactWriteItem>,
        guard: Option<Guard>,
    ) -> Result<bool, StoreError> {
        let also = match guard {
            None => None,
            // The attempt read is still the stored one, and this attempt is later.
            Some(Guard::AttemptAfter(None, _)) => {
                Some(("attribute_not_exists(review_attempt)", Vec::new()))
            }
            Some(Guard::AttemptAfter(Some(read), attempt)) => Some((
                "review_attempt = :read_attempt AND review_attempt < :attempt",
                vec![
                    (":read_attempt", AttributeValue::N(read.to_string())),
                    (":attempt", AttributeValue::N(attempt.to_string())),
                ],
            )),
        };
        let update = shared::dynamo::Transition {
            table: &self.table,
            key: ("order_id", AttributeValue::S(order.order_id.to_string())),
            field: "status",
            from: to_attribute(&order.status)?,
            to: to_attribute(&next)?,
            sets: extra.to_vec(),
            also,
        }
        .item()?;
        let mut items = vec![update];
        items.extend(event);
        let scope = format!("{}-{next:?}", order.order_id);
        Ok(shared::dynamo::transact(&self.client, items, Some(&scope))
            .await?
            .committed())
    }

    /// The store of `POST /orders`, which claims idempotency keys: `ORDERS_TABLE` and
    /// `IDEMPOTENCY_TABLE`.
    pub async fn from_env(client: Client) -> Result<Self, ConfigError> {
        let table = config::required("ORDERS_TABLE")?;
        let idempotency = Idempotency::new(client.clone(), config::required("IDEMPOTENCY_TABLE")?);
        Ok(Self::new(client, table, idempotency))
    }

    /// The idempotency store the handlers claim keys in (the API's store has one).
    pub fn idempotency(&self) -> Option<&Idempotency> {
        self.idempotency.as_ref()
    }
}

impl OrderStore for DynamoOrderStore {
    async fn insert(&self, order: &Order, intake: Intake<'_>) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(order)?))
            .condition_expression("attribute_not_exists(order_id)")
            .build()
            .map_err(|e| StoreError::local("build order put", e))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.outbox.put(intake.event)?,
        ];
        if let Some((claimed, response)) = intake.claim {
            let idempotency = self.idempotency.as_ref().ok_or_else(|| {
                StoreError::local(
                    "complete an idempotency claim",
                    std::io::Error::other("this orders store has no idempotency table"),
                )
            })?;
            items.push(idempotency.completion(claimed, response, order.created_at)?);
        }
        // Scoped by the order id; the token is derived from what is written (`shared::dynamo::transact`).
        let outcome = shared::dynamo::transact(&self.client, items, Some(&order.order_id)).await?;
        Ok(outcome.committed())
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        shared::dynamo::get(
            &self.client,
            &self.table,
            shared::dynamo::key("order_id", order_id),
        )
        .await
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
