//! The `transactions` stream's record: what the payment step puts on it and the fraud
//! scorer reads, defined once for both.

use crate::country::CountryCode;
use crate::ids::{OrderId, UserId};
use crate::money::Money;
use crate::time::{Timestamp, rfc3339};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The name of the record's schema, `events/schemas/TransactionRecord.json`.
pub const SCHEMA_NAME: &str = "TransactionRecord";

/// Why a stream record is not a fraud-check request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Not JSON of the request's shape (or an invalid amount).
    #[error("not a fraud-check request: {0}")]
    Shape(#[from] serde_json::Error),
    /// A field parsed but cannot be used.
    #[error("not a fraud-check request: {0}")]
    Invalid(&'static str),
}

/// One record of the `transactions` stream: the payment step (`payments-request-fraud-check`)
/// asks for a decision and waits on `task_token` for it; the scorer (`fraud-score`) answers.
/// One type for both ends; its JSON Schema is `events/schemas/TransactionRecord.json`.
/// Fields beyond these are ignored, so the producer may add some without breaking a scorer
/// deployed before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransactionRecord {
    /// ULID of the order; the assessment's key, so a redelivery is recognized.
    pub order_id: OrderId,
    /// The customer (also the record's partition key, so one user's orders are in order).
    pub user_id: UserId,
    /// The order's total.
    pub amount: Money,
    /// Units ordered: the sum of the lines' quantities.
    #[schemars(range(min = 1))]
    pub item_count: u32,
    /// Where the order ships.
    pub shipping_country: CountryCode,
    /// The customer's country of residence from the profile; `null` when the customer has
    /// no profile.
    pub profile_country: Option<CountryCode>,
    /// When the customer's profile was created; `null` when there is none.
    #[serde(with = "rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub account_created_at: Option<Timestamp>,
    /// The payment method's fingerprint (`shared::transactions::fingerprint`): the same
    /// method gives the same fingerprint, and the token itself never goes on the stream.
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub payment_fingerprint: String,
    /// The client's address as the API gateway saw it (`sourceIp`); `null` when unknown.
    pub source_ip: Option<IpAddr>,
    /// The token the execution waits on.
    #[schemars(length(min = 1))]
    pub task_token: String,
    /// Ties the assessment's event to the client request that placed the order.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// When the saga asked: the transaction's time for the scorer's windows, so a
    /// redelivery later on counts at the same time.
    #[serde(with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub requested_at: Timestamp,
}

/// The fingerprint of a payment token: the first 16 bytes of its SHA-256, in hex. The
/// scorer counts distinct fingerprints (card testing) without ever holding a token.
pub fn fingerprint(payment_token: &str) -> String {
    Sha256::digest(payment_token.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The record's JSON Schema, as checked into `events/schemas/TransactionRecord.json`.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(TransactionRecord).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), SCHEMA_NAME.into());
        obj.insert(
            "description".into(),
            "A record of the Kinesis stream `transactions`: a fraud-check request of the \
             place-order saga (partition key: user_id)."
                .into(),
        );
    }
    schema
}

impl TransactionRecord {
    /// Parses a record's data (JSON), refusing what cannot be scored or answered.
    pub fn parse(data: &[u8]) -> Result<Self, RequestError> {
        // The ids are checked as they are read (`OrderId`, `UserId`).
        let request: Self = serde_json::from_slice(data)?;
        if request.task_token.trim().is_empty() {
            return Err(RequestError::Invalid("task_token is empty"));
        }
        if request.item_count == 0 {
            return Err(RequestError::Invalid("item_count is 0"));
        }
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if request.payment_fingerprint.len() != 32 || !request.payment_fingerprint.chars().all(hex)
        {
            return Err(RequestError::Invalid(
                "payment_fingerprint is not 32 hex digits",
            ));
        }
        Ok(request)
    }

    /// The correlation id the event carries: the request's, else the order id.
    pub fn correlation(&self) -> &str {
        self.correlation_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(self.order_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_payment_step_writes_the_scorer_reads() {
        let written = TransactionRecord {
            order_id: OrderId::new(),
            user_id: "u-1".parse().unwrap(),
            amount: Money::parse("42.00", "EUR").unwrap(),
            item_count: 3,
            shipping_country: "FR".to_owned().try_into().unwrap(),
            profile_country: Some("DE".to_owned().try_into().unwrap()),
            account_created_at: Some(crate::time::now() - chrono::TimeDelta::days(400)),
            payment_fingerprint: fingerprint("tok_visa"),
            source_ip: Some("203.0.113.9".parse().unwrap()),
            task_token: "token".into(),
            correlation_id: Some("c-1".into()),
            requested_at: crate::time::now(),
        };
        let data = serde_json::to_vec(&written).unwrap();
        let read = TransactionRecord::parse(&data).unwrap();
        assert_eq!(read.order_id, written.order_id);
        assert_eq!(read.amount, written.amount);
        assert_eq!(read.correlation(), "c-1");
        assert_eq!(read.shipping_country, written.shipping_country);
        assert_eq!(read.profile_country, written.profile_country);
        assert_eq!(read.source_ip, written.source_ip);
        assert_eq!(
            read.account_created_at.map(|t| t.timestamp_millis()),
            written.account_created_at.map(|t| t.timestamp_millis())
        );
        // What was written is valid against the checked-in schema.
        let value = serde_json::to_value(&written).unwrap();
        let on_disk: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../events/schemas/TransactionRecord.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            on_disk,
            schema(),
            "run UPDATE_SCHEMAS=1 cargo test -p shared schemas"
        );
        let required = on_disk["required"].as_array().unwrap();
        for field in required {
            assert!(
                value.get(field.as_str().unwrap()).is_some(),
                "{field} not written"
            );
        }
        // The instant survives to the millisecond (the velocity hour is picked from it).
        assert_eq!(
            read.requested_at.timestamp_millis(),
            written.requested_at.timestamp_millis()
        );
    }

    #[test]
    fn fingerprints_are_stable_and_never_the_token() {
        let f = fingerprint("tok_visa_4242");
        assert_eq!(f, fingerprint("tok_visa_4242"));
        assert_ne!(f, fingerprint("tok_visa_4243"));
        assert_eq!(f.len(), 32);
        assert!(!f.contains("tok"));
    }

    #[test]
    fn records_the_scorer_cannot_use_are_refused() {
        let good = serde_json::json!({
            "order_id": "01JDZ8F3Q4K5M6N7P8R9S0T1V2", "user_id": "u-1",
            "amount": {"amount": "12.50", "currency": "EUR"}, "item_count": 1,
            "shipping_country": "DE", "profile_country": null, "account_created_at": null,
            "payment_fingerprint": fingerprint("t"), "source_ip": null,
            "task_token": "tok", "requested_at": "2026-11-21T19:30:00Z"
        });
        assert!(TransactionRecord::parse(good.to_string().as_bytes()).is_ok());
        let with = |field: &str, v: serde_json::Value| {
            let mut bad = good.clone();
            bad[field] = v;
            TransactionRecord::parse(bad.to_string().as_bytes())
        };
        assert!(with("item_count", 0.into()).is_err());
        assert!(with("shipping_country", "XX".into()).is_err());
        assert!(with("profile_country", "de".into()).is_err());
        assert!(with("payment_fingerprint", "tok_visa".into()).is_err());
        assert!(with("source_ip", "not an address".into()).is_err());
        assert!(with("account_created_at", "yesterday".into()).is_err());
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("shipping_country");
        assert!(TransactionRecord::parse(missing.to_string().as_bytes()).is_err());
    }
}
