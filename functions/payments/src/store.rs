//! The DynamoDB adapter: the `payments` table keyed by `order_id`, with its outbox. The
//! payments service reads no other table: what authorizing needs of the order (customer,
//! total, payment token) comes in the saga's input.

use crate::domain::{Payment, PaymentStatus};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shared::dynamo::{StoreError, to_attribute, to_item};
use shared::outbox::Outbox;

/// Payments in the `payments` table.
#[derive(Debug, Clone)]
pub struct PaymentStore {
    client: Client,
    table: String,
    outbox: Outbox,
}

impl PaymentStore {
    /// Payments in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "order_id"),
            table,
        }
    }

    /// The store a Lambda uses: `PAYMENTS_TABLE`.
    pub async fn from_env() -> Result<Self, shared::config::ConfigError> {
        Self::from_sdk(&shared::aws::sdk_config().await?)
    }

    /// [`PaymentStore::from_env`] with an SDK configuration the function already loaded.
    pub fn from_sdk(sdk: &shared::aws::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        let table = shared::config::required("PAYMENTS_TABLE")?;
        Ok(Self::new(shared::aws::dynamodb(sdk), table))
    }

    /// The payment of an order.
    pub async fn get(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        shared::dynamo::get(
            &self.client,
            &self.table,
            shared::dynamo::key("order_id", order_id),
        )
        .await
    }

    /// Writes a new payment (with its event, if any); `Ok(false)` if the order has one
    /// already.
    pub async fn insert(
        &self,
        payment: &Payment,
        event: Option<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let Some(event) = event else {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_item(payment)?))
                .condition_expression("attribute_not_exists(order_id)")
                .send()
                .await;
            return match put {
                Ok(_) => Ok(true),
                Err(e) if shared::dynamo::is_condition_failed(&e) => Ok(false),
                Err(e) => Err(StoreError::request("PutItem", e)),
            };
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(payment)?))
            .condition_expression("attribute_not_exists(order_id)")
            .build()
            .map_err(|e| StoreError::local("build payment put", e))?;
        self.transact(
            vec![TransactWriteItem::builder().put(put).build(), event],
            &payment.payment_id,
        )
        .await
    }

    /// Settles a `PENDING` payment as `payment.status` (`AUTHORIZED`, or `DECLINED` with
    /// its reason) with its event; `Ok(false)` if it was no longer `PENDING`.
    pub async fn settle(
        &self,
        payment: &Payment,
        event: TransactWriteItem,
    ) -> Result<bool, StoreError> {
        let update = shared::dynamo::Transition {
            table: &self.table,
            key: ("order_id", AttributeValue::S(payment.order_id.to_string())),
            field: "status",
            from: to_attribute(&PaymentStatus::Pending)?,
            to: to_attribute(&payment.status)?,
            sets: vec![("decline_reason", to_attribute(&payment.decline_reason)?)],
            also: None,
        }
        .item()?;
        self.transact(
            vec![update, event],
            &format!("{}-settle-{:?}", payment.order_id, payment.status),
        )
        .await
    }

    /// Moves a payment `from` → `to` with its event; `Ok(false)` if it was not in `from`.
    pub async fn transition(
        &self,
        order_id: &str,
        (from, to): (PaymentStatus, PaymentStatus),
        event: TransactWriteItem,
    ) -> Result<bool, StoreError> {
        let update = shared::dynamo::Transition {
            table: &self.table,
            key: ("order_id", AttributeValue::S(order_id.to_owned())),
            field: "status",
            from: to_attribute(&from)?,
            to: to_attribute(&to)?,
            sets: Vec::new(),
            also: None,
        }
        .item()?;
        self.transact(vec![update, event], &format!("{order_id}-{from:?}-{to:?}"))
            .await
    }

    /// The outbox of the payments table.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Commits `items`; `false` when a condition failed (another writer got there first).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        token: &str,
    ) -> Result<bool, StoreError> {
        Ok(shared::dynamo::transact(&self.client, items, Some(token))
            .await?
            .committed())
    }
}

impl shared::step::Ledger for PaymentStore {
    type Record = Payment;
    type Move = crate::PaymentMove;
    type Effect = crate::Settled;

    async fn read(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        self.get(order_id).await
    }

    async fn write(
        &self,
        payment: Option<&Payment>,
        _step: &crate::PaymentMove,
        settled: &crate::Settled,
        trace: &shared::step::Trace,
    ) -> Result<bool, StoreError> {
        let Some(payment) = payment else {
            // No payment was read: only a seal writes, and only if there is still none.
            return match &settled.seal {
                Some(seal) => self.insert(seal, None).await,
                None => Ok(false),
            };
        };
        let Some(event) = crate::move_event(payment, settled.status, trace)? else {
            return Ok(false);
        };
        self.transition(
            &payment.order_id,
            (payment.status, settled.status),
            self.outbox.put_record(&event)?,
        )
        .await
    }

    fn landed(&self, _step: &crate::PaymentMove, settled: &crate::Settled) -> PaymentStatus {
        settled.status
    }
}
