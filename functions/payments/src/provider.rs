//! The payment provider, as a port: a payment intent per order, created (nothing held),
//! confirmed (the hold), then captured, cancelled (the hold let go) or refunded, each call
//! with its own idempotency key (`<order_id>-<operation>`), as Stripe and Adyen bind a key
//! to one request. The adapter of a real provider is [`crate::stripe`]; the sandbox here
//! is the in-memory provider of the unit tests, whose faults they choose.

use shared::money::Money;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// Where an intent is at the provider (Stripe's PaymentIntent statuses we meet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentStatus {
    /// Created, nothing held yet.
    RequiresConfirmation,
    /// The amount is held on the card.
    RequiresCapture,
    /// The held amount was taken.
    Succeeded,
    /// Let go (or never held).
    Canceled,
    /// The card was declined; nothing is held.
    RequiresPaymentMethod,
    /// A status our flow never puts an intent in (e.g. `requires_action`, `processing`).
    Other(String),
}

impl IntentStatus {
    /// Stripe's name of a status.
    pub fn from_stripe(status: &str) -> Self {
        match status {
            "requires_confirmation" => Self::RequiresConfirmation,
            "requires_capture" => Self::RequiresCapture,
            "succeeded" => Self::Succeeded,
            "canceled" => Self::Canceled,
            "requires_payment_method" => Self::RequiresPaymentMethod,
            other => Self::Other(other.to_owned()),
        }
    }

    /// True when money is held or taken.
    pub fn holds_money(&self) -> bool {
        matches!(self, Self::RequiresCapture | Self::Succeeded)
    }
}

/// An intent as the provider answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The provider's id (`pi_...`): the payment's `provider_reference`.
    pub id: String,
    /// Where it is.
    pub status: IntentStatus,
    /// What was refunded of it, in minor units.
    pub amount_refunded: i64,
}

/// What the provider can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The card was declined; the reason is the provider's (`insufficient_funds`, ...).
    #[error("declined: {0}")]
    Declined(String),
    /// The capture of an authorization was refused (e.g. the authorization expired).
    #[error("capture failed: {0}")]
    CaptureFailed(String),
    /// No answer in time (or a 5xx, which Stripe calls indeterminate): the call may or may
    /// not have happened. Retried with the same key, the provider answers what it did (or
    /// does it now).
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// The provider did nothing: it rate-limited the call (429), could not be reached, or
    /// the circuit breaker is open and the call was not made.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The intent is not in a state for this call (Stripe's
    /// `payment_intent_unexpected_state`): the caller reads it and decides.
    #[error("the intent is in another state: {0}")]
    UnexpectedState(String),
    /// The provider refused our request as malformed or unauthorized: a fault on our side
    /// (a configuration error or a bug), not the customer's.
    #[error("the payment provider refused the request: {0}")]
    Rejected(String),
}

/// The idempotency key of one operation on one order's payment: each call of the flow has
/// its own, so a retry repeats only itself.
pub fn idempotency_key(order_id: &str, operation: &str) -> String {
    format!("{order_id}-{operation}")
}

