//! A payment: one per order, moved by the saga's steps.

use serde::{Deserialize, Serialize};
use shared::ids::{OrderId, UserId};
use shared::money::Money;
use shared::time::{Timestamp, rfc3339};

/// Where a payment is (API.md "payment").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// The provider's intent exists and is being confirmed: nothing is held yet, or a hold
    /// whose answer has not arrived. Never shown by the API (no payment yet).
    Pending,
    /// The total is held on the card.
    Authorized,
    /// The total was taken.
    Captured,
    /// The hold was let go.
    Voided,
    /// The taken total was given back.
    Refunded,
    /// The provider said no.
    Declined,
}

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The order (the key: one payment per order).
    pub order_id: OrderId,
    /// ULID.
    pub payment_id: String,
    /// The customer, for "owner or admin" reads.
    pub user_id: UserId,
    /// Where it is.
    pub status: PaymentStatus,
    /// The order's total.
    pub amount: Money,
    /// The provider's reference (absent when declined).
    pub provider_reference: Option<String>,
    /// The provider's reason for a decline.
    pub decline_reason: Option<String>,
    /// Created.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last moved.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

/// A payment as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    /// ULID.
    pub payment_id: String,
    /// The order.
    pub order_id: OrderId,
    /// Where it is.
    pub status: PaymentStatus,
    /// The amount.
    pub amount: Money,
    /// Last moved.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        Self {
            payment_id: p.payment_id.clone(),
            order_id: p.order_id.clone(),
            status: p.status,
            amount: p.amount,
            updated_at: p.updated_at,
        }
    }
}
