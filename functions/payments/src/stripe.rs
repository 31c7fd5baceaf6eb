//! The Stripe adapter of the provider port: PaymentIntents with manual capture over HTTPS,
//! a small typed client for the six calls the flow makes (create, confirm, capture, cancel,
//! refund, retrieve), behind the circuit breaker ([`crate::breaker`]).
//!
//! - **Keys**: every POST carries `Idempotency-Key: <order_id>-<operation>`
//!   ([`crate::provider::idempotency_key`]); Stripe binds a key to one request, so the same
//!   key never serves two different calls, and a retry repeats only its own call.
//! - **Configuration**, read at cold start the same way locally and in AWS:
//!   `PAYMENT_PROVIDER_URL` (https://api.stripe.com in AWS, localstripe locally) and the secret
//!   key from Secrets Manager (`PAYMENT_PROVIDER_SECRET_ID`), never from the environment.
//! - **Time**: each attempt has [`Settings::attempt_timeout`] (and a connect timeout), at
//!   most [`Settings::attempts`] attempts, so a call ends well inside the function's timeout.
//! - **Retries** only where Stripe says a retry is safe: a connection error, a timeout (the
//!   key makes it safe), 409 (another request with the key is running), `Stripe-Should-Retry:
//!   true`, and 5xx; never a 4xx Stripe answered on purpose (a decline, a refusal of a state).
//! - **Test mode** (a `sk_test_` key): the tokens of API.md map to Stripe's test payment
//!   methods (`tok_declined` to `pm_card_visa_chargeDeclined`, ...). `tok_timeout` and
//!   `tok_capture_fails` have no Stripe test card; they map to payment methods only the local
//!   provider knows (local/payment_provider.py). With a live key, a `tok_` token is refused.
//! - **TLS**: Mozilla's root store compiled in (webpki-roots): no file read at cold start.

use crate::breaker::Breaker;
use crate::provider::{Intent, IntentStatus, PaymentProvider, ProviderError, idempotency_key};
use serde::Deserialize;
use shared::config::ConfigError;
use shared::money::Money;
use std::time::Duration;

/// Stripe's API version the client is written against (sent as `Stripe-Version`).
pub const API_VERSION: &str = "2024-06-20";

/// How a call is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// One attempt, from connecting to the last byte of the answer.
    pub attempt_timeout: Duration,
    /// Connecting.
    pub connect_timeout: Duration,
    /// Attempts of one call (the first included).
    pub attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            attempts: 2,
        }
    }
}

/// Stripe over HTTPS.
#[derive(Debug)]
pub struct StripeProvider {
    http: reqwest::Client,
    base_url: String,
    secret_key: String,
    settings: Settings,
    breaker: Breaker,
}

/// A Stripe error body: `{"error": {"type", "code", "decline_code", "message"}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: StripeError,
}

#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The fields of a PaymentIntent the flow reads. `latest_charge` is an id in Stripe's
/// answers unless expanded (localstripe always expands it): both are read.
#[derive(Debug, Deserialize)]
struct IntentBody {
    id: String,
    status: String,
    #[serde(default)]
    latest_charge: Option<serde_json::Value>,
}

impl From<IntentBody> for Intent {
    fn from(body: IntentBody) -> Self {
        let amount_refunded = body
            .latest_charge
            .as_ref()
            .and_then(|c| c.get("amount_refunded"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        Intent {
            id: body.id,
            status: IntentStatus::from_stripe(&body.status),
            amount_refunded,
        }
    }
}

/// One attempt's outcome, before the retry policy.
enum Attempt {
    /// The status, `Stripe-Should-Retry` when sent, the body.
    Answer(reqwest::StatusCode, Option<bool>, bytes::Bytes),
    TimedOut,
    NoConnection(String),
}

impl StripeProvider {
    /// A client of the API at `base_url` with `secret_key`.
    pub fn new(
        base_url: &str,
        secret_key: &str,
        settings: Settings,
        breaker: Breaker,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "PAYMENT_PROVIDER_URL",
            reason,
        };
        if !(base_url.starts_with("https://") || base_url.starts_with("http://127.0.0.1")) {
            return Err(invalid(format!(
                "{base_url:?}: the provider is reached over HTTPS (plain HTTP only on loopback)"
            )));
        }
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("serverless-commerce/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("the HTTP client does not build: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
            settings,
            breaker,
        })
    }

