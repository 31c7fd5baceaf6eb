//! The payments service: the saga's payment steps (authorize, capture, void, refund),
//! each idempotent by order id, and `GET /orders/{order_id}/payment`.
//!
//! Authorizing is two calls to the provider, so that no money is ever held without a row
//! that names the hold: the intent is created (nothing held) and its id written as a
//! `PENDING` payment, then the intent is confirmed (the hold) and the payment settles
//! `AUTHORIZED` or `DECLINED` with its event. A lost answer is resolved, never assumed: a
//! retried authorize confirms the same intent again under the same idempotency key (the
//! provider answers what it did), and a compensation that finds the payment `PENDING`
//! cancels the intent at the provider, whatever happened to the confirmation. A
//! compensation that finds no payment at all seals the order with a `VOIDED` payment, so an
//! authorize that outlives it cannot hold money afterwards.
//!
//! Capture, void and refund run on the step kernel ([`shared::step::apply`]): read the
//! payment, call the provider (each operation with its own idempotency key), write the move
//! with its event in one transaction guarded by the status read.

pub mod breaker;
pub mod domain;
pub mod fraud_check;
pub mod provider;
pub mod store;
pub mod stripe;

use domain::{Payment, PaymentStatus, PaymentView};
use provider::{IntentStatus, PaymentProvider, ProviderError};
use serde::Deserialize;
use shared::events::{
    PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentRefunded, PaymentVoided,
};
use shared::ids::{OrderId, UserId};
use shared::money::Money;
use shared::step::StepError;
use store::PaymentStore;

/// `errorType`: the provider declined (card declined, insufficient funds).
pub const PAYMENT_DECLINED: &str = "PaymentDeclined";
/// `errorType`: capturing the authorization failed.
pub const CAPTURE_FAILED: &str = "PaymentCaptureFailed";
/// `errorType`: the provider did not answer; retried, then the saga gives up.
pub const PROVIDER_TIMEOUT: &str = "PaymentProviderTimeout";
/// `errorType`: the provider did nothing and cannot now (its circuit breaker is open, it
/// rate-limited us, it cannot be reached): the saga rejects the order at once.
pub const PAYMENT_UNAVAILABLE: &str = "PaymentUnavailable";
/// `errorType`: the payment is not in a state this step can move.
pub const INVALID_STATE: &str = "PaymentStateInvalid";

/// What the state machine hands a payment step (extra fields are ignored).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct PaymentStepInput {
    /// The order.
    pub order_id: OrderId,
    /// The request's correlation id, carried into the events.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The customer (place-order's compensations pass it: a seal names them).
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The order's total (place-order's compensations pass it: a seal records it).
    #[serde(default)]
    pub total: Option<Money>,
}

/// What `AuthorizePayment` hands `payments-authorize`: the order, and what paying for it
/// needs, resolved at intake and carried by the saga's input
/// ([`shared::saga::SagaInput`]), so the payments service reads no orders.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct AuthorizeInput {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// The amount to hold.
    pub total: Money,
    /// The customer's payment method at the provider, as given at intake.
    pub payment_token: String,
    /// The request's correlation id, carried into the events.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl AuthorizeInput {
    /// The same order as the other payment steps take it.
    pub fn step(&self) -> PaymentStepInput {
        PaymentStepInput {
            order_id: self.order_id.clone(),
            correlation_id: self.correlation_id.clone(),
            user_id: Some(self.user_id.clone()),
            total: Some(self.total),
        }
    }
}

/// What a payment step answers the state machine.
pub type PaymentOutcome = shared::step::Outcome<PaymentStatus>;

/// `payments-authorize`'s contract (`AuthorizePayment`).
pub const AUTHORIZE: shared::step::Contract<AuthorizeInput, PaymentOutcome> =
    shared::step::Contract::new("payments-authorize");
/// `payments-capture`'s contract (`CapturePayment`).
pub const CAPTURE: shared::step::Contract<PaymentStepInput, PaymentOutcome> =
    shared::step::Contract::new("payments-capture");
