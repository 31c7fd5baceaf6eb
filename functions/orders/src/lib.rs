//! The orders service: order intake and reads (the saga drives orders further).
//!
//! Intake prices every line from the catalog in one batch read, then writes the order
//! `PENDING`, its `OrderPlaced` event (outbox) and the idempotency record's completion in
//! one transaction: the order exists with its event and its recorded answer, or not at all.

pub mod api;
pub mod catalog;
pub mod domain;
pub mod saga;
pub mod store;
pub mod workflow;

use domain::{CatalogEntry, Order, OrderStatus, OrderView, Quantity, Shipping};
use shared::ApiError;
use shared::catalog::Sku;
use shared::dynamo::{Item, StoreError};
use shared::events::{Envelope, OrderLine, OrderPlaced};
use shared::idempotency::{Claimed, StoredResponse};
use shared::identity::Caller;
use shared::ids::OrderId;
use shared::money::{Money, MoneyError};
use shared::pagination::PageRequest;
use shared::time::Timestamp;
use std::collections::HashMap;
use std::future::Future;

pub use catalog::DynamoCatalog;
pub use store::DynamoOrderStore;

/// The catalog as intake sees it: prices and availability.
pub trait Catalog: Send + Sync {
    /// The entries of `skus` that exist (one batch read).
    fn entries(
        &self,
        skus: &[Sku],
    ) -> impl Future<Output = Result<HashMap<Sku, CatalogEntry>, StoreError>> + Send;
}

/// What an intake writes besides the order.
#[derive(Debug, Clone)]
pub struct Intake<'a> {
    /// The `OrderPlaced` event for the outbox.
    pub event: &'a Envelope<OrderPlaced>,
    /// The idempotency claim to complete with `response`, in the same transaction.
    pub claim: Option<(&'a Claimed, &'a StoredResponse)>,
}

/// Where orders live.
pub trait OrderStore: Send + Sync {
    /// Writes a new order with its event (and idempotency completion) atomically;
    /// `Ok(false)` when a condition failed (the idempotency claim was lost).
    fn insert(
        &self,
        order: &Order,
        intake: Intake<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Reads an order (strongly consistent).
    fn get(&self, order_id: &str)
    -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
    /// One page of a user's orders, newest first, and the key to continue from.
    fn list_for_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<(Vec<Order>, Option<Item>), StoreError>> + Send;
}

/// What intake and reads refuse.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// Skus that are not in the catalog.
    #[error("unknown skus {0:?}")]
    UnknownSkus(Vec<Sku>),
    /// Skus with fewer units available than ordered.
    #[error("not enough stock for {0:?}")]
    NotEnoughStock(Vec<Sku>),
    /// Lines priced in different currencies.
    #[error("lines are priced in different currencies")]
    MixedCurrencies,
    /// A total beyond what we accept.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// No such order.
    #[error("no order {0}")]
    NotFound(String),
    /// Not the caller's order.
    #[error("not the caller's order")]
    Forbidden,
    /// The idempotency claim was lost before the write.
    #[error("idempotency claim lost")]
    ClaimLost,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OrdersError> for ApiError {
    fn from(err: OrdersError) -> Self {
        let list = |skus: &[Sku]| skus.iter().map(Sku::as_str).collect::<Vec<_>>().join(", ");
        match err {
            OrdersError::UnknownSkus(skus) => {
                ApiError::NotFound(format!("No product {}", list(&skus)))
            }
            OrdersError::NotEnoughStock(skus) => {
                ApiError::Conflict(format!("Not enough stock for {}", list(&skus)))
            }
            OrdersError::MixedCurrencies => ApiError::Unprocessable(
                "The products are priced in different currencies; order them separately".into(),
            ),
            OrdersError::Money(e) => ApiError::Unprocessable(format!("The order total {e}")),
            OrdersError::NotFound(id) => ApiError::NotFound(format!("No order {id}")),
            OrdersError::Forbidden => {
                ApiError::Forbidden("This order belongs to another customer".into())
            }
            OrdersError::ClaimLost => ApiError::InProgress {
                retry_after_secs: 1,
            },
            OrdersError::Store(e) => ApiError::internal(e),
        }
    }
}

/// A validated order request.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Distinct skus with their quantities, in the client's order.
    pub lines: Vec<(Sku, Quantity)>,
    /// Delivery address.
    pub shipping: Shipping,
    /// Payment provider token.
    pub payment_token: String,
    /// The client's address (the gateway's `sourceIp`), kept on the order for the fraud
    /// check.
    pub source_ip: Option<std::net::IpAddr>,
}

/// Ids that tie the events of one request together.
pub use shared::step::Trace;