    /// The provider a payment function uses: `PAYMENT_PROVIDER_URL`, and the secret key
    /// from Secrets Manager (`PAYMENT_PROVIDER_SECRET_ID`, the secret's name or ARN; its
    /// value is the key itself), read once at cold start.
    pub async fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        let url = shared::config::required("PAYMENT_PROVIDER_URL")?;
        let secret_id = shared::config::required("PAYMENT_PROVIDER_SECRET_ID")?;
        let unreadable = |reason: String| ConfigError::Invalid {
            name: "PAYMENT_PROVIDER_SECRET_ID",
            reason,
        };
        let secret = aws_sdk_secretsmanager::Client::new(sdk)
            .get_secret_value()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|e| {
                unreadable(format!("{secret_id}: {}", shared::problem::error_chain(&e)))
            })?;
        let key = secret
            .secret_string()
            .map(str::trim)
            .filter(|k| k.starts_with("sk_") || k.starts_with("rk_"))
            .ok_or_else(|| {
                unreadable(format!(
                    "{secret_id} holds no Stripe secret key (sk_... or rk_...)"
                ))
            })?;
        Self::new(&url, key, Settings::default(), Breaker::default())
    }

    /// The breaker in front of the provider.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// True with a test-mode key: the tokens of API.md are Stripe's test payment methods.
    pub fn test_mode(&self) -> bool {
        self.secret_key.starts_with("sk_test_") || self.secret_key.starts_with("rk_test_")
    }

    /// The payment method of a token: test tokens in test mode, else the token as given
    /// (a PaymentMethod the client created with Stripe.js).
    fn payment_method(&self, token: &str) -> Result<String, ProviderError> {
        if !token.starts_with("tok_") {
            return Ok(token.to_owned());
        }
        if !self.test_mode() {
            return Err(ProviderError::Declined("test_token_in_live_mode".into()));
        }
        Ok(match token {
            "tok_declined" => "pm_card_visa_chargeDeclined",
            "tok_insufficient_funds" => "pm_card_visa_chargeDeclinedInsufficientFunds",
            "tok_timeout" => "pm_card_localTimeout",
            "tok_capture_fails" => "pm_card_localCaptureFails",
            _ => "pm_card_visa",
        }
        .to_owned())
    }

    /// One call: through the breaker, then attempts under the retry policy.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        key: Option<String>,
    ) -> Result<bytes::Bytes, ProviderError> {
        let permit = self.breaker.permit()?;
        let result = self.attempts(method, path, form, key.as_deref()).await;
        // A provider that answered (a decline, a refusal) is up; only silence and 5xx/429
        // count against it.
        permit.record(!matches!(
            result,
            Err(ProviderError::Timeout | ProviderError::Unavailable(_))
        ));
        result
    }

    async fn attempts(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        key: Option<&str>,
    ) -> Result<bytes::Bytes, ProviderError> {
        let mut last = ProviderError::Timeout;
        for attempt in 0..self.settings.attempts.max(1) {
            if attempt > 0 {
                shared::retry::PROVIDER_REQUEST.wait(attempt).await;
            }
            let (retry, error) = match self.attempt(method.clone(), path, form, key).await {
                Attempt::Answer(status, _, body) if status.is_success() => return Ok(body),
                Attempt::Answer(status, should_retry, body) => {
                    let err: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                    let error = classify(status, &err.error);
                    let retry = match should_retry {
                        Some(said) => said,
                        None => status == reqwest::StatusCode::CONFLICT || status.is_server_error(),
                    };
                    (retry, error)
                }
                Attempt::TimedOut => (true, ProviderError::Timeout),
                Attempt::NoConnection(why) => (true, ProviderError::Unavailable(why)),
            };
            tracing::warn!(path, attempt, retry, error = %error, "payment provider call failed");
            if !retry {
                return Err(error);
            }
            last = error;
        }
        Err(last)
    }

    async fn attempt(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        key: Option<&str>,
    ) -> Attempt {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .basic_auth(&self.secret_key, Some(""))
            .header("Stripe-Version", API_VERSION);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if method == reqwest::Method::POST {
            request = request.form(form);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::TimedOut,
            // Connected and sent, then the connection broke: the request may have run.
            Err(e) if !e.is_connect() && e.is_request() => return Attempt::TimedOut,
            Err(e) => return Attempt::NoConnection(shared::problem::error_chain(&e)),
        };
        let status = response.status();
        let should_retry = response
            .headers()
            .get("Stripe-Should-Retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v == "true");
        match response.bytes().await {
            Ok(body) => Attempt::Answer(status, should_retry, body),
            Err(_) => Attempt::TimedOut,
        }
    }

    /// A call that answers an intent: a POST under `key`, or a read (no key).
    async fn intent(
        &self,
        path: &str,
        form: &[(&str, String)],
        key: Option<String>,
    ) -> Result<Intent, ProviderError> {
        let method = if key.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let body = self.call(method, path, form, key).await?;
        serde_json::from_slice::<IntentBody>(&body)
            .map(Intent::from)
            .map_err(|e| ProviderError::Rejected(format!("an intent we cannot read: {e}")))
    }
}

