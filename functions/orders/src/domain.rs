//! Orders: what a customer asked for, priced at intake, and the status machine the saga
//! drives it through.

use serde::{Deserialize, Serialize};
use shared::catalog::Sku;
use shared::events::OrderLine;
use shared::ids::{OrderId, UserId};
use shared::money::Money;
use shared::time::{Timestamp, rfc3339};

/// Where an order is in its life (API.md "order status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Accepted, the saga is running.
    Pending,
    /// Held for an administrator's fraud review.
    UnderReview,
    /// Paid and stock committed.
    Confirmed,
    /// Refused; see the reason.
    Rejected,
    /// A confirmed order being refunded and restocked.
    Cancelling,
    /// Refunded and restocked.
    Cancelled,
}

/// Why an order was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    /// Not enough stock to reserve.
    OutOfStock,
    /// The payment provider declined.
    PaymentDeclined,
    /// The payment provider was down (its circuit breaker open): nothing was held.
    PaymentUnavailable,
    /// The fraud scorer denied it.
    FraudSuspected,
    /// An administrator rejected it in review.
    ReviewRejected,
    /// A step did not answer in time.
    TimedOut,
}

/// A transition the status machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order in {from:?} cannot {action}")]
pub struct TransitionError {
    /// The status it was in.
    pub from: OrderStatus,
    /// What was attempted.
    pub action: &'static str,
}

impl OrderStatus {
    fn to(
        self,
        allowed: &[OrderStatus],
        next: OrderStatus,
        action: &'static str,
    ) -> Result<OrderStatus, TransitionError> {
        if self == next {
            return Ok(next); // repeating a transition changes nothing: steps are retried
        }
        if allowed.contains(&self) {
            Ok(next)
        } else {
            Err(TransitionError { from: self, action })
        }
    }

    /// `PENDING` → `UNDER_REVIEW`.
    pub fn hold_for_review(self) -> Result<Self, TransitionError> {
        self.to(&[Self::Pending], Self::UnderReview, "be held for review")
    }

    /// `PENDING` | `UNDER_REVIEW` → `CONFIRMED`.
    pub fn confirm(self) -> Result<Self, TransitionError> {
        self.to(
            &[Self::Pending, Self::UnderReview],
            Self::Confirmed,
            "be confirmed",
        )
    }

    /// `PENDING` | `UNDER_REVIEW` → `REJECTED`.
    pub fn reject(self) -> Result<Self, TransitionError> {
        self.to(
            &[Self::Pending, Self::UnderReview],
            Self::Rejected,
            "be rejected",
        )
    }

    /// `CONFIRMED` → `CANCELLING`.
    pub fn start_cancel(self) -> Result<Self, TransitionError> {
        self.to(&[Self::Confirmed], Self::Cancelling, "be cancelled")
    }

    /// `CANCELLING` → `CANCELLED`.
    pub fn finish_cancel(self) -> Result<Self, TransitionError> {
        self.to(&[Self::Cancelling], Self::Cancelled, "finish cancelling")
    }
}

/// Units of one line: 1..=1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl TryFrom<u32> for Quantity {
    type Error = String;
    fn try_from(q: u32) -> Result<Self, String> {
        if (1..=1000).contains(&q) {
            Ok(Self(q))
        } else {
            Err("must be from 1 to 1000".into())
        }
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> Self {
        q.0
    }
}

/// Bounded free text of an address field.
fn text(field_max: usize, raw: String) -> Result<String, String> {
    let t = raw.trim();
    let len = t.chars().count();
    if len == 0 || len > field_max {
        Err(format!("must be 1 to {field_max} characters"))
    } else if t.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(t.to_owned())
    }
}