/// `payments-void`'s contract (`VoidPayment`).
pub const VOID: shared::step::Contract<PaymentStepInput, PaymentOutcome> =
    shared::step::Contract::new("payments-void");
/// `payments-refund`'s contract (`RefundAfterCapture`, `RefundPayment`).
pub const REFUND: shared::step::Contract<PaymentStepInput, PaymentOutcome> =
    shared::step::Contract::new("payments-refund");

fn outcome(order_id: &OrderId, status: PaymentStatus, changed: bool) -> PaymentOutcome {
    PaymentOutcome {
        order_id: order_id.clone(),
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
        ProviderError::Unavailable(why) => StepError::business(PAYMENT_UNAVAILABLE, why),
        other @ (ProviderError::UnexpectedState(_) | ProviderError::Rejected(_)) => {
            StepError::transient(other)
        }
    }
}

impl PaymentStepInput {
    fn trace(&self) -> shared::step::Trace {
        shared::step::Trace::of(&self.order_id, self.correlation_id.as_deref())
    }
}

/// The answer a step gives for a payment already in `status`.
fn answer_for(
    order_id: &OrderId,
    payment: &Payment,
    changed: bool,
) -> Result<PaymentOutcome, StepError> {
    match payment.status {
        PaymentStatus::Declined => Err(StepError::business(
            PAYMENT_DECLINED,
            payment.decline_reason.clone().unwrap_or_default(),
        )),
        PaymentStatus::Voided | PaymentStatus::Refunded => Err(StepError::business(
            INVALID_STATE,
            format!(
                "the payment of {order_id} is {:?}: the order was given up",
                payment.status
            ),
        )),
        PaymentStatus::Pending => Err(StepError::transient("the payment is still pending")),
        status => Ok(outcome(order_id, status, changed)),
    }
}

/// Step `payments-authorize`: holds the order's total. `PaymentDeclined` (recorded, and
/// given again on a retry), `PaymentProviderTimeout` (the outcome unknown: a retry asks
/// again under the same key), `PaymentUnavailable` (the provider is down).
pub async fn authorize(
    store: &PaymentStore,
    provider: &impl PaymentProvider,
    order: AuthorizeInput,
) -> Result<PaymentOutcome, StepError> {
    let input = order.step();
    let order_id = &input.order_id;
    let payment = match store.get(order_id).await? {
        Some(payment) => payment,
        None => {
            let intent = provider
                .create_intent(order_id, &order.payment_token, &order.total)
                .await
                .map_err(provider_error)?;
            let now = shared::time::now();
            let pending = Payment {
                order_id: order_id.clone(),
                payment_id: ulid::Ulid::new().to_string(),
                user_id: order.user_id,
                status: PaymentStatus::Pending,
                amount: order.total,
                provider_reference: Some(intent.id),
                decline_reason: None,
                created_at: now,
                updated_at: now,
            };
            if store.insert(&pending, None).await? {
                pending
            } else {
                // Another attempt wrote first (the same intent, by the same key), or a
                // compensation sealed the order: go on from what is there.
                store
                    .get(order_id)
                    .await?
                    .ok_or_else(|| StepError::transient("the payment vanished"))?
            }
        }
    };
    if payment.status != PaymentStatus::Pending {
        return answer_for(order_id, &payment, false);
    }
    confirm(store, provider, &input, payment).await
}