impl StripeProvider {
    /// `POST /v1/payment_intents/{intent_id}/{action}` (no parameters) under the key of
    /// the flow's `operation`.
    async fn act(
        &self,
        order_id: &str,
        intent_id: &str,
        action: &str,
        operation: &str,
    ) -> Result<Intent, ProviderError> {
        let path = format!("/v1/payment_intents/{intent_id}/{action}");
        self.intent(&path, &[], Some(idempotency_key(order_id, operation)))
            .await
    }
}

/// What a non-2xx answer means for the flow.
fn classify(status: reqwest::StatusCode, err: &StripeError) -> ProviderError {
    let message = err.message.clone().unwrap_or_else(|| status.to_string());
    let code = err.code.as_deref().unwrap_or_default();
    match status.as_u16() {
        402 => ProviderError::Declined(
            err.decline_code
                .clone()
                .or_else(|| err.code.clone())
                .unwrap_or_else(|| "card_declined".into()),
        ),
        _ if err.kind.as_deref() == Some("card_error") => {
            ProviderError::Declined(err.decline_code.clone().unwrap_or_else(|| code.to_owned()))
        }
        400 if code == "charge_expired_for_capture" => {
            ProviderError::CaptureFailed(code.to_owned())
        }
        400 if code == "payment_intent_unexpected_state" || code == "charge_already_refunded" => {
            ProviderError::UnexpectedState(message)
        }
        // Another request with the key is running, or Stripe's own answer is
        // indeterminate (a 5xx: "the result may or may not have been applied"): as unknown
        // an outcome as no answer; the caller asks again under the same key.
        409 => ProviderError::Timeout,
        s if s >= 500 => ProviderError::Timeout,
        // Rate limiting happens before anything is done.
        429 => ProviderError::Unavailable(format!("rate limited: {message}")),
        _ => ProviderError::Rejected(format!("{status} {code}: {message}")),
    }
}

impl PaymentProvider for StripeProvider {
    async fn create_intent(
        &self,
        order_id: &str,
        token: &str,
        amount: &Money,
    ) -> Result<Intent, ProviderError> {
        let form = [
            ("amount", amount.minor().to_string()),
            ("currency", amount.currency().code().to_ascii_lowercase()),
            ("payment_method", self.payment_method(token)?),
            ("capture_method", "manual".to_owned()),
            ("payment_method_types[]", "card".to_owned()),
            ("metadata[order_id]", order_id.to_owned()),
        ];
        self.intent(
            "/v1/payment_intents",
            &form,
            Some(idempotency_key(order_id, "intent")),
        )
        .await
    }

    async fn confirm(&self, order_id: &str, intent_id: &str) -> Result<Intent, ProviderError> {
        self.act(order_id, intent_id, "confirm", "authorize").await
    }

    async fn capture(&self, order_id: &str, intent_id: &str) -> Result<Intent, ProviderError> {
        self.act(order_id, intent_id, "capture", "capture").await
    }

    async fn cancel(&self, order_id: &str, intent_id: &str) -> Result<Intent, ProviderError> {
        self.act(order_id, intent_id, "cancel", "void").await
    }

