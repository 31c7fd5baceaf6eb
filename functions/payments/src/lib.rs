//! The payments service: the saga's payment steps (authorize, capture, void, refund),
//! each idempotent by order id, and `GET /orders/{order_id}/payment`.
//!
//! A step reads the payment, calls the provider with the order id as its idempotency
//! key, and moves the payment with its event in one transaction guarded by the status it
//! expects, so a retried or replayed step finds the status moved and changes nothing.

pub mod domain;
pub mod fraud_check;
pub mod provider;
pub mod store;

use domain::{Payment, PaymentStatus, PaymentView};
use provider::{Authorization, PaymentProvider, ProviderError};
use serde::{Deserialize, Serialize};
use shared::events::{
    Envelope, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentRefunded, PaymentVoided,
};
use shared::step::StepError;
use store::PaymentStore;

/// `errorType`: the provider declined (card declined, insufficient funds).
pub const PAYMENT_DECLINED: &str = "PaymentDeclined";
/// `errorType`: capturing the authorization failed.
pub const CAPTURE_FAILED: &str = "PaymentCaptureFailed";
/// `errorType`: the provider did not answer; retried, then the saga gives up.
pub const PROVIDER_TIMEOUT: &str = "PaymentProviderTimeout";
/// `errorType`: the payment is not in a state this step can move.
pub const INVALID_STATE: &str = "PaymentStateInvalid";

/// What the state machine hands a payment step (extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentStepInput {
    /// The order.
    pub order_id: String,
    /// The request's correlation id, carried into the events.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// What a step answers the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentOutcome {
    /// The order.
    pub order_id: String,
    /// The payment's status after the step.
    pub status: PaymentStatus,
    /// False when the step had already happened.
    pub changed: bool,
}

fn outcome(order_id: &str, status: PaymentStatus, changed: bool) -> PaymentOutcome {
    PaymentOutcome {
        order_id: order_id.to_owned(),
        status,
        changed,
    }
}

fn provider_error(err: ProviderError) -> StepError {
    match err {
        ProviderError::Declined(reason) => StepError::business(PAYMENT_DECLINED, reason),
        ProviderError::CaptureFailed(reason) => StepError::business(CAPTURE_FAILED, reason),
        ProviderError::Timeout => StepError::business(
            PROVIDER_TIMEOUT,
            "the payment provider did not answer in time",
        ),
    }
}

impl PaymentStepInput {
    fn trace(&self) -> shared::step::Trace {
        shared::step::Trace::of(&self.order_id, self.correlation_id.as_deref())
    }

    fn envelope<T: shared::events::DomainEvent>(&self, data: T) -> Envelope<T> {
        self.trace().envelope(data)
    }
}

/// Step `payments-authorize`: holds the order's total. `PaymentDeclined` (recorded, and
/// given again on a retry), `PaymentProviderTimeout` (nothing recorded; retry).
pub async fn authorize(
    store: &PaymentStore,
    provider: &impl PaymentProvider,
    input: PaymentStepInput,
) -> Result<PaymentOutcome, StepError> {
    if let Some(existing) = store.get(&input.order_id).await? {
        return match existing.status {
            PaymentStatus::Declined => Err(StepError::business(
                PAYMENT_DECLINED,
                existing.decline_reason.unwrap_or_default(),
            )),
            status => Ok(outcome(&input.order_id, status, false)),
        };
    }
    let order = store.order_to_pay(&input.order_id).await?.ok_or_else(|| {
        StepError::business(INVALID_STATE, format!("no order {}", input.order_id))
    })?;
    let now = shared::time::now();
    let mut payment = Payment {
        order_id: input.order_id.clone(),
        payment_id: ulid::Ulid::new().to_string(),
        user_id: order.user_id,
        status: PaymentStatus::Authorized,
        amount: order.total,
        provider_reference: None,
        decline_reason: None,
        created_at: now,
        updated_at: now,
    };
    let result = provider
        .authorize(&input.order_id, &order.payment_token, &order.total)
        .await;
    let (event, answer) = match result {
        Ok(auth) => {
            payment.provider_reference = Some(auth.reference);
            let e = input.envelope(PaymentAuthorized {
                order_id: payment.order_id.clone(),
                payment_id: payment.payment_id.clone(),
                amount: payment.amount,
            });
            (
                store.outbox().put(&e)?,
                Ok(outcome(&input.order_id, PaymentStatus::Authorized, true)),
            )
        }
        Err(ProviderError::Declined(reason)) => {
            payment.status = PaymentStatus::Declined;
            payment.decline_reason = Some(reason.clone());
            let e = input.envelope(PaymentDeclined {
                order_id: payment.order_id.clone(),
                payment_id: payment.payment_id.clone(),
                amount: payment.amount,
                reason: reason.clone(),
            });
            (
                store.outbox().put(&e)?,
                Err(StepError::business(PAYMENT_DECLINED, reason)),
            )
        }
        Err(other) => return Err(provider_error(other)),
    };
    if !store.insert(&payment, event).await? {
        // Another attempt recorded the outcome first: answer as it did.
        return match store
            .get(&input.order_id)
            .await?
            .map(|p| (p.status, p.decline_reason))
        {
            Some((PaymentStatus::Declined, reason)) => Err(StepError::business(
                PAYMENT_DECLINED,
                reason.unwrap_or_default(),
            )),
            Some((status, _)) => Ok(outcome(&input.order_id, status, false)),
            None => Err(StepError::transient("payment vanished")),
        };
    }
    answer
}

