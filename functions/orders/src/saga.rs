//! The orders service's saga steps: hold for review, confirm, reject, finish a
//! cancellation. Each reads the order, asks the status machine ([`OrderStatus`]) for the
//! next status, and writes it with its event in one transaction guarded by the status it
//! read; a step whose transition already happened changes nothing.

use crate::domain::{Order, OrderStatus, RejectReason};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use shared::dynamo::{StoreError, from_item, to_attribute};
use shared::events::{Envelope, OrderCancelled, OrderConfirmed, OrderHeldForReview, OrderRejected};
use shared::outbox::Outbox;
use shared::step::StepError;

/// `errorType`: the order is in a status this step cannot move it from.
pub const INVALID_TRANSITION: &str = "OrderTransitionInvalid";

/// The orders table, as the saga steps use it.
#[derive(Debug, Clone)]
pub struct SagaOrders {
    client: Client,
    table: String,
    outbox: Outbox,
}

/// What the state machine hands an order step (extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderStepInput {
    /// The order.
    pub order_id: String,
    /// Why it is rejected (reject only), API.md's `status_reason`.
    #[serde(default)]
    pub reason: Option<RejectReason>,
    /// The task token the admin's review decision answers (hold for review only).
    #[serde(default)]
    pub task_token: Option<String>,
    /// The request's correlation id, carried into the events.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// What an order step answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderStepOutcome {
    /// The order.
    pub order_id: String,
    /// Its status after the step.
    pub status: OrderStatus,
    /// False when the transition had already happened.
    pub changed: bool,
}

/// Which transition a step makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStep {
    /// `PENDING → UNDER_REVIEW`, keeping the review task token.
    HoldForReview,
    /// `PENDING | UNDER_REVIEW → CONFIRMED`.
    Confirm,
    /// `PENDING | UNDER_REVIEW → REJECTED` with a reason.
    Reject,
    /// `CANCELLING → CANCELLED`.
    FinishCancel,
}