/// Confirms a `PENDING` payment's intent and settles the payment from the answer.
async fn confirm(
    store: &PaymentStore,
    provider: &impl PaymentProvider,
    input: &PaymentStepInput,
    mut payment: Payment,
) -> Result<PaymentOutcome, StepError> {
    let order_id = &input.order_id;
    let intent_id = payment
        .provider_reference
        .clone()
        .ok_or_else(|| StepError::transient("a pending payment without its intent"))?;
    let confirmed = match provider.confirm(order_id, &intent_id).await {
        // The intent is past confirmation (confirmed before, or cancelled by a
        // compensation): where it is decides.
        Err(ProviderError::UnexpectedState(_)) => provider.retrieve(&intent_id).await,
        other => other,
    };
    match confirmed {
        Ok(intent) => match intent.status {
            IntentStatus::RequiresCapture | IntentStatus::Succeeded => {
                payment.status = PaymentStatus::Authorized;
            }
            IntentStatus::RequiresPaymentMethod => {
                payment.status = PaymentStatus::Declined;
                payment.decline_reason = Some("card_declined".into());
            }
            IntentStatus::Canceled => {
                // A compensation let it go while this attempt ran: answer as the row says.
                let now = store.get(order_id).await?.unwrap_or(payment);
                return answer_for(order_id, &now, false);
            }
            other => {
                return Err(StepError::transient(format!(
                    "intent {intent_id} is {other:?} after confirmation"
                )));
            }
        },
        Err(ProviderError::Declined(reason)) => {
            payment.status = PaymentStatus::Declined;
            payment.decline_reason = Some(reason);
        }
        Err(other) => return Err(provider_error(other)),
    }
    let trace = input.trace();
    let event = match payment.status {
        PaymentStatus::Authorized => trace.record(PaymentAuthorized {
            order_id: payment.order_id.clone(),
            user_id: payment.user_id.clone(),
            payment_id: payment.payment_id.clone(),
            amount: payment.amount,
        })?,
        _ => trace.record(PaymentDeclined {
            order_id: payment.order_id.clone(),
            user_id: payment.user_id.clone(),
            payment_id: payment.payment_id.clone(),
            amount: payment.amount,
            reason: payment.decline_reason.clone().unwrap_or_default(),
        })?,
    };
    if store
        .settle(&payment, store.outbox().put_record(&event)?)
        .await?
    {
        return answer_for(order_id, &payment, true);
    }
    // No longer PENDING: another attempt settled it, or a compensation voided it while
    // the provider held the money for this one; then the hold is let go here too (under
    // the void's own key, so it repeats the compensation's call if that came first).
    let now = store
        .get(order_id)
        .await?
        .ok_or_else(|| StepError::transient("the payment vanished"))?;
    if payment.status == PaymentStatus::Authorized
        && matches!(now.status, PaymentStatus::Voided | PaymentStatus::Refunded)
    {
        tracing::warn!(
            order_id = %order_id,
            intent_id,
            "a late authorization: the order was given up, the hold is let go"
        );
        match provider.cancel(order_id, &intent_id).await {
            Ok(_) | Err(ProviderError::UnexpectedState(_)) => {}
            Err(other) => return Err(provider_error(other)),
        }
    }
    answer_for(order_id, &now, false)
}

/// The moves after authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMove {
    /// `AUTHORIZED → CAPTURED`.
    Capture,
    /// `PENDING | AUTHORIZED → VOIDED` (compensation; a captured payment is refunded
    /// instead, and so is one the provider captured though its answer was lost).
    Void,
    /// `CAPTURED → REFUNDED` (compensation after capture, cancellation; a payment still
    /// only authorized is voided instead).
    Refund,
    /// No payment → `VOIDED`: a compensation seals the order, so that an authorize that
    /// outlives it finds the order given up and holds nothing.
    Seal,
}

/// What a payment step does, decided from where the payment is (the step kernel's
/// [`shared::step::Plan`]).
pub type Plan = shared::step::Plan<PaymentMove, PaymentStatus>;

impl PaymentMove {
    /// The status a move ends in when the provider did what was asked.
    pub fn target(self) -> PaymentStatus {
        match self {
            PaymentMove::Capture => PaymentStatus::Captured,
            PaymentMove::Void | PaymentMove::Seal => PaymentStatus::Voided,
            PaymentMove::Refund => PaymentStatus::Refunded,
        }
    }