/// The three moves after authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMove {
    /// `AUTHORIZED → CAPTURED`.
    Capture,
    /// `AUTHORIZED → VOIDED` (compensation; a captured payment is refunded instead).
    Void,
    /// `CAPTURED → REFUNDED` (compensation after capture, cancellation; a payment still
    /// only authorized is voided instead).
    Refund,
}

/// What a payment step does, decided from where the payment is (the step kernel's
/// [`shared::step::Plan`]).
pub type Plan = shared::step::Plan<PaymentMove, PaymentStatus>;

impl PaymentMove {
    /// The status a move starts from and the one it ends in.
    pub fn states(self) -> (PaymentStatus, PaymentStatus) {
        match self {
            PaymentMove::Capture => PaymentStatus::capture(),
            PaymentMove::Void => PaymentStatus::void(),
            PaymentMove::Refund => PaymentStatus::refund(),
        }
    }

    /// The decision of a step for a payment in `current` (`None`: no payment yet).
    ///
    /// The compensations accept every status they can meet, so a saga that compensates
    /// after a lost answer always converges: a void of a payment whose capture happened
    /// (its answer lost) refunds it, a refund of a payment never captured voids it, and
    /// either finds nothing to do when no money is held (declined, voided, refunded, no
    /// payment: it answers `VOIDED`). A capture happens only from `AUTHORIZED`.
    pub fn plan(self, current: Option<PaymentStatus>) -> Plan {
        use PaymentStatus::*;
        match (self, current) {
            (PaymentMove::Capture, Some(Authorized)) => Plan::Move(PaymentMove::Capture),
            (PaymentMove::Capture, Some(Captured)) => Plan::Done(Captured),
            (PaymentMove::Capture, Some(other)) => {
                Plan::Invalid(format!("the payment is {other:?}, cannot Capture"))
            }
            (PaymentMove::Capture, None) => Plan::Invalid("the order has no payment".into()),
            (PaymentMove::Void | PaymentMove::Refund, Some(Authorized)) => {
                Plan::Move(PaymentMove::Void)
            }
            (PaymentMove::Void | PaymentMove::Refund, Some(Captured)) => {
                Plan::Move(PaymentMove::Refund)
            }
            (PaymentMove::Void | PaymentMove::Refund, None) => Plan::Done(Voided),
            (PaymentMove::Void | PaymentMove::Refund, Some(held_nothing)) => {
                Plan::Done(held_nothing)
            }
        }
    }
}

impl shared::step::Stateful for Payment {
    type State = PaymentStatus;
    fn state(&self) -> PaymentStatus {
        self.status
    }
}

impl shared::step::Transition for PaymentMove {
    type State = PaymentStatus;
    fn target(&self) -> PaymentStatus {
        self.states().1
    }
}

