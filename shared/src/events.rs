//! Domain events: the envelope every event travels in, and the events themselves.
//!
//! These types are the contract between services, so they live here, where every
//! publisher and consumer links them. `events/schemas/<Name>.json` is generated from them
//! (`UPDATE_SCHEMAS=1 cargo test -p shared schemas`), and a test fails when a type and its
//! checked-in schema differ. Events carry ids, not personal data: the bus archive keeps them
//! for replay, and erasing a customer must not mean rewriting the archive.

use crate::catalog::Sku;
use crate::ids::{OrderId, UserId};
use crate::money::Money;
use crate::time::{Timestamp, rfc3339};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What every event type declares about itself.
pub trait DomainEvent: Serialize + DeserializeOwned + JsonSchema {
    /// The EventBridge `detail-type`, e.g. `OrderPlaced`.
    const NAME: &'static str;
    /// The EventBridge `source`, `commerce.<service>`.
    const SOURCE: &'static str;
    /// Bumped on a breaking change of `data`, so consumers can branch on it.
    const SCHEMA_VERSION: u32 = 1;
}

/// Facts about one event occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// ULID, ours, stable across retries and replays: consumers dedupe on it.
    #[schemars(regex(pattern = r"^[0-9A-HJKMNP-TV-Z]{26}$"))]
    pub event_id: String,
    /// When the change happened (RFC 3339, UTC).
    #[serde(with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub occurred_at: Timestamp,
    /// The id that ties every event and log line of one client request together.
    pub correlation_id: String,
    /// The request or event that caused this one.
    pub causation_id: Option<String>,
    /// The `data` schema version ([`DomainEvent::SCHEMA_VERSION`]).
    pub schema_version: u32,
}

/// The EventBridge `detail` of every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// Ids and times.
    pub metadata: Metadata,
    /// The event itself.
    pub data: T,
}

impl<T: DomainEvent> Envelope<T> {
    /// A new occurrence of `data`, caused by `causation_id` within `correlation_id`.
    pub fn new(
        data: T,
        occurred_at: Timestamp,
        correlation_id: &str,
        causation_id: Option<&str>,
    ) -> Self {
        Self {
            metadata: Metadata {
                event_id: ulid::Ulid::new().to_string(),
                occurred_at,
                correlation_id: correlation_id.to_owned(),
                causation_id: causation_id.map(str::to_owned),
                schema_version: T::SCHEMA_VERSION,
            },
            data,
        }
    }
}

/// One line of an order as events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// What.
    pub sku: Sku,
    /// How many (1..=1000).
    #[schemars(range(min = 1, max = 1000))]
    pub quantity: u32,
    /// Price of one at intake.
    pub unit_price: Money,
}

/// A customer placed an order; it is `PENDING` and the saga starts from this event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPlaced {
    /// ULID of the order.
    pub order_id: OrderId,
    /// Who placed it.
    pub user_id: UserId,
    /// What was ordered, priced at intake.
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
}

impl DomainEvent for OrderPlaced {
    const NAME: &'static str = "OrderPlaced";
    const SOURCE: &'static str = "commerce.orders";
}

/// A product was created or its name or price changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpserted {
    /// Which product.
    pub sku: Sku,
    /// Its name now.
    pub name: String,
    /// Its price now.
    pub price: Money,
    /// True when the product did not exist before.
    pub created: bool,
    /// The product's version after the change. Events of one product can arrive out of
    /// order (each outbox item is its own stream key): keep the highest version seen.
    pub version: u64,
}

impl DomainEvent for ProductUpserted {
    const NAME: &'static str = "ProductUpserted";
    const SOURCE: &'static str = "commerce.inventory";
}

/// Stock on hand was corrected by an administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockAdjusted {
    /// Which product.
    pub sku: Sku,
    /// The signed change to on-hand units.
    pub delta: i64,
    /// Units on hand after the change.
    pub on_hand: i64,
    /// Units reserved by orders in flight.
    pub reserved: i64,
    /// On hand minus reserved.
    pub available: i64,
    /// The product's version after the change (see [`ProductUpserted::version`]).
    pub version: u64,
}

impl DomainEvent for StockAdjusted {
    const NAME: &'static str = "StockAdjusted";
    const SOURCE: &'static str = "commerce.inventory";
}

/// Units of one product held, taken or given back for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockLine {
    /// Which product.
    pub sku: Sku,
    /// How many units.
    #[schemars(range(min = 1, max = 1000))]
    pub quantity: u32,
}

