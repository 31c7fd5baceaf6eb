//! The orders service's saga steps: hold for review, confirm, reject, finish a
//! cancellation. Each is a move of the order run by the step kernel
//! ([`shared::step::apply`]): [`plan`] asks the status machine ([`OrderStatus`]) for the
//! next status from the one read, and the orders table's adapter ([`DynamoOrderStore`])
//! writes it with its event in one transaction guarded by the status read; a step whose
//! transition already happened changes nothing.

use crate::OrderStore;
use crate::domain::{Order, OrderStatus, RejectReason};
use crate::store::DynamoOrderStore;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use shared::dynamo::{StoreError, to_attribute};
use shared::events::{OrderCancelled, OrderConfirmed, OrderHeldForReview, OrderRejected};
use shared::ids::OrderId;
use shared::step::{Plan, StepError, Trace};

/// `errorType`: the order is in a status this step cannot move it from.
pub const INVALID_TRANSITION: &str = "OrderTransitionInvalid";

/// What the state machine hands an order step (extra fields are ignored).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct OrderStepInput {
    /// The order.
    pub order_id: OrderId,
    /// Why it is rejected (reject only), API.md's `status_reason`.
    #[serde(default)]
    pub reason: Option<RejectReason>,
    /// The task token the admin's review decision answers (hold for review only).
    #[serde(default)]
    pub task_token: Option<String>,
    /// Which attempt of the hold this is (`$$.State.RetryCount`; hold for review only):
    /// each retry of a `.waitForTaskToken` state gets a new token, and only the latest
    /// attempt's token is answered.
    #[serde(default)]
    pub attempt: Option<u32>,
    /// The request's correlation id, carried into the events.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// What an order step answers.
pub type OrderStepOutcome = shared::step::Outcome<OrderStatus>;

/// `orders-hold-for-review`'s contract (`HoldForReview`).
pub const HOLD_FOR_REVIEW: shared::step::Contract<OrderStepInput, OrderStepOutcome> =
    shared::step::Contract::new("orders-hold-for-review");
/// `orders-confirm`'s contract (`ConfirmOrder`).
pub const CONFIRM: shared::step::Contract<OrderStepInput, OrderStepOutcome> =
    shared::step::Contract::new("orders-confirm");
/// `orders-reject`'s contract (`RejectOrder`, `RejectAfterCapture`).
pub const REJECT: shared::step::Contract<OrderStepInput, OrderStepOutcome> =
    shared::step::Contract::new("orders-reject");
/// `orders-finish-cancel`'s contract (`FinishCancel`).
pub const FINISH_CANCEL: shared::step::Contract<OrderStepInput, OrderStepOutcome> =
    shared::step::Contract::new("orders-finish-cancel");

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

/// A move of an order: the step, with what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMove {
    /// The transition.
    pub step: OrderStep,
    /// Why (reject).
    pub reason: Option<RejectReason>,
    /// The review's task token (hold for review).
    pub task_token: Option<String>,
    /// The hold's attempt (hold for review).
    pub attempt: Option<u32>,
}

impl OrderStep {
    /// The status the step ends in.
    pub fn target(self) -> OrderStatus {
        match self {
            OrderStep::HoldForReview => OrderStatus::UnderReview,
            OrderStep::Confirm => OrderStatus::Confirmed,
            OrderStep::Reject => OrderStatus::Rejected,
            OrderStep::FinishCancel => OrderStatus::Cancelled,
        }
    }
}