/// The event of a move of `payment`.
pub fn move_event(
    payment: &Payment,
    step: PaymentMove,
    trace: &shared::step::Trace,
) -> Result<shared::outbox::OutboxRecord, shared::dynamo::StoreError> {
    let (order_id, payment_id, amount) = (
        payment.order_id.clone(),
        payment.payment_id.clone(),
        payment.amount,
    );
    match step {
        PaymentMove::Capture => trace.record(PaymentCaptured {
            order_id,
            payment_id,
            amount,
        }),
        PaymentMove::Void => trace.record(PaymentVoided {
            order_id,
            payment_id,
            amount,
        }),
        PaymentMove::Refund => trace.record(PaymentRefunded {
            order_id,
            payment_id,
            amount,
        }),
    }
}

/// Steps `payments-capture`, `payments-void`, `payments-refund`, decided by
/// [`PaymentMove::plan`] and run by the step kernel ([`shared::step::apply`]): the
/// provider is called (with the order id as its idempotency key) only for a move, then
/// the move is written with its event, guarded by the status read.
pub async fn apply(
    store: &impl shared::step::Ledger<Record = Payment, Move = PaymentMove, Effect = ()>,
    provider: &impl PaymentProvider,
    requested: PaymentMove,
    input: PaymentStepInput,
) -> Result<PaymentOutcome, StepError> {
    let trace = input.trace();
    let key = input.order_id.as_str();
    let moved = shared::step::apply(
        store,
        key,
        |payment| requested.plan(payment.map(|p| p.status)),
        |payment, step| {
            let auth = Authorization {
                reference: payment
                    .and_then(|p| p.provider_reference.clone())
                    .unwrap_or_default(),
            };
            let (amount, step) = (payment.map(|p| p.amount), *step);
            async move {
                // Every plan that moves has read a payment.
                let Some(amount) = amount else {
                    return Err(StepError::transient("a payment move without a payment"));
                };
                match step {
                    PaymentMove::Capture => provider.capture(key, &auth, &amount).await,
                    PaymentMove::Void => provider.void(key, &auth).await,
                    PaymentMove::Refund => provider.refund(key, &auth, &amount).await,
                }
                .map_err(provider_error)
            }
        },
        &trace,
        INVALID_STATE,
    )
    .await?;
    Ok(outcome(&input.order_id, moved.state, moved.changed))
}

/// `GET /orders/{order_id}/payment`: the order's owner or an admin.
pub mod api {
    use super::*;
    use http::StatusCode;
    use lambda_http::{Body, Request, RequestExt, Response};
    use shared::ApiError;
    use shared::identity::Caller;

