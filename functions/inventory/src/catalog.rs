//! The inventory service's one read for another service: current prices and availability
//! of up to 100 skus in one `BatchGetItem`, which order intake prices an order from
//! (docs/decisions.md, "Order intake reads the inventory table directly"). It lives here,
//! beside the table's other adapters, so the table's item shape is named in one crate; the
//! orders service calls it and never names an inventory attribute.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde::Deserialize;
use shared::catalog::Sku;
use shared::config::{self, ConfigError};
use shared::dynamo::{StoreError, from_item};
use shared::money::Money;
use std::collections::HashMap;

/// Rounds of `BatchGetItem` for one request's skus: DynamoDB returns keys unprocessed under
/// throttling, and they are asked again after [`shared::retry::UNPROCESSED`]'s pause.
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
            .map(|s| HashMap::from([("sku".to_owned(), AttributeValue::S(s.to_string()))]))
            .collect::<Vec<_>>();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression("sku, price, available")
                .build()
                .map_err(|e| StoreError::local("build BatchGetItem", e))?,
        );
        let mut found = HashMap::new();
        for round in 0..MAX_BATCH_ROUNDS {
            let Some(req) = request.take() else { break };
            if round > 0 {
                shared::retry::UNPROCESSED.wait(round).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, req)
                .send()
                .await
                .map_err(|e| StoreError::request("BatchGetItem", e))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                let entry: PriceEntry = from_item(item)?;
                found.insert(entry.sku.clone(), entry);
            }
            request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
        }
        if request.is_some() {
            return Err(StoreError::unprocessed("BatchGetItem"));
        }
        Ok(found)
    }
}