    async fn refund(
        &self,
        order_id: &str,
        intent_id: &str,
        amount: &Money,
    ) -> Result<(), ProviderError> {
        let form = [
            ("payment_intent", intent_id.to_owned()),
            ("amount", amount.minor().to_string()),
            ("metadata[order_id]", order_id.to_owned()),
        ];
        self.call(
            reqwest::Method::POST,
            "/v1/refunds",
            &form,
            Some(idempotency_key(order_id, "refund")),
        )
        .await
        .map(|_| ())
    }

    async fn retrieve(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.intent(&format!("/v1/payment_intents/{intent_id}"), &[], None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: &str, code: &str, decline: Option<&str>) -> StripeError {
        StripeError {
            kind: Some(kind.into()),
            code: Some(code.into()),
            decline_code: decline.map(Into::into),
            message: Some("m".into()),
        }
    }

    #[test]
    fn answers_are_classified_as_stripe_documents_them() {
        use reqwest::StatusCode as S;
        assert_eq!(
            classify(
                S::PAYMENT_REQUIRED,
                &err("card_error", "card_declined", Some("insufficient_funds"))
            ),
            ProviderError::Declined("insufficient_funds".into())
        );
        assert_eq!(
            classify(
                S::PAYMENT_REQUIRED,
                &err("card_error", "card_declined", None)
            ),
            ProviderError::Declined("card_declined".into())
        );
        assert!(matches!(
            classify(
                S::BAD_REQUEST,
                &err(
                    "invalid_request_error",
                    "payment_intent_unexpected_state",
                    None
                )
            ),
            ProviderError::UnexpectedState(_)
        ));
        assert_eq!(
            classify(
                S::BAD_REQUEST,
                &err("invalid_request_error", "charge_expired_for_capture", None)
            ),
            ProviderError::CaptureFailed("charge_expired_for_capture".into())
        );
        assert!(matches!(
            classify(
                S::TOO_MANY_REQUESTS,
                &err("invalid_request_error", "rate_limit", None)
            ),
            ProviderError::Unavailable(_)
        ));
        assert_eq!(
            classify(S::INTERNAL_SERVER_ERROR, &err("api_error", "", None)),
            ProviderError::Timeout
        );
        assert_eq!(
            classify(
                S::CONFLICT,
                &err("idempotency_error", "idempotency_key_in_use", None)
            ),
            ProviderError::Timeout
        );
        assert!(matches!(
            classify(S::BAD_REQUEST, &err("idempotency_error", "", None)),
            ProviderError::Rejected(_)
        ));
        assert!(matches!(
            classify(S::UNAUTHORIZED, &StripeError::default()),
            ProviderError::Rejected(_)
        ));
    }

    fn provider(key: &str) -> StripeProvider {
        StripeProvider::new(
            "https://api.stripe.com",
            key,
            Settings::default(),
            Breaker::default(),
        )
        .unwrap()
    }

    #[test]
    fn test_tokens_map_to_test_payment_methods_in_test_mode_only() {
        let test = provider("sk_test_x");
        assert!(test.test_mode());
        assert_eq!(test.payment_method("tok_visa").unwrap(), "pm_card_visa");
        assert_eq!(test.payment_method("tok_other").unwrap(), "pm_card_visa");
        assert_eq!(
            test.payment_method("tok_declined").unwrap(),
            "pm_card_visa_chargeDeclined"
        );
        assert_eq!(
            test.payment_method("tok_insufficient_funds").unwrap(),
            "pm_card_visa_chargeDeclinedInsufficientFunds"
        );
        assert_eq!(test.payment_method("pm_123").unwrap(), "pm_123");
        let live = provider("sk_live_x");
        assert!(!live.test_mode());
        assert!(matches!(
            live.payment_method("tok_visa"),
            Err(ProviderError::Declined(_))
        ));
        assert_eq!(live.payment_method("pm_123").unwrap(), "pm_123");
    }

    #[test]
    fn the_provider_is_reached_over_https_or_on_loopback() {
        for ok in ["https://api.stripe.com", "http://127.0.0.1:8420"] {
            assert!(
                StripeProvider::new(ok, "sk_test_x", Settings::default(), Breaker::default())
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in ["http://api.stripe.com", "ftp://x", ""] {
            assert!(
                StripeProvider::new(bad, "sk_test_x", Settings::default(), Breaker::default())
                    .is_err(),
                "{bad}"
            );
        }
    }
}
