//! Intake's read of the catalog: one `BatchGetItem` on the inventory table for every
//! sku of an order (up to 50, under DynamoDB's 100-key limit). Orders reads the
//! inventory table directly, read-only, for current prices and availability; see
//! docs/decisions.md for why not through an API call or a replicated price list.

use crate::Catalog;
use crate::domain::CatalogEntry;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use shared::catalog::Sku;
use shared::config::{self, ConfigError};
use shared::dynamo::{StoreError, from_item};
use std::collections::HashMap;

/// Rounds of `BatchGetItem` for one order's skus: DynamoDB returns keys unprocessed under
/// throttling, and they are asked again after [`shared::retry::UNPROCESSED`]'s pause.
const MAX_BATCH_ROUNDS: u32 = 5;

/// The inventory table, read for prices.
#[derive(Debug, Clone)]
pub struct DynamoCatalog {
    client: Client,
    table: String,
}

impl DynamoCatalog {
    /// The catalog in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The catalog a Lambda uses: `INVENTORY_TABLE`.
    pub fn from_env(client: Client) -> Result<Self, ConfigError> {
        Ok(Self::new(client, config::required("INVENTORY_TABLE")?))
    }
}

impl Catalog for DynamoCatalog {
    async fn entries(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>, StoreError> {
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
                let entry: CatalogEntry = from_item(item)?;
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
