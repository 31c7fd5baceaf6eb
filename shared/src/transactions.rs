//! The `transactions` stream's record: what the payment step puts on it and the fraud
//! scorer reads, defined once for both.

use crate::ids::{OrderId, UserId};
use crate::money::Money;
use crate::time::{Timestamp, rfc3339};
use serde::{Deserialize, Serialize};

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
/// One type for both ends. Fields beyond these are ignored, so the producer may add some
/// without breaking a scorer deployed before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRecord {
    /// ULID of the order; the assessment's key, so a redelivery is recognized.
    pub order_id: OrderId,
    /// The customer (also the record's partition key, so one user's orders are in order).
    pub user_id: UserId,
    /// The order's total.
    pub amount: Money,
    /// The token the execution waits on.
    pub task_token: String,
    /// Ties the assessment's event to the client request that placed the order.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// When the saga asked; picks the hour whose orders count toward velocity, so a
    /// redelivery later on counts in the same hour.
    #[serde(with = "rfc3339")]
    pub requested_at: Timestamp,
}

impl TransactionRecord {
    /// Parses a record's data (JSON), refusing what cannot be scored or answered.
    pub fn parse(data: &[u8]) -> Result<Self, RequestError> {
        // The ids are checked as they are read (`OrderId`, `UserId`).
        let request: Self = serde_json::from_slice(data)?;
        if request.task_token.trim().is_empty() {
            return Err(RequestError::Invalid("task_token is empty"));
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
            task_token: "token".into(),
            correlation_id: Some("c-1".into()),
            requested_at: crate::time::now(),
        };
        let data = serde_json::to_vec(&written).unwrap();
        let read = TransactionRecord::parse(&data).unwrap();
        assert_eq!(read.order_id, written.order_id);
        assert_eq!(read.amount, written.amount);
        assert_eq!(read.correlation(), "c-1");
        // The instant survives to the millisecond (the velocity hour is picked from it).
        assert_eq!(
            read.requested_at.timestamp_millis(),
            written.requested_at.timestamp_millis()
        );
    }
}