/// The decision of `step` for `order` as read (`None`: no such order).
pub fn plan(step: &OrderMove, order: Option<&Order>) -> Plan<OrderMove, OrderStatus> {
    let Some(order) = order else {
        return Plan::Invalid("no such order".into());
    };
    if leaves_as_is(step.step, order.status) {
        return Plan::Done(order.status);
    }
    let next = match step.step {
        OrderStep::HoldForReview => order.status.hold_for_review(),
        OrderStep::Confirm => order.status.confirm(),
        OrderStep::Reject => order.status.reject(),
        OrderStep::FinishCancel => order.status.finish_cancel(),
    };
    let next = match next {
        Ok(next) => next,
        Err(e) => return Plan::Invalid(e.to_string()),
    };
    match step.step {
        OrderStep::HoldForReview if step.task_token.is_none() => {
            return Plan::Invalid("holding for review needs a task token".into());
        }
        OrderStep::Reject if step.reason.is_none() => {
            return Plan::Invalid("rejecting needs a reason".into());
        }
        _ => {}
    }
    if next != order.status {
        return Plan::Move(step.clone());
    }
    if step.step != OrderStep::HoldForReview
        || step.task_token.is_none()
        || order.review_task_token == step.task_token
    {
        return Plan::Done(next);
    }
    // A repeated hold with another token: a later attempt (a retried wait) stores its
    // token; an earlier one that arrives late leaves the later token in place.
    if newer_attempt(step.attempt, order.review_attempt) {
        Plan::Move(step.clone())
    } else {
        Plan::Done(next)
    }
}

/// Whether a hold's `attempt` comes after the one that stored the order's token (an order
/// without an attempt recorded was held before attempts were: any attempt replaces it, as
/// does a hold without one).
pub fn newer_attempt(attempt: Option<u32>, stored: Option<u32>) -> bool {
    match (attempt, stored) {
        (Some(a), Some(s)) => a > s,
        _ => true,
    }
}

