//! The payment provider, as a port, and the sandbox provider of API.md, which behaves as
//! payment companies' test modes do: the token decides the outcome.

use shared::money::Money;
use std::future::Future;

/// What the provider can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The card was declined; the reason is the provider's.
    #[error("declined: {0}")]
    Declined(String),
    /// The capture of an authorization failed.
    #[error("capture failed: {0}")]
    CaptureFailed(String),
    /// No answer in time: worth retrying.
    #[error("provider timed out")]
    Timeout,
}

/// An authorization the provider granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The provider's reference for later capture, void or refund.
    pub reference: String,
}

/// A payment provider. Every call carries our idempotency key (the order id), as real
/// providers accept, so a retried call never charges twice.
pub trait PaymentProvider: Send + Sync {
    /// Holds `amount` on the card behind `token`.
    fn authorize(
        &self,
        key: &str,
        token: &str,
        amount: &Money,
    ) -> impl Future<Output = Result<Authorization, ProviderError>> + Send;
    /// Takes the held amount.
    fn capture(
        &self,
        key: &str,
        authorization: &Authorization,
        amount: &Money,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// Lets the hold go.
    fn void(
        &self,
        key: &str,
        authorization: &Authorization,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// Gives a captured amount back.
    fn refund(
        &self,
        key: &str,
        authorization: &Authorization,
        amount: &Money,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
}

/// The sandbox: `tok_declined` and `tok_insufficient_funds` decline, `tok_timeout` times
/// out, `tok_capture_fails` authorizes and then fails at capture; any other token
/// authorizes. The reference carries the token so capture knows how to behave.
#[derive(Debug, Clone, Default)]
pub struct SandboxProvider;

const CAPTURE_FAILS: &str = "tok_capture_fails";

impl PaymentProvider for SandboxProvider {
    async fn authorize(
        &self,
        key: &str,
        token: &str,
        _amount: &Money,
    ) -> Result<Authorization, ProviderError> {
        match token {
            "tok_declined" => Err(ProviderError::Declined("card_declined".into())),
            "tok_insufficient_funds" => Err(ProviderError::Declined("insufficient_funds".into())),
            "tok_timeout" => Err(ProviderError::Timeout),
            _ => Ok(Authorization {
                reference: format!("sandbox_{key}_{token}"),
            }),
        }
    }

    async fn capture(
        &self,
        _key: &str,
        authorization: &Authorization,
        _amount: &Money,
    ) -> Result<(), ProviderError> {
        if authorization.reference.ends_with(CAPTURE_FAILS) {
            Err(ProviderError::CaptureFailed("authorization_expired".into()))
        } else {
            Ok(())
        }
    }

    async fn void(&self, _key: &str, _authorization: &Authorization) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn refund(
        &self,
        _key: &str,
        _authorization: &Authorization,
        _amount: &Money,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sandbox_answers_by_token() {
        let p = SandboxProvider;
        let eur = Money::parse("10", "EUR").unwrap();
        assert!(p.authorize("o1", "tok_visa", &eur).await.is_ok());
        assert!(p.authorize("o1", "tok_anything", &eur).await.is_ok());
        assert_eq!(
            p.authorize("o1", "tok_declined", &eur).await,
            Err(ProviderError::Declined("card_declined".into()))
        );
        assert_eq!(
            p.authorize("o1", "tok_insufficient_funds", &eur).await,
            Err(ProviderError::Declined("insufficient_funds".into()))
        );
        assert_eq!(
            p.authorize("o1", "tok_timeout", &eur).await,
            Err(ProviderError::Timeout)
        );
        let auth = p.authorize("o1", "tok_capture_fails", &eur).await.unwrap();
        assert!(matches!(
            p.capture("o1", &auth, &eur).await,
            Err(ProviderError::CaptureFailed(_))
        ));
        let auth = p.authorize("o1", "tok_visa", &eur).await.unwrap();
        assert!(p.capture("o1", &auth, &eur).await.is_ok());
    }
}
