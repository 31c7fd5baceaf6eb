//! The DynamoDB adapter of [`ProductStore`]: the `inventory` table keyed by `sku`, a
//! sparse `catalog` index (partition `catalog = "products"`, sorted by SKU) for listing,
//! and the table's outbox.

use crate::domain::Product;
use crate::{ProductEvent, ProductStore};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shared::catalog::Sku;
use shared::config::{self, ConfigError};
use shared::dynamo::{Item, StoreError, from_item, to_item};
use shared::outbox::Outbox;
use shared::pagination::PageRequest;

/// The index that lists the catalog in SKU order.
pub const CATALOG_INDEX: &str = "catalog";
/// The partition every product has in [`CATALOG_INDEX`]; outbox items lack it.
const CATALOG_PARTITION: &str = "products";

/// Products in the `inventory` table.
#[derive(Debug, Clone)]
pub struct DynamoProductStore {
    client: Client,
    table: String,
    outbox: Outbox,
}

impl DynamoProductStore {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "sku"),
            table,
        }
    }

    /// The store a Lambda uses: table from `INVENTORY_TABLE`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_sdk(&shared::aws::sdk_config().await?)
    }

    /// [`DynamoProductStore::from_env`] with an SDK configuration the function already
    /// loaded.
    pub fn from_sdk(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required("INVENTORY_TABLE")?;
        Ok(Self::new(shared::aws::dynamodb(sdk), table))
    }
}

impl ProductStore for DynamoProductStore {
    async fn get(&self, sku: &Sku) -> Result<Option<Product>, StoreError> {
        shared::dynamo::get(
            &self.client,
            &self.table,
            shared::dynamo::key("sku", sku.to_string()),
        )
        .await
    }

    async fn save(
        &self,
        product: &Product,
        expected: Option<u64>,
        event: &ProductEvent,
        also: Option<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let mut item = to_item(product)?;
        item.insert(
            "catalog".into(),
            AttributeValue::S(CATALOG_PARTITION.into()),
        );
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(sku)"),
            Some(v) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        }
        .build()
        .map_err(|e| StoreError::local("build product put", e))?;
        let (outbox, event_id) = match event {
            ProductEvent::Upserted(e) => (self.outbox.put(e)?, &e.metadata.event_id),
            ProductEvent::StockAdjusted(e) => (self.outbox.put(e)?, &e.metadata.event_id),
        };
        // Scoped by the event id; the token is derived from what is written (`shared::dynamo::transact`).
        let mut items = vec![TransactWriteItem::builder().put(put).build(), outbox];
        items.extend(also);
        let outcome = shared::dynamo::transact(&self.client, items, Some(event_id)).await?;
        Ok(outcome.committed())
    }

    async fn list(&self, page: &PageRequest) -> Result<(Vec<Product>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CATALOG_INDEX)
            // `catalog` is a DynamoDB reserved word.
            .key_condition_expression("#catalog = :products")
            .expression_attribute_names("#catalog", "catalog")
            .expression_attribute_values(":products", AttributeValue::S(CATALOG_PARTITION.into()))
            .limit(page.limit)
            .set_exclusive_start_key(page.cursor.clone())
            .send()
            .await
            .map_err(|e| StoreError::request("Query", e))?;
        let products = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Product>, _>>()?;
        Ok((products, out.last_evaluated_key))
    }
}