    /// The payment of an order.
    pub async fn get(store: &PaymentStore, req: Request) -> Result<Response<Body>, ApiError> {
        let caller = Caller::from_context(req.request_context_ref())?;
        let order_id = shared::http::path_param(&req, "order_id")?;
        let not_found = || ApiError::NotFound(format!("No payment for order {order_id}"));
        if ulid::Ulid::from_string(&order_id).is_err() {
            return Err(not_found());
        }
        let payment = store.get(&order_id).await?.ok_or_else(not_found)?;
        if !caller.may_act_for(&payment.user_id) {
            return Err(ApiError::Forbidden(
                "This order belongs to another customer".into(),
            ));
        }
        shared::http::json(StatusCode::OK, &PaymentView::from(&payment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    const EVERY: [Option<PaymentStatus>; 6] = [
        None,
        Some(Authorized),
        Some(Captured),
        Some(Voided),
        Some(Refunded),
        Some(Declined),
    ];

    #[test]
    fn a_compensation_accepts_every_status_and_leaves_no_money_held() {
        for step in [PaymentMove::Void, PaymentMove::Refund] {
            for current in EVERY {
                let after = match step.plan(current) {
                    Plan::Done(s) => {
                        assert_eq!(current.unwrap_or(Voided), s, "{step:?} from {current:?}");
                        s
                    }
                    Plan::Move(m) => {
                        let (from, to) = m.states();
                        assert_eq!(Some(from), current, "{step:?} from {current:?}");
                        to
                    }
                    Plan::Invalid(why) => panic!("{step:?} refused {current:?}: {why}"),
                };
                assert!(
                    !matches!(after, Authorized | Captured),
                    "{step:?} from {current:?} leaves {after:?}"
                );
            }
        }
    }

    #[test]
    fn a_void_after_a_lost_capture_answer_refunds() {
        assert_eq!(
            PaymentMove::Void.plan(Some(Captured)),
            Plan::Move(PaymentMove::Refund)
        );
        assert_eq!(
            PaymentMove::Refund.plan(Some(Authorized)),
            Plan::Move(PaymentMove::Void)
        );
    }

    #[test]
    fn a_capture_happens_only_from_authorized_and_once() {
        assert_eq!(
            PaymentMove::Capture.plan(Some(Authorized)),
            Plan::Move(PaymentMove::Capture)
        );
        assert_eq!(
            PaymentMove::Capture.plan(Some(Captured)),
            Plan::Done(Captured)
        );
        for current in [None, Some(Voided), Some(Refunded), Some(Declined)] {
            assert!(
                matches!(PaymentMove::Capture.plan(current), Plan::Invalid(_)),
                "{current:?}"
            );
        }
    }

    /// The payments table in memory: the step kernel's port, with the write's guard.
    #[derive(Default)]
    struct Memory {
        payments: Mutex<HashMap<String, Payment>>,
        events: Mutex<Vec<String>>,
    }

    impl shared::step::Ledger for Memory {
        type Record = Payment;
        type Move = PaymentMove;
        type Effect = ();
        async fn read(&self, id: &str) -> Result<Option<Payment>, shared::dynamo::StoreError> {
            Ok(self.payments.lock().unwrap().get(id).cloned())
        }
        async fn write(
            &self,
            payment: Option<&Payment>,
            step: &PaymentMove,
            _: &(),
            trace: &shared::step::Trace,
        ) -> Result<bool, shared::dynamo::StoreError> {
            let Some(payment) = payment else {
                return Ok(false);
            };
            let (from, to) = step.states();
            let mut all = self.payments.lock().unwrap();
            let stored = all.get_mut(&payment.order_id).unwrap();
            if stored.status != from {
                return Ok(false);
            }
            stored.status = to;
            let event = move_event(payment, *step, trace)?;
            assert!(
                event.detail_type.contains(&format!("{to:?}")),
                "{}",
                event.detail_type
            );
            self.events.lock().unwrap().push(event.detail_type);
            Ok(true)
        }
    }

    fn memory_with(status: PaymentStatus) -> Memory {
        let m = Memory::default();
        let now = shared::time::now();
        m.payments.lock().unwrap().insert(
            "o1".into(),
            Payment {
                order_id: "o1".into(),
                payment_id: "p1".into(),
                user_id: "u1".into(),
                status,
                amount: shared::money::Money::parse("12.00", "EUR").unwrap(),
                provider_reference: Some("auth_1".into()),
                decline_reason: None,
                created_at: now,
                updated_at: now,
            },
        );
        m
    }

    fn input() -> PaymentStepInput {
        PaymentStepInput {
            order_id: "o1".into(),
            correlation_id: Some("c1".into()),
        }
    }

    #[tokio::test]
    async fn capture_then_a_lost_answer_then_void_refunds_once() {
        let m = memory_with(Authorized);
        let p = provider::SandboxProvider;
        let first = apply(&m, &p, PaymentMove::Capture, input()).await.unwrap();
        assert_eq!((first.status, first.changed), (Captured, true));
        // The capture's answer was lost: the retry changes nothing.
        let again = apply(&m, &p, PaymentMove::Capture, input()).await.unwrap();
        assert_eq!((again.status, again.changed), (Captured, false));
        // The saga compensates with a void: the captured money is refunded, once.
        let void = apply(&m, &p, PaymentMove::Void, input()).await.unwrap();
        assert_eq!((void.status, void.changed), (Refunded, true));
        let void = apply(&m, &p, PaymentMove::Void, input()).await.unwrap();
        assert_eq!((void.status, void.changed), (Refunded, false));
        assert_eq!(
            *m.events.lock().unwrap(),
            vec!["PaymentCaptured", "PaymentRefunded"]
        );
        // Nothing captures a refunded payment.
        let refused = apply(&m, &p, PaymentMove::Capture, input())
            .await
            .unwrap_err();
        assert_eq!(refused.error_type, INVALID_STATE);
    }

    #[tokio::test]
    async fn a_compensation_without_a_payment_has_nothing_to_give_back() {
        let m = Memory::default();
        let out = apply(&m, &provider::SandboxProvider, PaymentMove::Refund, input())
            .await
            .unwrap();
        assert_eq!((out.status, out.changed), (Voided, false));
        assert!(m.events.lock().unwrap().is_empty());
    }
}