/// The attributes a move sets besides the status (name, value).
pub type ExtraSets = Vec<(&'static str, AttributeValue)>;

/// The attributes a move sets besides the status, and its event, for the adapter.
pub fn move_writes(
    order: &Order,
    step: &OrderMove,
    trace: &Trace,
) -> Result<(ExtraSets, shared::outbox::OutboxRecord), StoreError> {
    let (o, u, t) = (order.order_id.clone(), order.user_id.clone(), order.total);
    let mut extra: ExtraSets = Vec::new();
    let record = match step.step {
        OrderStep::HoldForReview => {
            let token = step.task_token.clone().unwrap_or_default();
            extra.push(("review_task_token", AttributeValue::S(token)));
            if let Some(attempt) = step.attempt {
                extra.push(("review_attempt", AttributeValue::N(attempt.to_string())));
            }
            trace.record(OrderHeldForReview {
                order_id: o,
                user_id: u,
                total: t,
            })?
        }
        OrderStep::Confirm => {
            extra.push(("review_task_token", AttributeValue::Null(true)));
            extra.push(("review_attempt", AttributeValue::Null(true)));
            trace.record(OrderConfirmed {
                order_id: o,
                user_id: u,
                items: order.items.clone(),
                total: t,
            })?
        }
        OrderStep::Reject => {
            let reason = step.reason.unwrap_or(RejectReason::TimedOut);
            extra.push(("status_reason", to_attribute(&reason)?));
            extra.push(("review_task_token", AttributeValue::Null(true)));
            extra.push(("review_attempt", AttributeValue::Null(true)));
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            trace.record(OrderRejected {
                order_id: o,
                user_id: u,
                total: t,
                reason,
            })?
        }
        OrderStep::FinishCancel => trace.record(OrderCancelled {
            order_id: o,
            user_id: u,
            total: t,
        })?,
    };
    Ok((extra, record))
}

impl shared::step::Ledger for DynamoOrderStore {
    type Record = Order;
    type Move = OrderMove;
    type Effect = ();

    async fn read(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        OrderStore::get(self, order_id).await
    }

    async fn write(
        &self,
        order: Option<&Order>,
        step: &OrderMove,
        _: &(),
        trace: &Trace,
    ) -> Result<bool, StoreError> {
        // Orders are created by intake only; no plan moves a missing one.
        let Some(order) = order else {
            return Ok(false);
        };
        let (extra, record) = move_writes(order, step, trace)?;
        let event = self.outbox().put_record(&record)?;
        if step.step != OrderStep::HoldForReview {
            return self
                .transition(order, step.step.target(), &extra, Some(event), None)
                .await;
        }
        // A hold that replaces a token is also guarded by the attempt it read, and one that
        // lost the write to an earlier attempt (both read the order before either wrote)
        // writes again: the order ends with the latest attempt's token, whatever the order
        // the attempts arrived in.
        let mut current = order.clone();
        for _ in 0..3 {
            let guard = match (current.status, step.attempt) {
                (OrderStatus::UnderReview, Some(attempt)) => Some(
                    crate::store::Guard::AttemptAfter(current.review_attempt, attempt),
                ),
                _ => None,
            };
            if self
                .transition(
                    &current,
                    step.step.target(),
                    &extra,
                    Some(event.clone()),
                    guard,
                )
                .await?
            {
                return Ok(true);
            }
            match OrderStore::get(self, &order.order_id).await? {
                Some(now)
                    if now.status == OrderStatus::UnderReview
                        && now.review_task_token != step.task_token
                        && newer_attempt(step.attempt, now.review_attempt) =>
                {
                    current = now;
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    }
}

impl shared::step::Stateful for Order {
    type State = OrderStatus;
    fn state(&self) -> OrderStatus {
        self.status
    }
}

impl shared::step::Transition for OrderMove {
    type State = OrderStatus;
    fn target(&self) -> OrderStatus {
        self.step.target()
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

/// Runs one order step through the step kernel; see the module doc.
pub async fn run_step(
    store: &impl shared::step::Ledger<Record = Order, Move = OrderMove, Effect = ()>,
    step: OrderStep,
    input: OrderStepInput,
) -> Result<OrderStepOutcome, StepError> {
    let trace = Trace::of(&input.order_id, input.correlation_id.as_deref());
    let requested = OrderMove {
        step,
        reason: input.reason,
        task_token: input.task_token,
        attempt: input.attempt,
    };
    let moved = shared::step::apply(
        store,
        &input.order_id,
        |order| plan(&requested, order),
        |_, _| async { Ok(()) },
        &trace,
        INVALID_TRANSITION,
    )
    .await?;
    Ok(OrderStepOutcome {
        order_id: input.order_id,
        status: moved.state,
        changed: moved.changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order of these tests.
    const O1: &str = "01JDZ000000000000000000001";
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

    /// The orders table in memory: the step kernel's port, with the write's guard.
    #[derive(Default)]
    struct Memory {
        orders: std::sync::Mutex<std::collections::HashMap<String, Order>>,
        events: std::sync::Mutex<Vec<String>>,
    }

    impl shared::step::Ledger for Memory {
        type Record = Order;
        type Move = OrderMove;
        type Effect = ();
        async fn read(&self, id: &str) -> Result<Option<Order>, StoreError> {
            Ok(self.orders.lock().unwrap().get(id).cloned())
        }
        async fn write(
            &self,
            order: Option<&Order>,
            step: &OrderMove,
            _: &(),
            trace: &Trace,
        ) -> Result<bool, StoreError> {
            let order = order.unwrap();
            let (_, record) = move_writes(order, step, trace)?;
            let mut all = self.orders.lock().unwrap();
            let stored = all.get_mut(order.order_id.as_str()).unwrap();
            if stored.status != order.status || stored.review_attempt != order.review_attempt {
                return Ok(false);
            }
            stored.status = step.step.target();
            stored.review_task_token = step.task_token.clone();
            stored.review_attempt = step.attempt;
            self.events.lock().unwrap().push(record.detail_type);
            Ok(true)
        }
    }

    fn memory_with(status: OrderStatus) -> Memory {
        let order: Order = serde_json::from_value(serde_json::json!({
            "order_id": O1,
            "user_id": "u1",
            "status": status,
            "status_reason": null,
            "items": [],
            "total": {"amount": "10.00", "currency": "EUR"},
            "shipping": {"name": "A", "line1": "1 St", "city": "C", "postal_code": "1", "country": "GB"},
            "payment_token": "tok_visa",
            "created_at": "2026-12-02T10:00:00.000Z",
            "updated_at": "2026-12-02T10:00:00.000Z"
        }))
        .unwrap();
        let m = Memory::default();
        m.orders.lock().unwrap().insert(O1.into(), order);
        m
    }

    fn input(reason: Option<RejectReason>, task_token: Option<&str>) -> OrderStepInput {
        OrderStepInput {
            order_id: O1.parse().unwrap(),
            reason,
            task_token: task_token.map(str::to_owned),
            attempt: None,
            correlation_id: None,
        }
    }

    fn hold(token: &str, attempt: u32) -> OrderStepInput {
        OrderStepInput {
            attempt: Some(attempt),
            ..input(None, Some(token))
        }
    }

    #[tokio::test]
    async fn a_late_earlier_hold_never_puts_its_dead_token_back() {
        let m = memory_with(Pending);
        // The first attempt (t1) is slow; the wait is retried and the second (t2) holds.
        let second = run_step(&m, OrderStep::HoldForReview, hold("t2", 1))
            .await
            .unwrap();
        assert_eq!((second.status, second.changed), (UnderReview, true));
        // The first arrives late: the order keeps t2, which the admin's decision answers.
        let late = run_step(&m, OrderStep::HoldForReview, hold("t1", 0))
            .await
            .unwrap();
        assert_eq!((late.status, late.changed), (UnderReview, false));
        assert_eq!(
            m.orders.lock().unwrap()[O1].review_task_token.as_deref(),
            Some("t2")
        );
        // A third attempt (the wait retried again) replaces it.
        let third = run_step(&m, OrderStep::HoldForReview, hold("t3", 2))
            .await
            .unwrap();
        assert!(third.changed);
        assert_eq!(
            m.orders.lock().unwrap()[O1].review_task_token.as_deref(),
            Some("t3")
        );
        assert_eq!(
            *m.events.lock().unwrap(),
            vec!["OrderHeldForReview", "OrderHeldForReview"]
        );
        assert!(newer_attempt(Some(1), None) && newer_attempt(None, Some(3)));
        assert!(!newer_attempt(Some(1), Some(1)));
    }

    #[tokio::test]
    async fn a_reject_after_a_lost_confirm_answer_keeps_the_order_confirmed() {
        let m = memory_with(Pending);
        let confirmed = run_step(&m, OrderStep::Confirm, input(None, None))
            .await
            .unwrap();
        assert_eq!((confirmed.status, confirmed.changed), (Confirmed, true));
        let again = run_step(&m, OrderStep::Confirm, input(None, None))
            .await
            .unwrap();
        assert!(!again.changed);
        let kept = run_step(
            &m,
            OrderStep::Reject,
            input(Some(RejectReason::TimedOut), None),
        )
        .await
        .unwrap();
        assert_eq!((kept.status, kept.changed), (Confirmed, false));
        assert_eq!(*m.events.lock().unwrap(), vec!["OrderConfirmed"]);
    }

    #[tokio::test]
    async fn a_retried_hold_stores_the_new_token_and_needs_one() {
        let m = memory_with(Pending);
        let held = run_step(&m, OrderStep::HoldForReview, input(None, Some("t1")))
            .await
            .unwrap();
        assert_eq!((held.status, held.changed), (UnderReview, true));
        let same = run_step(&m, OrderStep::HoldForReview, input(None, Some("t1")))
            .await
            .unwrap();
        assert!(!same.changed);
        let retried = run_step(&m, OrderStep::HoldForReview, input(None, Some("t2")))
            .await
            .unwrap();
        assert!(retried.changed, "a retried wait's new token is stored");
        assert_eq!(
            m.orders.lock().unwrap()[O1].review_task_token.as_deref(),
            Some("t2")
        );
        let refused = run_step(&m, OrderStep::HoldForReview, input(None, None))
            .await
            .unwrap_err();
        assert_eq!(refused.error_type, INVALID_TRANSITION);
        let refused = run_step(&m, OrderStep::Reject, input(None, None))
            .await
            .unwrap_err();
        assert_eq!(
            refused.error_type, INVALID_TRANSITION,
            "a reject needs a reason"
        );
    }

    #[test]
    fn a_confirmed_order_is_never_rejected() {
        assert!(leaves_as_is(OrderStep::Reject, Confirmed));
        assert!(!leaves_as_is(OrderStep::Reject, Pending));
        assert!(!leaves_as_is(OrderStep::Confirm, Pending));
    }
}
