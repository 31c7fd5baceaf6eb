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
    fn envelope<T: shared::events::DomainEvent>(&self, data: T) -> Envelope<T> {
        let correlation = self
            .correlation_id
            .clone()
            .unwrap_or_else(|| self.order_id.clone());
        Envelope::new(
            data,
            shared::time::now(),
            &correlation,
            Some(&self.order_id),
        )
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

/// What a payment step does, decided from where the payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do: the step (or what it stands for) already happened, or there is
    /// nothing to give back. The payment stays where it is.
    Done,
    /// Make this move (the step itself, or the compensation that fits the payment).
    Move(PaymentMove),
    /// The step cannot happen from here (`PaymentStateInvalid`).
    Invalid,
}

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
    /// payment). A capture happens only from `AUTHORIZED`.
    pub fn plan(self, current: Option<PaymentStatus>) -> Plan {
        use PaymentStatus::*;
        match (self, current) {
            (PaymentMove::Capture, Some(Authorized)) => Plan::Move(PaymentMove::Capture),
            (PaymentMove::Capture, Some(Captured)) => Plan::Done,
            (PaymentMove::Capture, _) => Plan::Invalid,
            (PaymentMove::Void | PaymentMove::Refund, Some(Authorized)) => {
                Plan::Move(PaymentMove::Void)
            }
            (PaymentMove::Void | PaymentMove::Refund, Some(Captured)) => {
                Plan::Move(PaymentMove::Refund)
            }
            (
                PaymentMove::Void | PaymentMove::Refund,
                None | Some(Voided | Refunded | Declined),
            ) => Plan::Done,
        }
    }
}

/// Steps `payments-capture`, `payments-void`, `payments-refund`, decided by
/// [`PaymentMove::plan`]: a compensation finds nothing to do when no money is held, and
/// gives back what is held however it is held.
pub async fn apply(
    store: &PaymentStore,
    provider: &impl PaymentProvider,
    requested: PaymentMove,
    input: PaymentStepInput,
) -> Result<PaymentOutcome, StepError> {
    let payment = store.get(&input.order_id).await?;
    let step = match requested.plan(payment.as_ref().map(|p| p.status)) {
        Plan::Move(step) => step,
        Plan::Done => {
            // No payment: nothing was ever held; it answers as voided.
            let status = payment.map_or(PaymentStatus::Voided, |p| p.status);
            return Ok(outcome(&input.order_id, status, false));
        }
        Plan::Invalid => {
            return Err(StepError::business(
                INVALID_STATE,
                match payment {
                    Some(p) => format!(
                        "payment of {} is {:?}, cannot {requested:?}",
                        input.order_id, p.status
                    ),
                    None => format!("order {} has no payment", input.order_id),
                },
            ));
        }
    };
    let Some(payment) = payment else {
        return Err(StepError::transient("a planned move without a payment"));
    };
    let (from, to) = step.states();
    let auth = Authorization {
        reference: payment.provider_reference.clone().unwrap_or_default(),
    };
    let key = &input.order_id;
    let data = (
        payment.order_id.clone(),
        payment.payment_id.clone(),
        payment.amount,
    );
    let event = match step {
        PaymentMove::Capture => {
            provider
                .capture(key, &auth, &payment.amount)
                .await
                .map_err(provider_error)?;
            store.outbox().put(&input.envelope(PaymentCaptured {
                order_id: data.0,
                payment_id: data.1,
                amount: data.2,
            }))?
        }
        PaymentMove::Void => {
            provider.void(key, &auth).await.map_err(provider_error)?;
            store.outbox().put(&input.envelope(PaymentVoided {
                order_id: data.0,
                payment_id: data.1,
                amount: data.2,
            }))?
        }
        PaymentMove::Refund => {
            provider
                .refund(key, &auth, &payment.amount)
                .await
                .map_err(provider_error)?;
            store.outbox().put(&input.envelope(PaymentRefunded {
                order_id: data.0,
                payment_id: data.1,
                amount: data.2,
            }))?
        }
    };
    let token = format!("{}-{step:?}", input.order_id);
    if store
        .transition(&input.order_id, (from, to), event, &token)
        .await?
    {
        Ok(outcome(&input.order_id, to, true))
    } else {
        let now = store.get(&input.order_id).await?.map(|p| p.status);
        match now {
            Some(s) if s == to => Ok(outcome(&input.order_id, to, false)),
            other => Err(StepError::transient(format!(
                "payment of {} moved to {other:?} concurrently",
                input.order_id
            ))),
        }
    }
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
                    Plan::Done => current,
                    Plan::Move(m) => {
                        let (from, to) = m.states();
                        assert_eq!(Some(from), current, "{step:?} from {current:?}");
                        Some(to)
                    }
                    Plan::Invalid => panic!("{step:?} refused {current:?}"),
                };
                assert!(
                    !matches!(after, Some(Authorized | Captured)),
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
        assert_eq!(PaymentMove::Capture.plan(Some(Captured)), Plan::Done);
        for current in [None, Some(Voided), Some(Refunded), Some(Declined)] {
            assert_eq!(
                PaymentMove::Capture.plan(current),
                Plan::Invalid,
                "{current:?}"
            );
        }
    }
}
