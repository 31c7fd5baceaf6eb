//! The inventory service: the product catalog and its stock.
//!
//! Every write reads the product once and commits one transaction: the product with a
//! version condition (so a concurrent change, a reservation included, makes it retry
//! with fresh data) and the event in the table's outbox.

pub mod api;
pub mod catalog;
pub mod domain;
pub mod reservation;
pub mod store;

use domain::{Product, ProductName, StockDelta, StockError};
use shared::ApiError;
use shared::catalog::Sku;
use shared::dynamo::StoreError;
use shared::events::{Envelope, ProductUpserted, StockAdjusted};
use shared::money::Money;
use shared::pagination::PageRequest;
use shared::time::Timestamp;
use std::future::Future;

pub use store::DynamoProductStore;

/// How often a write is tried when it keeps losing an optimistic-concurrency race (a hot
/// sku that orders reserve from while an admin restocks it), with a jittered pause
/// ([`shared::retry::CONFLICT`]) before each new try.
const MAX_ATTEMPTS: u32 = 8;

/// The event a product write publishes.
#[derive(Debug, Clone)]
pub enum ProductEvent {
    /// Created, renamed or repriced.
    Upserted(Envelope<ProductUpserted>),
    /// Stock corrected.
    StockAdjusted(Envelope<StockAdjusted>),
}

/// Where products live.
pub trait ProductStore: Send + Sync {
    /// Reads a product (strongly consistent).
    fn get(&self, sku: &Sku) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// Writes `product` and its event atomically, if the stored version is still
    /// `expected` (`None`: the product must not exist), with `also` in the same transaction
    /// (the completion of the request's idempotency claim). `Ok(false)` when it is not.
    fn save(
        &self,
        product: &Product,
        expected: Option<u64>,
        event: &ProductEvent,
        also: Option<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// One page of the catalog in SKU order, and the key to continue from.
    fn list(
        &self,
        page: &PageRequest,
    ) -> impl Future<Output = Result<(Vec<Product>, Option<shared::dynamo::Item>), StoreError>> + Send;
}

/// What the operations refuse.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// No such product.
    #[error("no product {0}")]
    NotFound(Sku),
    /// The change would take stock below what is reserved.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// Too many concurrent writers.
    #[error("product {0} changed concurrently {MAX_ATTEMPTS} times")]
    Contended(Sku),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InventoryError> for ApiError {
    fn from(err: InventoryError) -> Self {
        match err {
            InventoryError::NotFound(sku) => ApiError::NotFound(format!("No product {sku}")),
            InventoryError::Stock(e) => ApiError::Conflict(format!("Stock cannot change: {e}")),
            InventoryError::Contended(sku) => {
                ApiError::Contention(format!("Product {sku} is changing too often right now"))
            }
            InventoryError::Store(e) => ApiError::internal(e),
        }
    }
}

/// Ids that tie the events of one request together.
pub use shared::step::Trace;

/// Creates a product or replaces its name and price (stock untouched). Returns it and
/// whether it was created.
pub async fn upsert(
    store: &impl ProductStore,
    sku: Sku,
    name: ProductName,
    price: Money,
    trace: &Trace,
    now: Timestamp,
) -> Result<(Product, bool), InventoryError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            shared::retry::CONFLICT.wait(attempt).await;
        }
        let current = store.get(&sku).await?;
        let created = current.is_none();
        let expected = current.as_ref().map(|p| p.version);
        let product = match current {
            Some(p) => Product {
                name: name.clone(),
                price,
                version: p.version + 1,
                updated_at: now,
                ..p
            },
            None => Product {
                sku: sku.clone(),
                name: name.clone(),
                price,
                on_hand: 0,
                reserved: 0,
                available: 0,
                version: 1,
                created_at: now,
                updated_at: now,
            },
        };
        let event = ProductEvent::Upserted(Envelope::new(
            ProductUpserted {
                sku: sku.clone(),
                name: name.as_str().to_owned(),
                price,
                created,
                version: product.version,
            },
            now,
            &trace.correlation_id,
            Some(&trace.causation_id),
        ));
        if store.save(&product, expected, &event, None).await? {
            return Ok((product, created));
        }
    }
    Err(InventoryError::Contended(sku))
}

/// Corrects on-hand stock by `delta`, never below what is reserved.
pub async fn adjust_stock(
    store: &impl ProductStore,
    sku: Sku,
    delta: StockDelta,
    trace: &Trace,
    now: Timestamp,
) -> Result<Product, InventoryError> {
    adjust_stock_with(store, sku, delta, trace, now, |_| Ok(None)).await
}

