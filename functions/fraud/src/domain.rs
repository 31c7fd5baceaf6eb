//! A fraud-check request as the payment step puts it on the stream, and an assessment as
//! stored and as the API shows it.

use crate::features::Features;
use serde::{Deserialize, Serialize};
use shared::events::FraudDecision;
use shared::ids::{OrderId, UserId};
use shared::time::{Timestamp, rfc3339};

pub use shared::transactions::{RequestError, TransactionRecord as FraudCheckRequest};

/// An order's assessment as stored (item `id = order_id`), written once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// 0..=1000.
    pub score: u32,
    /// What the score means.
    pub decision: FraudDecision,
    /// The inputs that weighed most, heaviest first.
    pub reasons: Vec<String>,
    /// The model that scored, and the rates table its amounts were converted with.
    pub model_version: String,
    /// The features the score read (this order included), for explaining it later. Absent
    /// (all zero) on assessments of the rules that scored before `logit-v2`.
    #[serde(default)]
    pub features: Features,
    /// When it was scored.
    #[serde(with = "rfc3339")]
    pub assessed_at: Timestamp,
}

/// An assessment as `GET /orders/{order_id}/risk` shows it (API.md "fraud assessment").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssessmentView {
    /// The order.
    pub order_id: OrderId,
    /// 0..=1000.
    pub score: u32,
    /// `approve`, `review` or `deny`.
    pub decision: FraudDecision,
    /// The inputs that weighed most, heaviest first.
    pub reasons: Vec<String>,
    /// The model that scored.
    pub model_version: String,
    /// When it was scored.
    #[serde(with = "rfc3339")]
    pub assessed_at: Timestamp,
}

impl From<&Assessment> for AssessmentView {
    fn from(a: &Assessment) -> Self {
        Self {
            order_id: a.order_id.clone(),
            score: a.score,
            decision: a.decision,
            reasons: a.reasons.clone(),
            model_version: a.model_version.clone(),
            assessed_at: a.assessed_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"order_id": "01JDZ8F3Q4K5M6N7P8R9S0T1V2", "user_id": "u-1",
        "amount": {"amount": "12.50", "currency": "EUR"}, "task_token": "tok",
        "item_count": 2, "shipping_country": "DE", "profile_country": "DE",
        "account_created_at": "2025-01-01T00:00:00Z", "source_ip": "203.0.113.9",
        "payment_fingerprint": "0123456789abcdef0123456789abcdef",
        "correlation_id": "c-1", "requested_at": "2026-11-21T19:30:00+01:00", "extra": 1}"#;

    #[test]
    fn requests_parse_with_money_and_utc_time_and_ignore_extra_fields() {
        let r = FraudCheckRequest::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(
            r.amount,
            shared::money::Money::parse("12.5", "EUR").unwrap()
        );
        assert_eq!(
            r.requested_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "2026-11-21T18:30:00Z"
        );
        assert_eq!(r.correlation(), "c-1");
    }

    #[test]
    fn unusable_requests_are_refused() {
        let bad =
            |from: &str, to: &str| FraudCheckRequest::parse(GOOD.replace(from, to).as_bytes());
        assert!(bad("01JDZ8F3Q4K5M6N7P8R9S0T1V2", "order-1").is_err());
        assert!(bad(r#""u-1""#, r#""  ""#).is_err());
        assert!(bad(r#""tok""#, r#""""#).is_err());
        assert!(bad(r#""12.50""#, r#""12.505""#).is_err());
        assert!(bad(r#""requested_at""#, r#""at""#).is_err());
        assert!(FraudCheckRequest::parse(b"not json").is_err());
        let no_correlation = bad(r#""correlation_id": "c-1","#, "").unwrap();
        assert_eq!(
            no_correlation.correlation(),
            no_correlation.order_id.as_str()
        );
    }
}