/// Where the order goes. Kept with the order only: events carry no address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipping {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl Shipping {
    /// Validates every field, naming each bad one under `shipping.`.
    pub fn parse(
        name: String,
        line1: String,
        city: String,
        postal_code: String,
        country: String,
    ) -> Result<Self, Vec<shared::FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &str, r: Result<String, String>| {
            r.map_err(|m| errors.push(shared::FieldError::new(format!("shipping.{field}"), m)))
                .unwrap_or_default()
        };
        let s = Shipping {
            name: check("name", text(100, name)),
            line1: check("line1", text(200, line1)),
            city: check("city", text(100, city)),
            postal_code: check("postal_code", text(20, postal_code)),
            country: check(
                "country",
                shared::country::CountryCode::try_from(country)
                    .map(String::from)
                    .map_err(|e| e.to_string()),
            ),
        };
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(errors)
        }
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// ULID.
    pub order_id: OrderId,
    /// The customer's user id (kept when the profile is erased).
    pub user_id: UserId,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// Why it was rejected.
    pub status_reason: Option<RejectReason>,
    /// The lines, priced at intake.
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
    /// Delivery address.
    pub shipping: Shipping,
    /// The payment provider's token; the saga's authorize step uses it. Never shown.
    pub payment_token: String,
    /// The client's address as the API gateway saw it when the order was placed; the fraud
    /// check reads it. Never shown. Absent on orders placed before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<std::net::IpAddr>,
    /// While `UNDER_REVIEW`: the task token the admin's decision answers. Never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_task_token: Option<String>,
    /// While `UNDER_REVIEW`: which attempt of the hold stored that token (the state's
    /// `RetryCount`), so a late earlier attempt cannot put its dead token back. Never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_attempt: Option<u32>,
    /// Placed.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    /// ULID.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// Status.
    pub status: OrderStatus,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
    /// Delivery address.
    pub shipping: Shipping,
    /// Placed.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<RejectReason>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            order_id: o.order_id.clone(),
            user_id: o.user_id.clone(),
            status: o.status,
            items: o.items.clone(),
            total: o.total,
            shipping: o.shipping.clone(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            status_reason: o.status_reason,
        }
    }
}

/// What the catalog says of one product at intake.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CatalogEntry {
    /// The product.
    pub sku: Sku,
    /// Its price now.
    pub price: Money,
    /// Units available now.
    pub available: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn the_status_machine_allows_only_the_documented_paths() {
        assert_eq!(Pending.confirm(), Ok(Confirmed));
        assert_eq!(
            Pending.hold_for_review().and_then(OrderStatus::confirm),
            Ok(Confirmed)
        );
        assert_eq!(UnderReview.reject(), Ok(Rejected));
        assert_eq!(
            Confirmed
                .start_cancel()
                .and_then(OrderStatus::finish_cancel),
            Ok(Cancelled)
        );
        assert!(Rejected.confirm().is_err());
        assert!(Pending.start_cancel().is_err());
        assert!(Cancelled.start_cancel().is_err());
        assert!(Confirmed.reject().is_err());
        assert!(Pending.finish_cancel().is_err());
    }

    #[test]
    fn repeating_a_transition_is_harmless() {
        assert_eq!(Confirmed.confirm(), Ok(Confirmed));
        assert_eq!(Rejected.reject(), Ok(Rejected));
        assert_eq!(Cancelling.start_cancel(), Ok(Cancelling));
    }

    #[test]
    fn statuses_and_reasons_serialize_as_the_api_names_them() {
        assert_eq!(
            serde_json::to_string(&UnderReview).unwrap(),
            "\"UNDER_REVIEW\""
        );
        assert_eq!(
            serde_json::to_string(&RejectReason::OutOfStock).unwrap(),
            "\"OUT_OF_STOCK\""
        );
    }

    #[test]
    fn quantities_and_addresses_are_bounded() {
        assert!(Quantity::try_from(0).is_err());
        assert!(Quantity::try_from(1001).is_err());
        assert!(Quantity::try_from(1000).is_ok());
        let errs = Shipping::parse(
            "".into(),
            "Main St 1".into(),
            "Berlin".into(),
            "x".repeat(21),
            "de".into(),
        )
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["shipping.name", "shipping.postal_code", "shipping.country"]
        );
    }
}