/// Prices `new` from `entries`: every sku known, enough available, one currency.
pub fn price(
    new: &NewOrder,
    entries: &HashMap<Sku, CatalogEntry>,
) -> Result<(Vec<OrderLine>, Money), OrdersError> {
    let unknown: Vec<Sku> = new
        .lines
        .iter()
        .filter(|(s, _)| !entries.contains_key(s))
        .map(|(s, _)| s.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(OrdersError::UnknownSkus(unknown));
    }
    let short: Vec<Sku> = new
        .lines
        .iter()
        .filter(|(s, q)| {
            entries
                .get(s)
                .is_some_and(|e| e.available < i64::from(u32::from(*q)))
        })
        .map(|(s, _)| s.clone())
        .collect();
    if !short.is_empty() {
        return Err(OrdersError::NotEnoughStock(short));
    }
    let mut lines = Vec::with_capacity(new.lines.len());
    let mut total: Option<Money> = None;
    for (sku, qty) in &new.lines {
        let unit_price = entries
            .get(sku)
            .map(|e| e.price)
            .ok_or_else(|| OrdersError::UnknownSkus(vec![sku.clone()]))?;
        let line_total = unit_price.times(u32::from(*qty))?;
        total = Some(match total {
            None => line_total,
            Some(t) => t.plus(&line_total).map_err(|e| match e {
                MoneyError::CurrencyMismatch(..) => OrdersError::MixedCurrencies,
                other => OrdersError::Money(other),
            })?,
        });
        lines.push(OrderLine {
            sku: sku.clone(),
            quantity: u32::from(*qty),
            unit_price,
        });
    }
    let total = total.ok_or(OrdersError::UnknownSkus(vec![]))?;
    Ok((lines, total))
}

/// Places an order: prices it, writes it `PENDING` with its event, and (under
/// idempotency) completes the claim with the answer in the same transaction.
pub async fn place(
    orders: &impl OrderStore,
    catalog: &impl Catalog,
    caller: &Caller,
    new: NewOrder,
    trace: &Trace,
    now: Timestamp,
    claim: Option<&Claimed>,
) -> Result<(Order, StoredResponse), OrdersError> {
    let skus: Vec<Sku> = new.lines.iter().map(|(s, _)| s.clone()).collect();
    let entries = catalog.entries(&skus).await?;
    let (items, total) = price(&new, &entries)?;
    let order = Order {
        order_id: OrderId::new(),
        user_id: caller.user_id.clone(),
        status: OrderStatus::Pending,
        status_reason: None,
        items,
        total,
        shipping: new.shipping,
        payment_token: new.payment_token,
        source_ip: new.source_ip,
        review_task_token: None,
        review_attempt: None,
        created_at: now,
        updated_at: now,
    };
    let event = Envelope::new(
        OrderPlaced {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
            items: order.items.clone(),
            total: order.total,
        },
        now,
        &trace.correlation_id,
        Some(&trace.causation_id),
    );
    let response = StoredResponse {
        status: 202,
        body: serde_json::to_string(&OrderView::from(&order))
            .map_err(|e| StoreError::local("serialize order", e))?,
        location: Some(format!("/orders/{}", order.order_id)),
        content_type: None,
    };
    let intake = Intake {
        event: &event,
        claim: claim.map(|c| (c, &response)),
    };
    if !orders.insert(&order, intake).await? {
        return Err(OrdersError::ClaimLost);
    }
    Ok((order, response))
}

/// Reads an order: its owner or an admin (404 before 403: the id must exist first).
pub async fn get(
    orders: &impl OrderStore,
    caller: &Caller,
    order_id: &str,
) -> Result<Order, OrdersError> {
    let valid = order_id.parse::<OrderId>().is_ok();
    let order = if valid {
        orders.get(order_id).await?
    } else {
        None
    };
    let order = order.ok_or_else(|| OrdersError::NotFound(order_id.to_owned()))?;
    if !caller.may_act_for(&order.user_id) {
        return Err(OrdersError::Forbidden);
    }
    Ok(order)
}