/// A payment provider. Every call that changes something carries
/// [`idempotency_key`]`(order_id, operation)`, so a retried call never acts twice.
pub trait PaymentProvider: Send + Sync {
    /// Creates the order's intent for `amount`, paid with `token` (operation `intent`):
    /// nothing is held yet. Its id is stored before anything is held, so a hold always
    /// has a payment row that names it.
    fn create_intent(
        &self,
        order_id: &str,
        token: &str,
        amount: &Money,
    ) -> impl Future<Output = Result<Intent, ProviderError>> + Send;
    /// Holds the amount (operation `authorize`): `RequiresCapture`, or `Declined`.
    fn confirm(
        &self,
        order_id: &str,
        intent_id: &str,
    ) -> impl Future<Output = Result<Intent, ProviderError>> + Send;
    /// Takes the held amount (operation `capture`).
    fn capture(
        &self,
        order_id: &str,
        intent_id: &str,
    ) -> impl Future<Output = Result<Intent, ProviderError>> + Send;
    /// Lets the hold go, or cancels an intent never confirmed (operation `void`).
    fn cancel(
        &self,
        order_id: &str,
        intent_id: &str,
    ) -> impl Future<Output = Result<Intent, ProviderError>> + Send;
    /// Gives `amount` of a captured intent back (operation `refund`).
    fn refund(
        &self,
        order_id: &str,
        intent_id: &str,
        amount: &Money,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// Where an intent is now (a read; no key).
    fn retrieve(
        &self,
        intent_id: &str,
    ) -> impl Future<Output = Result<Intent, ProviderError>> + Send;
}

/// The unit tests' provider: intents in memory, behaving as Stripe's test mode does with
/// the tokens of API.md (`tok_declined`, `tok_insufficient_funds` decline at confirmation,
/// `tok_timeout` never answers a confirmation and does nothing, `tok_capture_fails` is
/// refused at capture), plus faults the test sets: [`SandboxProvider::lose_next`] makes
/// the next call of an operation act and lose its answer.
#[derive(Debug, Default)]
pub struct SandboxProvider {
    state: Mutex<Sandbox>,
}

#[derive(Debug)]
struct Held {
    order_id: String,
    token: String,
    intent: Intent,
}

#[derive(Debug, Default)]
struct Sandbox {
    intents: HashMap<String, Held>,
    /// Answers already given, by idempotency key (a replay answers them again).
    answered: HashMap<String, Result<Intent, ProviderError>>,
    lose: HashMap<&'static str, u32>,
    calls: Vec<String>,
}

impl SandboxProvider {
    /// The next `times` calls of `operation` act, then answer [`ProviderError::Timeout`].
    pub fn lose_next(&self, operation: &'static str, times: u32) {
        self.lock().lose.insert(operation, times);
    }

    /// Every intent of the sandbox: (order id, intent).
    pub fn intents(&self) -> Vec<(String, Intent)> {
        let mut all: Vec<(String, Intent)> = self
            .lock()
            .intents
            .values()
            .map(|held| (held.order_id.clone(), held.intent.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The operations called, in order (`authorize`, `capture`, ...), replays included.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sandbox> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `op` once per key; a lost answer still acts.
    fn call(
        &self,
        order_id: &str,
        operation: &'static str,
        op: impl FnOnce(&mut Sandbox) -> Result<Intent, ProviderError>,
    ) -> Result<Intent, ProviderError> {
        let key = idempotency_key(order_id, operation);
        let mut s = self.lock();
        s.calls.push(operation.to_owned());
        let saved = s.answered.get(&key).cloned();
        let answer = match saved {
            Some(saved) => saved,
            None => {
                let answer = op(&mut s);
                if answer != Err(ProviderError::Timeout) {
                    s.answered.insert(key, answer.clone());
                }
                answer
            }
        };
        match s.lose.get_mut(operation) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(ProviderError::Timeout)
            }
            _ => answer,
        }
    }
}

fn held<'a>(s: &'a mut Sandbox, id: &str) -> Result<&'a mut Held, ProviderError> {
    s.intents
        .get_mut(id)
        .ok_or_else(|| ProviderError::Rejected(format!("no intent {id}")))
}

const CAPTURE_FAILS: &str = "tok_capture_fails";
const TIMES_OUT: &str = "tok_timeout";

impl PaymentProvider for SandboxProvider {
    async fn create_intent(
        &self,
        order_id: &str,
        token: &str,
        _amount: &Money,
    ) -> Result<Intent, ProviderError> {
        self.call(order_id, "intent", |s| {
            let intent = Intent {
                id: format!("pi_sandbox_{}", s.intents.len() + 1),
                status: IntentStatus::RequiresConfirmation,
                amount_refunded: 0,
            };
            let held = Held {
                order_id: order_id.to_owned(),
                token: token.to_owned(),
                intent: intent.clone(),
            };
            s.intents.insert(intent.id.clone(), held);
            Ok(intent)
        })
    }

    async fn confirm(&self, order_id: &str, intent_id: &str) -> Result<Intent, ProviderError> {
        self.call(order_id, "authorize", |s| {
            let Held { token, intent, .. } = held(s, intent_id)?;
            if intent.status != IntentStatus::RequiresConfirmation {
                return Err(ProviderError::UnexpectedState(format!(
                    "{:?}",
                    intent.status
                )));
            }
            let decline = match token.as_str() {
                "tok_declined" => Some("generic_decline"),
                "tok_insufficient_funds" => Some("insufficient_funds"),
                TIMES_OUT => return Err(ProviderError::Timeout),
                _ => None,
            };
            if let Some(reason) = decline {
                intent.status = IntentStatus::RequiresPaymentMethod;
                return Err(ProviderError::Declined(reason.to_owned()));
            }
            intent.status = IntentStatus::RequiresCapture;
            Ok(intent.clone())
        })
    }

