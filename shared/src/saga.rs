//! The saga's contract: what `place-order` (infra/state-machines/place-order.asl.json) is
//! started with. The orders service builds it when it starts the saga; each Task state
//! passes its steps the fields they need (`Parameters`), so a step reads nothing of another
//! service's table.

use crate::country::CountryCode;
use crate::events::OrderLine;
use crate::ids::{OrderId, UserId};
use crate::money::Money;
use crate::time::{Timestamp, rfc3339};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The input of a `place-order` execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SagaInput {
    /// ULID of the order; also the execution's name.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// What was ordered, priced at intake (`ReserveStock` reserves these).
    pub items: Vec<OrderLine>,
    /// What the customer pays (`AuthorizePayment` holds it).
    pub total: Money,
    /// The customer's payment method at the provider, as given at intake. It travels in the
    /// execution's input, never on the bus: events carry ids, not means of payment.
    pub payment_token: String,
    /// The correlation id of the request that placed the order, carried into every event.
    pub correlation_id: String,
    /// Where the order ships (the fraud check compares it with the customer's country).
    pub shipping_country: CountryCode,
    /// The customer's profile as the users service held it when the saga started; `null`
    /// when the customer has none. Always present, so the state machine's paths resolve.
    pub customer: Option<CustomerProfile>,
    /// The client's address as the API gateway saw it when the order was placed; `null`
    /// when unknown.
    pub source_ip: Option<std::net::IpAddr>,
}

/// What the fraud check reads of a customer's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerProfile {
    /// Country of residence.
    pub country: CountryCode,
    /// When the profile was created: the account's age.
    #[serde(with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub registered_at: Timestamp,
}

/// The input of a `cancel-order` execution (`orders-cancel` starts it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// ULID of the order.
    pub order_id: OrderId,
    /// The correlation id of the request that cancelled it.
    pub correlation_id: String,
}