#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use std::sync::Mutex;

    /// The ports in memory.
    #[derive(Default)]
    pub(crate) struct Memory {
        pub(crate) orders: Mutex<Vec<Order>>,
        pub(crate) events: Mutex<Vec<Envelope<OrderPlaced>>>,
        pub(crate) catalog: HashMap<Sku, CatalogEntry>,
    }

    impl Catalog for Memory {
        async fn entries(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>, StoreError> {
            Ok(skus
                .iter()
                .filter_map(|s| self.catalog.get(s).map(|e| (s.clone(), e.clone())))
                .collect())
        }
    }

    impl OrderStore for Memory {
        async fn insert(&self, order: &Order, intake: Intake<'_>) -> Result<bool, StoreError> {
            self.orders.lock().unwrap().push(order.clone());
            self.events.lock().unwrap().push(intake.event.clone());
            Ok(true)
        }
        async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
            Ok(self
                .orders
                .lock()
                .unwrap()
                .iter()
                .find(|o| o.order_id == id)
                .cloned())
        }
        async fn list_for_user(
            &self,
            user: &str,
            page: &PageRequest,
        ) -> Result<(Vec<Order>, Option<Item>), StoreError> {
            let mut v: Vec<Order> = self
                .orders
                .lock()
                .unwrap()
                .iter()
                .filter(|o| o.user_id == user)
                .cloned()
                .collect();
            v.reverse();
            v.truncate(page.limit as usize);
            Ok((v, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Memory;

    fn sku(s: &str) -> Sku {
        Sku::try_from(s.to_owned()).unwrap()
    }

    fn memory(entries: &[(&str, &str, &str, i64)]) -> Memory {
        Memory {
            catalog: entries
                .iter()
                .map(|(s, amount, cur, avail)| {
                    (
                        sku(s),
                        CatalogEntry {
                            sku: sku(s),
                            price: Money::parse(amount, cur).unwrap(),
                            available: *avail,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    fn new_order(lines: &[(&str, u32)]) -> NewOrder {
        NewOrder {
            lines: lines
                .iter()
                .map(|(s, q)| (sku(s), Quantity::try_from(*q).unwrap()))
                .collect(),
            shipping: Shipping::parse(
                "Ada".into(),
                "1 Main St".into(),
                "London".into(),
                "N1".into(),
                "GB".into(),
            )
            .unwrap(),
            payment_token: "tok_visa".into(),
            source_ip: None,
        }
    }

    fn caller(id: &str, admin: bool) -> Caller {
        Caller {
            user_id: id.parse().unwrap(),
            is_admin: admin,
        }
    }

    fn trace() -> Trace {
        Trace {
            correlation_id: "corr".into(),
            causation_id: "req".into(),
        }
    }

    #[tokio::test]
    async fn intake_prices_lines_exactly_and_records_the_event() {
        let m = memory(&[("MUG-1", "9.99", "EUR", 10), ("TEA-1", "0.10", "EUR", 100)]);
        let (order, response) = place(
            &m,
            &m,
            &caller("u1", false),
            new_order(&[("MUG-1", 3), ("TEA-1", 3)]),
            &trace(),
            shared::time::now(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(order.total.amount(), "30.27");
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.items[1].unit_price.amount(), "0.10");
        assert_eq!(response.status, 202);
        assert_eq!(
            response.location.as_deref(),
            Some(format!("/orders/{}", order.order_id).as_str())
        );
        let events = m.events.lock().unwrap();
        assert_eq!(events[0].data.order_id, order.order_id);
        assert_eq!(events[0].metadata.correlation_id, "corr");
    }

    #[tokio::test]
    async fn unknown_skus_short_stock_and_mixed_currencies_are_refused() {
        let m = memory(&[("MUG-1", "9.99", "EUR", 2), ("CUP-1", "5", "USD", 9)]);
        let c = caller("u1", false);
        let now = shared::time::now();
        let r = place(
            &m,
            &m,
            &c,
            new_order(&[("NOPE-1", 1), ("MUG-1", 1)]),
            &trace(),
            now,
            None,
        )
        .await;
        assert!(matches!(r, Err(OrdersError::UnknownSkus(s)) if s == vec![sku("NOPE-1")]));
        let r = place(&m, &m, &c, new_order(&[("MUG-1", 3)]), &trace(), now, None).await;
        assert!(matches!(r, Err(OrdersError::NotEnoughStock(_))));
        let r = place(
            &m,
            &m,
            &c,
            new_order(&[("MUG-1", 1), ("CUP-1", 1)]),
            &trace(),
            now,
            None,
        )
        .await;
        assert!(matches!(r, Err(OrdersError::MixedCurrencies)));
        assert!(m.orders.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn only_the_owner_or_an_admin_reads_an_order() {
        let m = memory(&[("MUG-1", "1", "EUR", 5)]);
        let (order, _) = place(
            &m,
            &m,
            &caller("u1", false),
            new_order(&[("MUG-1", 1)]),
            &trace(),
            shared::time::now(),
            None,
        )
        .await
        .unwrap();
        assert!(get(&m, &caller("u1", false), &order.order_id).await.is_ok());
        assert!(
            get(&m, &caller("boss", true), &order.order_id)
                .await
                .is_ok()
        );
        assert!(matches!(
            get(&m, &caller("u2", false), &order.order_id).await,
            Err(OrdersError::Forbidden)
        ));
        assert!(matches!(
            get(&m, &caller("u1", false), "not-a-ulid").await,
            Err(OrdersError::NotFound(_))
        ));
    }
}