    async fn capture(&self, order_id: &str, intent_id: &str) -> Result<Intent, ProviderError> {
        self.call(order_id, "capture", |s| {
            let Held { token, intent, .. } = held(s, intent_id)?;
            if intent.status != IntentStatus::RequiresCapture {
                return Err(ProviderError::UnexpectedState(format!(
                    "{:?}",
                    intent.status
                )));
            }
            if token == CAPTURE_FAILS {
                return Err(ProviderError::CaptureFailed(
                    "charge_expired_for_capture".into(),
                ));
            }
            intent.status = IntentStatus::Succeeded;
            Ok(intent.clone())
        })
    }

    async fn cancel(&self, order_id: &str, intent_id: &str) -> Result<Intent, ProviderError> {
        self.call(order_id, "void", |s| {
            let intent = &mut held(s, intent_id)?.intent;
            if matches!(
                intent.status,
                IntentStatus::Succeeded | IntentStatus::Canceled
            ) {
                return Err(ProviderError::UnexpectedState(format!(
                    "{:?}",
                    intent.status
                )));
            }
            intent.status = IntentStatus::Canceled;
            Ok(intent.clone())
        })
    }

    async fn refund(
        &self,
        order_id: &str,
        intent_id: &str,
        amount: &Money,
    ) -> Result<(), ProviderError> {
        let minor = amount.minor();
        self.call(order_id, "refund", |s| {
            let intent = &mut held(s, intent_id)?.intent;
            if intent.status != IntentStatus::Succeeded {
                return Err(ProviderError::UnexpectedState(format!(
                    "{:?}",
                    intent.status
                )));
            }
            intent.amount_refunded += minor;
            Ok(intent.clone())
        })
        .map(|_| ())
    }

    async fn retrieve(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        let mut s = self.lock();
        held(&mut s, intent_id).map(|h| h.intent.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Money {
        Money::parse("10", "EUR").unwrap()
    }

    #[tokio::test]
    async fn the_sandbox_answers_by_token() {
        let p = SandboxProvider::default();
        for (token, expected) in [
            ("tok_visa", Ok(IntentStatus::RequiresCapture)),
            ("tok_anything", Ok(IntentStatus::RequiresCapture)),
            (
                "tok_declined",
                Err(ProviderError::Declined("generic_decline".into())),
            ),
            (
                "tok_insufficient_funds",
                Err(ProviderError::Declined("insufficient_funds".into())),
            ),
            ("tok_timeout", Err(ProviderError::Timeout)),
        ] {
            let order = format!("o-{token}");
            let intent = p.create_intent(&order, token, &eur()).await.unwrap();
            assert_eq!(intent.status, IntentStatus::RequiresConfirmation);
            let got = p.confirm(&order, &intent.id).await.map(|i| i.status);
            assert_eq!(got, expected, "{token}");
        }
        let intent = p
            .create_intent("o-cf", CAPTURE_FAILS, &eur())
            .await
            .unwrap();
        p.confirm("o-cf", &intent.id).await.unwrap();
        assert_eq!(
            p.capture("o-cf", &intent.id).await,
            Err(ProviderError::CaptureFailed(
                "charge_expired_for_capture".into()
            ))
        );
    }

    #[tokio::test]
    async fn a_key_acts_once_and_a_lost_answer_still_acts() {
        let p = SandboxProvider::default();
        let intent = p.create_intent("o1", "tok_visa", &eur()).await.unwrap();
        assert_eq!(
            p.create_intent("o1", "tok_visa", &eur()).await.unwrap(),
            intent
        );
        p.lose_next("authorize", 1);
        assert_eq!(
            p.confirm("o1", &intent.id).await,
            Err(ProviderError::Timeout)
        );
        assert_eq!(
            p.retrieve(&intent.id).await.unwrap().status,
            IntentStatus::RequiresCapture
        );
        // The retry with the same key answers what was done.
        assert_eq!(
            p.confirm("o1", &intent.id).await.unwrap().status,
            IntentStatus::RequiresCapture
        );
        assert_eq!(p.intents().len(), 1);
        assert_eq!(idempotency_key("o1", "capture"), "o1-capture");
    }
}