    /// The decision of a step for a payment in `current` (`None`: no payment yet);
    /// `can_seal`: the step knows the order's customer and total (place-order's
    /// compensations), so it can seal an order that has no payment.
    ///
    /// The compensations accept every status they can meet, so a saga that compensates
    /// after a lost answer always converges: a void of a payment whose capture happened
    /// (its answer lost) refunds it, a refund of a payment never captured voids it, a
    /// pending payment (its confirmation unanswered) has its intent cancelled, and either
    /// finds nothing to do when no money is held (declined, voided, refunded). A capture
    /// happens only from `AUTHORIZED`.
    pub fn plan(self, current: Option<PaymentStatus>, can_seal: bool) -> Plan {
        use PaymentStatus::*;
        match (self, current) {
            (PaymentMove::Capture, Some(Authorized)) => Plan::Move(PaymentMove::Capture),
            (PaymentMove::Capture, Some(Captured)) => Plan::Done(Captured),
            (PaymentMove::Capture, Some(other)) => {
                Plan::Invalid(format!("the payment is {other:?}, cannot Capture"))
            }
            (PaymentMove::Capture | PaymentMove::Seal, None) => {
                Plan::Invalid("the order has no payment".into())
            }
            (PaymentMove::Seal, Some(s)) => Plan::Done(s),
            (PaymentMove::Void | PaymentMove::Refund, Some(Authorized | Pending)) => {
                Plan::Move(PaymentMove::Void)
            }
            (PaymentMove::Void | PaymentMove::Refund, Some(Captured)) => {
                Plan::Move(PaymentMove::Refund)
            }
            (PaymentMove::Void | PaymentMove::Refund, None) if can_seal => {
                Plan::Move(PaymentMove::Seal)
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
        PaymentMove::target(*self)
    }
}

/// What a move did at the provider: where the money ended, and for a seal, the payment
/// that seals the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// `CAPTURED`, `VOIDED` or `REFUNDED`.
    pub status: PaymentStatus,
    /// The `VOIDED` payment a seal writes.
    pub seal: Option<Payment>,
}

/// The event of `payment` ending in `status` (none for a seal: no money moved).
pub fn move_event(
    payment: &Payment,
    status: PaymentStatus,
    trace: &shared::step::Trace,
) -> Result<Option<shared::outbox::OutboxRecord>, shared::dynamo::StoreError> {
    let (order_id, user_id, payment_id, amount) = (
        payment.order_id.clone(),
        payment.user_id.clone(),
        payment.payment_id.clone(),
        payment.amount,
    );
    Ok(Some(match status {
        PaymentStatus::Captured => trace.record(PaymentCaptured {
            order_id,
            user_id,
            payment_id,
            amount,
        })?,
        PaymentStatus::Voided => trace.record(PaymentVoided {
            order_id,
            user_id,
            payment_id,
            amount,
        })?,
        PaymentStatus::Refunded => trace.record(PaymentRefunded {
            order_id,
            user_id,
            payment_id,
            amount,
        })?,
        _ => return Ok(None),
    }))
}

/// Runs a move at the provider; the status the money ended in.
async fn settle_at_provider(
    provider: &impl PaymentProvider,
    step: PaymentMove,
    payment: &Payment,
) -> Result<PaymentStatus, ProviderError> {
    let order_id = payment.order_id.as_str();
    // A payment written before its intent existed has none: nothing was ever held.
    let Some(intent_id) = payment.provider_reference.as_deref() else {
        return Ok(step.target());
    };
    match step {
        PaymentMove::Capture => match provider.capture(order_id, intent_id).await {
            Ok(_) => Ok(PaymentStatus::Captured),
            Err(ProviderError::UnexpectedState(why)) => {
                match provider.retrieve(intent_id).await?.status {
                    // Captured before, the answer lost (and the key forgotten).
                    IntentStatus::Succeeded => Ok(PaymentStatus::Captured),
                    other => Err(ProviderError::CaptureFailed(format!("{why} ({other:?})"))),
                }
            }
            Err(e) => Err(e),
        },
        PaymentMove::Void => match provider.cancel(order_id, intent_id).await {
            Ok(_) => Ok(PaymentStatus::Voided),
            Err(ProviderError::UnexpectedState(why)) => {
                match provider.retrieve(intent_id).await?.status {
                    IntentStatus::Canceled | IntentStatus::RequiresPaymentMethod => {
                        Ok(PaymentStatus::Voided)
                    }
                    // Captured, though the payment never heard: give it back.
                    IntentStatus::Succeeded => {
                        refund(provider, payment, intent_id).await?;
                        Ok(PaymentStatus::Refunded)
                    }
                    other => Err(ProviderError::UnexpectedState(format!("{why} ({other:?})"))),
                }
            }
            Err(e) => Err(e),
        },
        PaymentMove::Refund => {
            refund(provider, payment, intent_id).await?;
            Ok(PaymentStatus::Refunded)
        }
        PaymentMove::Seal => Ok(PaymentStatus::Voided),
    }
}

async fn refund(
    provider: &impl PaymentProvider,
    payment: &Payment,
    intent_id: &str,
) -> Result<(), ProviderError> {
    match provider
        .refund(&payment.order_id, intent_id, &payment.amount)
        .await
    {
        Err(ProviderError::UnexpectedState(why)) => {
            let intent = provider.retrieve(intent_id).await?;
            if intent.amount_refunded >= payment.amount.minor() {
                Ok(())
            } else {
                Err(ProviderError::UnexpectedState(why))
            }
        }
        other => other,
    }
}

/// Steps `payments-capture`, `payments-void`, `payments-refund`, decided by
/// [`PaymentMove::plan`] and run by the step kernel ([`shared::step::apply`]): the
/// provider is called (each operation with its own idempotency key) only for a move,
/// then the move is written with its event, guarded by the status read.
pub async fn apply(
    store: &impl shared::step::Ledger<Record = Payment, Move = PaymentMove, Effect = Settled>,
    provider: &impl PaymentProvider,
    requested: PaymentMove,
    input: PaymentStepInput,
) -> Result<PaymentOutcome, StepError> {
    let trace = input.trace();
    // A seal needs the order's customer and total: only place-order's compensations pass
    // them. It is written only when the plan is to seal.
    let seal = input
        .user_id
        .clone()
        .zip(input.total)
        .map(|(user_id, total)| {
            let (order_id, now) = (input.order_id.clone(), shared::time::now());
            move || Payment {
                order_id,
                payment_id: ulid::Ulid::new().to_string(),
                user_id,
                status: PaymentStatus::Voided,
                amount: total,
                provider_reference: None,
                decline_reason: None,
                created_at: now,
                updated_at: now,
            }
        });
    let can_seal = seal.is_some();
    let moved = shared::step::apply(
        store,
        &input.order_id,
        |payment| requested.plan(payment.map(|p| p.status), can_seal),
        |payment, step| {
            let (payment, step) = (payment.cloned(), *step);
            async move {
                if step == PaymentMove::Seal {
                    return Ok(Settled {
                        status: PaymentStatus::Voided,
                        seal: seal.map(|payment| payment()),
                    });
                }
                // Every other plan that moves has read a payment.
                let Some(payment) = payment else {
                    return Err(StepError::transient("a payment move without a payment"));
                };
                let status =
                    settle_at_provider(provider, step, &payment)
                        .await
                        .map_err(|e| match e {
                            // Past authorization the money is the customer's already: the
                            // saga retries until the provider is back, and a compensation until
                            // it has let the money go.
                            ProviderError::Unavailable(_) => StepError::transient(e),
                            ProviderError::Timeout if step != PaymentMove::Capture => {
                                StepError::transient(e)
                            }
                            e => provider_error(e),
                        })?;
                Ok(Settled { status, seal: None })
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
        // Not a payment yet: one whose authorization has not been answered (`PENDING`),
        // or the seal of an order given up before any (no intent at the provider).
        let payment = store
            .get(&order_id)
            .await?
            .filter(|p| p.status != PaymentStatus::Pending && p.provider_reference.is_some())
            .ok_or_else(not_found)?;
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

    /// The order of these tests.
    const O1: &str = "01JDZ000000000000000000001";
    use PaymentStatus::*;
    use provider::SandboxProvider;
    use std::collections::HashMap;
    use std::sync::Mutex;

    const EVERY: [Option<PaymentStatus>; 7] = [
        None,
        Some(Pending),
        Some(Authorized),
        Some(Captured),
        Some(Voided),
        Some(Refunded),
        Some(Declined),
    ];

    #[test]
    fn a_compensation_accepts_every_status_and_leaves_no_money_held() {
        for step in [PaymentMove::Void, PaymentMove::Refund] {
            for can_seal in [true, false] {
                for current in EVERY {
                    let after = match step.plan(current, can_seal) {
                        Plan::Done(s) => {
                            assert_eq!(current.unwrap_or(Voided), s, "{step:?} from {current:?}");
                            s
                        }
                        Plan::Move(m) => m.target(),
                        Plan::Invalid(why) => panic!("{step:?} refused {current:?}: {why}"),
                    };
                    assert!(
                        !matches!(after, Authorized | Captured | Pending),
                        "{step:?} from {current:?} leaves {after:?}"
                    );
                }
            }
        }
        assert_eq!(
            PaymentMove::Void.plan(None, true),
            Plan::Move(PaymentMove::Seal)
        );
    }

    #[test]
    fn a_void_after_a_lost_capture_answer_refunds() {
        assert_eq!(
            PaymentMove::Void.plan(Some(Captured), true),
            Plan::Move(PaymentMove::Refund)
        );
        assert_eq!(
            PaymentMove::Refund.plan(Some(Authorized), true),
            Plan::Move(PaymentMove::Void)
        );
        assert_eq!(
            PaymentMove::Void.plan(Some(Pending), false),
            Plan::Move(PaymentMove::Void)
        );
    }

    #[test]
    fn a_capture_happens_only_from_authorized_and_once() {
        assert_eq!(
            PaymentMove::Capture.plan(Some(Authorized), true),
            Plan::Move(PaymentMove::Capture)
        );
        assert_eq!(
            PaymentMove::Capture.plan(Some(Captured), true),
            Plan::Done(Captured)
        );
        for current in [
            None,
            Some(Pending),
            Some(Voided),
            Some(Refunded),
            Some(Declined),
        ] {
            assert!(
                matches!(PaymentMove::Capture.plan(current, true), Plan::Invalid(_)),
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
        type Effect = Settled;
        async fn read(&self, id: &str) -> Result<Option<Payment>, shared::dynamo::StoreError> {
            Ok(self.payments.lock().unwrap().get(id).cloned())
        }
        async fn write(
            &self,
            payment: Option<&Payment>,
            _step: &PaymentMove,
            settled: &Settled,
            trace: &shared::step::Trace,
        ) -> Result<bool, shared::dynamo::StoreError> {
            let mut all = self.payments.lock().unwrap();
            let Some(payment) = payment else {
                let seal = settled.seal.clone().unwrap();
                if all.contains_key(seal.order_id.as_str()) {
                    return Ok(false);
                }
                all.insert(seal.order_id.to_string(), seal);
                return Ok(true);
            };
            let stored = all.get_mut(payment.order_id.as_str()).unwrap();
            if stored.status != payment.status {
                return Ok(false);
            }
            stored.status = settled.status;
            if let Some(event) = move_event(payment, settled.status, trace)? {
                self.events.lock().unwrap().push(event.detail_type);
            }
            Ok(true)
        }
        fn landed(&self, _: &PaymentMove, settled: &Settled) -> PaymentStatus {
            settled.status
        }
    }

    fn payment(status: PaymentStatus, intent: Option<String>) -> Payment {
        let now = shared::time::now();
        Payment {
            order_id: O1.parse().unwrap(),
            payment_id: "p1".into(),
            user_id: "u1".parse().unwrap(),
            status,
            amount: Money::parse("12.00", "EUR").unwrap(),
            provider_reference: intent,
            decline_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// A ledger with one payment of order `o1`, whose intent the sandbox holds in
    /// `intent_status` (`None`: no payment).
    async fn with(status: Option<PaymentStatus>, sandbox: &SandboxProvider) -> Memory {
        let m = Memory::default();
        let Some(status) = status else { return m };
        let amount = Money::parse("12.00", "EUR").unwrap();
        let intent = sandbox
            .create_intent(O1, "tok_visa", &amount)
            .await
            .unwrap();
        if status != Pending {
            sandbox.confirm(O1, &intent.id).await.unwrap();
        }
        m.payments
            .lock()
            .unwrap()
            .insert(O1.into(), payment(status, Some(intent.id)));
        m
    }

    fn input() -> PaymentStepInput {
        PaymentStepInput {
            order_id: O1.parse().unwrap(),
            correlation_id: Some("c1".into()),
            user_id: Some("u1".parse().unwrap()),
            total: Some(Money::parse("12.00", "EUR").unwrap()),
        }
    }

    #[tokio::test]
    async fn capture_then_a_lost_answer_then_void_refunds_once() {
        let p = SandboxProvider::default();
        let m = with(Some(Authorized), &p).await;
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
        assert_eq!(p.intents()[0].1.amount_refunded, 1200);
        // Nothing captures a refunded payment.
        let refused = apply(&m, &p, PaymentMove::Capture, input())
            .await
            .unwrap_err();
        assert_eq!(refused.error_type, INVALID_STATE);
    }

    #[tokio::test]
    async fn a_void_of_a_payment_the_provider_captured_unheard_refunds_it() {
        let p = SandboxProvider::default();
        let m = with(Some(Authorized), &p).await;
        // The capture happened at the provider; its answer never reached the payment.
        p.lose_next("capture", 1);
        let lost = apply(&m, &p, PaymentMove::Capture, input())
            .await
            .unwrap_err();
        assert_eq!(lost.error_type, PROVIDER_TIMEOUT);
        let void = apply(&m, &p, PaymentMove::Void, input()).await.unwrap();
        assert_eq!((void.status, void.changed), (Refunded, true));
        let (_, intent) = &p.intents()[0];
        assert_eq!(
            (intent.status.clone(), intent.amount_refunded),
            (IntentStatus::Succeeded, 1200)
        );
    }

    #[tokio::test]
    async fn a_void_of_a_pending_payment_cancels_its_intent_confirmed_or_not() {
        for confirmed in [false, true] {
            let p = SandboxProvider::default();
            let m = with(Some(Pending), &p).await;
            if confirmed {
                // The confirmation happened; its answer was lost.
                let id = p.intents()[0].1.id.clone();
                p.confirm(O1, &id).await.unwrap();
            }
            let void = apply(&m, &p, PaymentMove::Void, input()).await.unwrap();
            assert_eq!((void.status, void.changed), (Voided, true));
            assert_eq!(
                p.intents()[0].1.status,
                IntentStatus::Canceled,
                "confirmed: {confirmed}"
            );
            assert_eq!(*m.events.lock().unwrap(), vec!["PaymentVoided"]);
        }
    }

    #[tokio::test]
    async fn a_compensation_without_a_payment_seals_the_order() {
        let p = SandboxProvider::default();
        let m = Memory::default();
        let out = apply(&m, &p, PaymentMove::Void, input()).await.unwrap();
        assert_eq!((out.status, out.changed), (Voided, true));
        let sealed = m.payments.lock().unwrap()[O1].clone();
        assert_eq!((sealed.status, sealed.provider_reference), (Voided, None));
        assert!(
            m.events.lock().unwrap().is_empty(),
            "no money moved, no event"
        );
        assert!(p.calls().is_empty(), "nothing to ask the provider");
        // Without the order's customer and total (cancel-order) there is nothing to seal with.
        let bare = PaymentStepInput {
            user_id: None,
            total: None,
            ..input()
        };
        let m = Memory::default();
        let out = apply(&m, &p, PaymentMove::Refund, bare).await.unwrap();
        assert_eq!((out.status, out.changed), (Voided, false));
    }
}
