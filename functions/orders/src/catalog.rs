//! Intake's read of the catalog: the inventory service's price list
//! ([`inventory::catalog::PriceList`], one `BatchGetItem` for every sku of an order, up to
//! 50), read-only, for current prices and availability; see docs/decisions.md for why not
//! through an API call or a replicated price list. The inventory crate owns the table's
//! item shape; this adapter only maps its entries into the orders domain.

use crate::Catalog;
use crate::domain::CatalogEntry;
use aws_sdk_dynamodb::Client;
use inventory::catalog::PriceList;
use shared::catalog::Sku;
use shared::config::ConfigError;
use shared::dynamo::StoreError;
use std::collections::HashMap;

/// The inventory service's price list, as order intake's catalog.
#[derive(Debug, Clone)]
pub struct DynamoCatalog {
    prices: PriceList,
}

impl DynamoCatalog {
    /// The catalog in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            prices: PriceList::new(client, table),
        }
    }

    /// The catalog a Lambda uses: `INVENTORY_TABLE`.
    pub fn from_env(client: Client) -> Result<Self, ConfigError> {
        Ok(Self {
            prices: PriceList::from_env(client)?,
        })
    }
}

impl Catalog for DynamoCatalog {
    async fn entries(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>, StoreError> {
        Ok(self
            .prices
            .entries(skus)
            .await?
            .into_iter()
            .map(|(sku, e)| {
                let entry = CatalogEntry {
                    sku: e.sku,
                    price: e.price,
                    available: e.available,
                };
                (sku, entry)
            })
            .collect())
    }
}