macro_rules! stock_event {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The order the units are for.
            pub order_id: OrderId,
            /// The units, per product.
            pub lines: Vec<StockLine>,
        }

        impl DomainEvent for $name {
            const NAME: &'static str = stringify!($name);
            const SOURCE: &'static str = "commerce.inventory";
        }
    };
}

stock_event!(
    /// Every line of an order was reserved (all or none): available went down, reserved up.
    StockReserved
);
stock_event!(
    /// An order's reservation was given back (the saga compensated): available went up again.
    StockReleased
);
stock_event!(
    /// An order's reserved units left the warehouse: on hand and reserved went down.
    StockCommitted
);
stock_event!(
    /// A cancelled order's units came back to the shelf: on hand and available went up.
    StockRestocked
);

macro_rules! payment_event {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The order paid for.
            pub order_id: OrderId,
            /// The customer who pays: consumers that speak to the customer (notifications)
            /// need not ask the orders service whose order it is.
            pub user_id: UserId,
            /// ULID of the payment.
            pub payment_id: String,
            /// The amount concerned.
            pub amount: Money,
        }

        impl DomainEvent for $name {
            const NAME: &'static str = stringify!($name);
            const SOURCE: &'static str = "commerce.payments";
        }
    };
}

payment_event!(
    /// The provider holds the order's total on the customer's card.
    PaymentAuthorized
);
payment_event!(
    /// The held amount was taken.
    PaymentCaptured
);
payment_event!(
    /// The hold was let go (the order failed before capture).
    PaymentVoided
);
payment_event!(
    /// A captured amount was given back (the order was cancelled).
    PaymentRefunded
);

/// The provider declined the order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentDeclined {
    /// The order.
    pub order_id: OrderId,
    /// The customer who pays.
    pub user_id: UserId,
    /// ULID of the payment record.
    pub payment_id: String,
    /// The amount asked for.
    pub amount: Money,
    /// The provider's reason (`card_declined`, `insufficient_funds`, ...).
    pub reason: String,
}

impl DomainEvent for PaymentDeclined {
    const NAME: &'static str = "PaymentDeclined";
    const SOURCE: &'static str = "commerce.payments";
}

macro_rules! order_event {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The order.
            pub order_id: OrderId,
            /// Its customer.
            pub user_id: UserId,
            /// Its total.
            pub total: Money,
        }

        impl DomainEvent for $name {
            const NAME: &'static str = stringify!($name);
            const SOURCE: &'static str = "commerce.orders";
        }
    };
}

/// Paid and stock committed: the order will ship. It carries its lines, so a projection
/// (the sales read model) needs nothing but the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderConfirmed {
    /// The order.
    pub order_id: OrderId,
    /// Its customer.
    pub user_id: UserId,
    /// What was sold, at the prices charged.
    pub items: Vec<OrderLine>,
    /// Its total.
    pub total: Money,
}

impl DomainEvent for OrderConfirmed {
    const NAME: &'static str = "OrderConfirmed";
    const SOURCE: &'static str = "commerce.orders";
}
order_event!(
    /// Held for an administrator's fraud review.
    OrderHeldForReview
);
order_event!(
    /// A confirmed order was cancelled: refunded and restocked.
    OrderCancelled
);

/// The order was refused; `reason` is API.md's `status_reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRejected {
    /// The order.
    pub order_id: OrderId,
    /// Its customer.
    pub user_id: UserId,
    /// Its total.
    pub total: Money,
    /// `OUT_OF_STOCK`, `PAYMENT_DECLINED`, `PAYMENT_UNAVAILABLE`, `FRAUD_SUSPECTED`,
    /// `REVIEW_REJECTED`, `TIMED_OUT`.
    pub reason: String,
}

impl DomainEvent for OrderRejected {
    const NAME: &'static str = "OrderRejected";
    const SOURCE: &'static str = "commerce.orders";
}

/// What the fraud scorer decided about an order; the saga goes on (`approve`), holds the
/// order for an administrator (`review`) or rejects it (`deny`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FraudDecision {
    /// Low risk: the order goes on.
    Approve,
    /// Some risk: an administrator decides.
    Review,
    /// High risk: the order is rejected.
    Deny,
}