impl SagaOrders {
    /// The orders in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "order_id"),
            table,
        }
    }

    /// The store a step Lambda uses: `ORDERS_TABLE`, on the function's SDK settings.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        let table = shared::config::required("ORDERS_TABLE")?;
        Ok(Self::new(shared::aws::dynamodb(sdk), table))
    }

    /// Reads an order.
    pub async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
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

    /// Moves `order` from its status to `next`, with `event` and extra `SET`s, guarded by
    /// the status read. `Ok(false)`: the status changed meanwhile.
    pub async fn transition(
        &self,
        order: &Order,
        next: OrderStatus,
        extra: &[(&str, AttributeValue)],
        event: Option<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let mut sets = vec!["#status = :next".to_owned(), "#updated = :now".to_owned()];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("order_id", AttributeValue::S(order.order_id.clone()))
            .condition_expression("#status = :current")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_values(":next", to_attribute(&next)?)
            .expression_attribute_values(":current", to_attribute(&order.status)?)
            .expression_attribute_values(
                ":now",
                AttributeValue::S(
                    shared::time::now().to_rfc3339_opts(shared::time::SecondsFormat::Millis, true),
                ),
            );
        for (i, (name, value)) in extra.iter().enumerate() {
            sets.push(format!("#x{i} = :x{i}"));
            update = update
                .expression_attribute_names(format!("#x{i}"), *name)
                .expression_attribute_values(format!(":x{i}"), value.clone());
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .build()
            .map_err(|e| StoreError::request("build order update", e))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(event);
        let token = format!("{}-{next:?}", order.order_id);
        Ok(shared::dynamo::transact(&self.client, items, Some(&token))
            .await?
            .committed())
    }

    /// The outbox of the orders table.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

/// The compensating order steps accept every status they can meet: an order already past
/// the point of rejecting (`CONFIRMED`, its confirm answer lost; or being cancelled by its
/// customer) is not rejected, and a cancellation whose order a place-order compensation
/// rejected meanwhile is not turned into `CANCELLED`. The step leaves the order as it is
/// and answers its status, which the place-order state machine reads after a fault past
/// the capture (`RejectAfterCapture`): a `CONFIRMED` answer means the saga had finished.
pub fn leaves_as_is(step: OrderStep, status: OrderStatus) -> bool {
    use OrderStatus::*;
    match step {
        OrderStep::Reject => matches!(status, Confirmed | Cancelling | Cancelled),
        OrderStep::FinishCancel => matches!(status, Rejected),
        OrderStep::HoldForReview | OrderStep::Confirm => false,
    }
}

/// Runs one order step; see the module doc.
pub async fn run_step(
    store: &SagaOrders,
    step: OrderStep,
    input: OrderStepInput,
) -> Result<OrderStepOutcome, StepError> {
    let order = store.get(&input.order_id).await?.ok_or_else(|| {
        StepError::business(INVALID_TRANSITION, format!("no order {}", input.order_id))
    })?;
    if leaves_as_is(step, order.status) {
        return Ok(OrderStepOutcome {
            order_id: order.order_id.clone(),
            status: order.status,
            changed: false,
        });
    }
    let next = match step {
        OrderStep::HoldForReview => order.status.hold_for_review(),
        OrderStep::Confirm => order.status.confirm(),
        OrderStep::Reject => order.status.reject(),
        OrderStep::FinishCancel => order.status.finish_cancel(),
    }
    .map_err(|e| StepError::business(INVALID_TRANSITION, e.to_string()))?;
    let outcome = |changed| OrderStepOutcome {
        order_id: order.order_id.clone(),
        status: next,
        changed,
    };
    // A repeated hold for review with a new token (a retried wait) must store that token.
    let same_token = input.task_token.is_none() || order.review_task_token == input.task_token;
    if next == order.status && (step != OrderStep::HoldForReview || same_token) {
        return Ok(outcome(false));
    }
    let correlation = input
        .correlation_id
        .clone()
        .unwrap_or_else(|| order.order_id.clone());
    let (at, corr, cause) = (
        shared::time::now(),
        correlation.as_str(),
        Some(order.order_id.as_str()),
    );
    let (o, u, t) = (order.order_id.clone(), order.user_id.clone(), order.total);
    let mut extra: Vec<(&str, AttributeValue)> = Vec::new();
    let event = match step {
        OrderStep::HoldForReview => {
            let token = input.task_token.clone().ok_or_else(|| {
                StepError::business(INVALID_TRANSITION, "holding for review needs a task token")
            })?;
            extra.push(("review_task_token", AttributeValue::S(token)));
            store.outbox().put(&Envelope::new(
                OrderHeldForReview {
                    order_id: o,
                    user_id: u,
                    total: t,
                },
                at,
                corr,
                cause,
            ))?
        }
        OrderStep::Confirm => {
            extra.push(("review_task_token", AttributeValue::Null(true)));
            store.outbox().put(&Envelope::new(
                OrderConfirmed {
                    order_id: o,
                    user_id: u,
                    items: order.items.clone(),
                    total: t,
                },
                at,
                corr,
                cause,
            ))?
        }
        OrderStep::Reject => {
            let reason = input.reason.ok_or_else(|| {
                StepError::business(INVALID_TRANSITION, "rejecting needs a reason")
            })?;
            extra.push((
                "status_reason",
                to_attribute(&reason).map_err(StepError::from)?,
            ));
            extra.push(("review_task_token", AttributeValue::Null(true)));
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            store.outbox().put(&Envelope::new(
                OrderRejected {
                    order_id: o,
                    user_id: u,
                    total: t,
                    reason,
                },
                at,
                corr,
                cause,
            ))?
        }
        OrderStep::FinishCancel => store.outbox().put(&Envelope::new(
            OrderCancelled {
                order_id: o,
                user_id: u,
                total: t,
            },
            at,
            corr,
            cause,
        ))?,
    };
    if store.transition(&order, next, &extra, Some(event)).await? {
        return Ok(outcome(true));
    }
    // Another attempt moved it meanwhile: fine if it is where this step was going.
    match store.get(&input.order_id).await?.map(|o| o.status) {
        Some(s) if s == next => Ok(outcome(false)),
        other => Err(StepError::transient(format!(
            "order {} moved to {other:?} concurrently",
            input.order_id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    const EVERY: [OrderStatus; 6] = [
        Pending,
        UnderReview,
        Confirmed,
        Rejected,
        Cancelling,
        Cancelled,
    ];

    #[test]
    fn compensating_order_steps_accept_every_status() {
        for status in EVERY {
            let reject = leaves_as_is(OrderStep::Reject, status) || status.reject().is_ok();
            assert!(reject, "reject refuses {status:?}");
            let finish =
                leaves_as_is(OrderStep::FinishCancel, status) || status.finish_cancel().is_ok();
            // Only an order never confirmed cannot have a cancellation to finish.
            assert_eq!(
                finish,
                !matches!(status, Pending | UnderReview | Confirmed),
                "finish cancel from {status:?}"
            );
        }
    }

    #[test]
    fn a_confirmed_order_is_never_rejected() {
        assert!(leaves_as_is(OrderStep::Reject, Confirmed));
        assert!(!leaves_as_is(OrderStep::Reject, Pending));
        assert!(!leaves_as_is(OrderStep::Confirm, Pending));
    }
}
