//! The saga's contract: what `place-order` (infra/state-machines/place-order.asl.json) is
//! started with. The orders service builds it when it starts the saga; each Task state
//! passes its steps the fields they need (`Parameters`), so a step reads nothing of another
//! service's table.

use crate::events::OrderLine;
use crate::ids::{OrderId, UserId};
use crate::money::Money;
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
