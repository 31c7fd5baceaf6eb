//! The inventory service's one read for another service: current prices and availability
//! of up to 100 skus in one `BatchGetItem`, which order intake prices an order from
//! (docs/decisions.md, "Order intake reads the inventory table directly"). It lives here,
//! beside the table's other adapters, so the table's item shape is named in one crate; the
//! orders service calls it and never names an inventory attribute.

use aws_sdk_dynamodb::Client;
use serde::Deserialize;
use shared::catalog::Sku;
use shared::config::{self, ConfigError};
use shared::dynamo::{StoreError, from_item};
use shared::money::Money;
use std::collections::HashMap;

/// Rounds of `BatchGetItem` for one request's skus ([`shared::dynamo::batch_get`]).
const MAX_BATCH_ROUNDS: u32 = 5;

/// A product's price and availability now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PriceEntry {
    /// The product.
    pub sku: Sku,
    /// Its price now.
    pub price: Money,
    /// Units available now (on hand less reserved).
    pub available: i64,
}

/// Read-only prices from the inventory table.
#[derive(Debug, Clone)]
pub struct PriceList {
    client: Client,
    table: String,
}

impl PriceList {
    /// The price list in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The price list a Lambda reads: `INVENTORY_TABLE`.
    pub fn from_env(client: Client) -> Result<Self, ConfigError> {
        Ok(Self::new(client, config::required("INVENTORY_TABLE")?))
    }

    /// The entries of `skus` that exist (at most 100), read consistently.
    pub async fn entries(&self, skus: &[Sku]) -> Result<HashMap<Sku, PriceEntry>, StoreError> {
        let keys = skus
            .iter()
            .map(|s| shared::dynamo::key("sku", s.to_string()))
            .collect();
        let items = shared::dynamo::batch_get(
            &self.client,
            &self.table,
            keys,
            Some("sku, price, available"),
            MAX_BATCH_ROUNDS,
        )
        .await?;
        let mut found = HashMap::new();
        for item in items {
            let entry: PriceEntry = from_item(item)?;
            found.insert(entry.sku.clone(), entry);
        }
        Ok(found)
    }
}