/// [`adjust_stock`], writing `also(&new_product)` (the idempotency claim's completion with
/// the answer) in the same transaction as the change, so a key's answer is recorded exactly
/// when its change is.
pub async fn adjust_stock_with(
    store: &impl ProductStore,
    sku: Sku,
    delta: StockDelta,
    trace: &Trace,
    now: Timestamp,
    also: impl Fn(&Product) -> Result<Option<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError>,
) -> Result<Product, InventoryError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            shared::retry::CONFLICT.wait(attempt).await;
        }
        let current = store
            .get(&sku)
            .await?
            .ok_or_else(|| InventoryError::NotFound(sku.clone()))?;
        let expected = Some(current.version);
        let stock = current.stock().adjust(delta.get())?;
        let product = Product {
            version: current.version + 1,
            updated_at: now,
            ..current.with_stock(stock)
        };
        let event = ProductEvent::StockAdjusted(Envelope::new(
            StockAdjusted {
                sku: sku.clone(),
                delta: delta.get(),
                on_hand: stock.on_hand,
                reserved: stock.reserved,
                available: stock.available,
                version: product.version,
            },
            now,
            &trace.correlation_id,
            Some(&trace.causation_id),
        ));
        if store
            .save(&product, expected, &event, also(&product)?)
            .await?
        {
            return Ok(product);
        }
    }
    Err(InventoryError::Contended(sku))
}

#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// The port in memory; records the events it was given.
    #[derive(Default)]
    pub(crate) struct MemoryStore {
        pub(crate) products: Mutex<BTreeMap<Sku, Product>>,
        pub(crate) events: Mutex<Vec<ProductEvent>>,
    }

    impl ProductStore for MemoryStore {
        async fn get(&self, sku: &Sku) -> Result<Option<Product>, StoreError> {
            Ok(self.products.lock().unwrap().get(sku).cloned())
        }
        async fn save(
            &self,
            p: &Product,
            expected: Option<u64>,
            e: &ProductEvent,
            _also: Option<aws_sdk_dynamodb::types::TransactWriteItem>,
        ) -> Result<bool, StoreError> {
            let mut m = self.products.lock().unwrap();
            if m.get(&p.sku).map(|c| c.version) != expected {
                return Ok(false);
            }
            m.insert(p.sku.clone(), p.clone());
            self.events.lock().unwrap().push(e.clone());
            Ok(true)
        }
        async fn list(
            &self,
            page: &PageRequest,
        ) -> Result<(Vec<Product>, Option<shared::dynamo::Item>), StoreError> {
            let m = self.products.lock().unwrap();
            Ok((
                m.values().take(page.limit as usize).cloned().collect(),
                None,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn sku() -> Sku {
        Sku::try_from("MUG-1".to_owned()).unwrap()
    }
    fn trace() -> Trace {
        Trace {
            correlation_id: "c".into(),
            causation_id: "r".into(),
        }
    }
    fn name(n: &str) -> ProductName {
        ProductName::try_from(n.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn upsert_creates_then_replaces_keeping_stock() {
        let store = MemoryStore::default();
        let now = shared::time::now();
        let price = Money::parse("9.50", "EUR").unwrap();
        let (p, created) = upsert(&store, sku(), name("Mug"), price, &trace(), now)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(p.version, 1);
        adjust_stock(
            &store,
            sku(),
            StockDelta::try_from(5).unwrap(),
            &trace(),
            now,
        )
        .await
        .unwrap();
        let (p, created) = upsert(&store, sku(), name("Big mug"), price, &trace(), now)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!((p.on_hand, p.version, p.name.as_str()), (5, 3, "Big mug"));
        let events = store.events.lock().unwrap();
        assert!(matches!(&events[0], ProductEvent::Upserted(e) if e.data.created));
        assert!(matches!(&events[1], ProductEvent::StockAdjusted(e) if e.data.on_hand == 5));
        assert!(matches!(&events[2], ProductEvent::Upserted(e) if !e.data.created));
    }

    #[tokio::test]
    async fn stock_below_reserved_is_refused_and_unknown_skus_are_not_found() {
        let store = MemoryStore::default();
        let now = shared::time::now();
        let missing = adjust_stock(
            &store,
            sku(),
            StockDelta::try_from(1).unwrap(),
            &trace(),
            now,
        )
        .await;
        assert!(matches!(missing, Err(InventoryError::NotFound(_))));
        upsert(
            &store,
            sku(),
            name("Mug"),
            Money::parse("1", "EUR").unwrap(),
            &trace(),
            now,
        )
        .await
        .unwrap();
        {
            let mut m = store.products.lock().unwrap();
            let p = m.get(&sku()).unwrap().clone();
            m.insert(sku(), p.with_stock(domain::Stock::new(10, 8)));
        }
        let r = adjust_stock(
            &store,
            sku(),
            StockDelta::try_from(-3).unwrap(),
            &trace(),
            now,
        )
        .await;
        assert!(matches!(r, Err(InventoryError::Stock(_))));
        let p = adjust_stock(
            &store,
            sku(),
            StockDelta::try_from(-2).unwrap(),
            &trace(),
            now,
        )
        .await
        .unwrap();
        assert_eq!(p.stock(), domain::Stock::new(8, 8));
    }
}