/// An order was scored for fraud, once per order (a redelivered request re-answers the
/// saga with the stored decision and publishes nothing new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FraudAssessed {
    /// The order scored.
    pub order_id: OrderId,
    /// Risk, 0 (none) to 1000 (certain).
    #[schemars(range(min = 0, max = 1000))]
    pub score: u32,
    /// What the score means for the order.
    pub decision: FraudDecision,
    /// The model's inputs that weighed most, heaviest first, at most three (`large_amount`,
    /// `velocity_1h`, `ships_abroad`, ...: `functions/fraud/src/model.rs` `INPUTS`).
    pub reasons: Vec<String>,
    /// The model and the rates table that scored (`logit-v2/rates-2025-01`).
    pub model_version: String,
}

impl DomainEvent for FraudAssessed {
    const NAME: &'static str = "FraudAssessed";
    const SOURCE: &'static str = "commerce.fraud";
}

/// The schema of `Envelope<T>` as checked into `events/schemas/<NAME>.json`.
pub fn schema_of<T: DomainEvent>() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Envelope<T>).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), T::NAME.into());
        obj.insert(
            "description".into(),
            format!(
                "EventBridge detail of {} events (source {}, detail-type {}, schema version {}).",
                T::NAME,
                T::SOURCE,
                T::NAME,
                T::SCHEMA_VERSION
            )
            .into(),
        );
    }
    schema
}

/// Every event type's name and schema, for generation and validation.
pub fn all_schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (OrderPlaced::NAME, schema_of::<OrderPlaced>()),
        (OrderConfirmed::NAME, schema_of::<OrderConfirmed>()),
        (OrderHeldForReview::NAME, schema_of::<OrderHeldForReview>()),
        (OrderRejected::NAME, schema_of::<OrderRejected>()),
        (OrderCancelled::NAME, schema_of::<OrderCancelled>()),
        (ProductUpserted::NAME, schema_of::<ProductUpserted>()),
        (StockAdjusted::NAME, schema_of::<StockAdjusted>()),
        (StockReserved::NAME, schema_of::<StockReserved>()),
        (StockReleased::NAME, schema_of::<StockReleased>()),
        (StockCommitted::NAME, schema_of::<StockCommitted>()),
        (StockRestocked::NAME, schema_of::<StockRestocked>()),
        (PaymentAuthorized::NAME, schema_of::<PaymentAuthorized>()),
        (PaymentCaptured::NAME, schema_of::<PaymentCaptured>()),
        (PaymentVoided::NAME, schema_of::<PaymentVoided>()),
        (PaymentRefunded::NAME, schema_of::<PaymentRefunded>()),
        (PaymentDeclined::NAME, schema_of::<PaymentDeclined>()),
        (FraudAssessed::NAME, schema_of::<FraudAssessed>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn schema_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/schemas")
    }

    /// The checked-in schemas are exactly what the types generate; `UPDATE_SCHEMAS=1`
    /// rewrites them after a deliberate change.
    #[test]
    fn schemas_match_the_checked_in_files() {
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        // The events, and the one stream record (`transactions`).
        let mut checked_in = all_schemas();
        checked_in.push((
            crate::transactions::SCHEMA_NAME,
            crate::transactions::schema(),
        ));
        for (name, schema) in &checked_in {
            let path = schema_dir().join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if update {
                std::fs::write(&path, &text).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!(
                    "{} missing: run UPDATE_SCHEMAS=1 cargo test -p shared schemas",
                    path.display()
                )
            });
            assert_eq!(
                on_disk, text,
                "{name}: type and schema differ; run UPDATE_SCHEMAS=1 cargo test -p shared schemas"
            );
        }
        let files = std::fs::read_dir(schema_dir()).unwrap().count();
        assert_eq!(files, checked_in.len(), "a schema file has no type");
    }

    #[test]
    fn envelopes_carry_ulid_ids_and_the_schema_version() {
        let sku = Sku::try_from("ABC-1".to_owned()).unwrap();
        let e = Envelope::new(
            StockAdjusted {
                sku,
                delta: -2,
                on_hand: 3,
                reserved: 1,
                available: 2,
                version: 4,
            },
            crate::time::now(),
            "corr-1",
            Some("req-1"),
        );
        assert_eq!(e.metadata.event_id.len(), 26);
        assert_eq!(e.metadata.schema_version, 1);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["metadata"]["correlation_id"], "corr-1");
        assert_eq!(json["data"]["available"], 2);
        let back: Envelope<StockAdjusted> = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }
}
