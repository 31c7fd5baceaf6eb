//! Notifications: what the customer is told when their order is confirmed, rejected,
//! cancelled or refunded.
//!
//! The consumer composes one [`Notification`] per event and hands it to the
//! [`Mailbox`] port. The mailbox here is the `notifications` table, the stand-in for an
//! email provider (a mailer would send from its stream); its write commits in the same
//! transaction as the event's dedupe record ([`shared::consumer`]), so each event
//! notifies exactly once. A replayed event notifies no one: replays rebuild state, they
//! do not speak to customers again.
//!
//! Events carry ids, not personal data: the notification names the customer by user id,
//! and the mailer looks the address up when it sends, so an erased customer gets nothing.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shared::consumer::{ConsumerError, Delivery, Handler};
use shared::dynamo::{StoreError, to_item};
use shared::events::{OrderCancelled, OrderConfirmed, OrderRejected, PaymentRefunded};
use shared::ids::{OrderId, UserId};
use shared::time::{Timestamp, rfc3339};

/// What a customer is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `OrderConfirmed`.
    OrderConfirmed,
    /// `OrderRejected`.
    OrderRejected,
    /// `OrderCancelled`.
    OrderCancelled,
    /// `PaymentRefunded`.
    PaymentRefunded,
}

/// One message to one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// ULID of this notification.
    pub notification_id: String,
    /// The event it tells about.
    pub event_id: String,
    /// Whom (the mailer resolves the address).
    pub user_id: UserId,
    /// Which order.
    pub order_id: OrderId,
    /// What about.
    pub kind: Kind,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub body: String,
    /// When it was written.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
}

/// The message for `delivery`; `Ok(None)` for a replay. Every event it takes names the
/// customer, so it reads no other service's table.
pub fn compose(delivery: &Delivery, now: Timestamp) -> Result<Option<Notification>, ConsumerError> {
    if delivery.is_replay() {
        return Ok(None);
    }
    let (kind, user_id, order_id, subject, body) = if delivery.is::<OrderConfirmed>() {
        let e = delivery.event::<OrderConfirmed>()?.data;
        let lines: u32 = e.items.iter().map(|l| l.quantity).sum();
        (
            Kind::OrderConfirmed,
            e.user_id,
            e.order_id.clone(),
            format!("Your order {} is confirmed", e.order_id),
            format!(
                "We have your payment of {} {} for {lines} item(s); your order will ship soon.",
                e.total.amount(),
                e.total.currency().code()
            ),
        )
    } else if delivery.is::<OrderRejected>() {
        let e = delivery.event::<OrderRejected>()?.data;
        (
            Kind::OrderRejected,
            e.user_id,
            e.order_id.clone(),
            format!("Your order {} could not be placed", e.order_id),
            format!(
                "We could not complete your order ({}); you have not been charged.",
                e.reason
            ),
        )
    } else if delivery.is::<OrderCancelled>() {
        let e = delivery.event::<OrderCancelled>()?.data;
        (
            Kind::OrderCancelled,
            e.user_id,
            e.order_id.clone(),
            format!("Your order {} is cancelled", e.order_id),
            "Your order is cancelled as you asked.".to_owned(),
        )
    } else if delivery.is::<PaymentRefunded>() {
        let e = delivery.event::<PaymentRefunded>()?.data;
        (
            Kind::PaymentRefunded,
            e.user_id,
            e.order_id.clone(),
            format!("Your refund for order {}", e.order_id),
            format!(
                "We have refunded {} {} to your payment method.",
                e.amount.amount(),
                e.amount.currency().code()
            ),
        )
    } else {
        return Err(ConsumerError::Poison(format!(
            "notifications do not take {} from {}",
            delivery.name, delivery.source
        )));
    };
    Ok(Some(Notification {
        notification_id: ulid::Ulid::new().to_string(),
        event_id: delivery.metadata.event_id.clone(),
        user_id,
        order_id,
        kind,
        subject,
        body,
        created_at: now,
    }))
}

/// Where notifications go: the port in front of the email provider.
pub trait Mailbox: Sync {
    /// The write that hands `notification` over, to commit with the event's dedupe record.
    fn deliver(&self, notification: &Notification) -> Result<TransactWriteItem, StoreError>;
}

/// The consumer: composes and delivers.
#[derive(Debug, Clone)]
pub struct Notifier<M> {
    /// The mailbox.
    pub mailbox: M,
}

impl<M: Mailbox> Handler for Notifier<M> {
    fn name(&self) -> &str {
        "notifications"
    }

    async fn handle(&self, delivery: &Delivery) -> Result<Vec<TransactWriteItem>, ConsumerError> {
        match compose(delivery, shared::time::now())? {
            Some(n) => {
                tracing::info!(notification_id = %n.notification_id, kind = ?n.kind, order_id = %n.order_id, "notify");
                Ok(vec![self.mailbox.deliver(&n)?])
            }
            None => Ok(Vec::new()),
        }
    }
}

/// The consumer with `NOTIFICATIONS_TABLE` (its writes go through the consumer's
/// transaction, on the function's DynamoDB client).
pub fn from_env() -> Result<Notifier<DynamoMailbox>, shared::config::ConfigError> {
    Ok(Notifier {
        mailbox: DynamoMailbox::new(shared::config::required("NOTIFICATIONS_TABLE")?),
    })
}

/// The `notifications` table as the mailbox.
#[derive(Debug, Clone)]
pub struct DynamoMailbox {
    table: String,
}

impl DynamoMailbox {
    /// On `table`.
    pub fn new(table: String) -> Self {
        Self { table }
    }
}

impl Mailbox for DynamoMailbox {
    fn deliver(&self, notification: &Notification) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(notification)?))
            .condition_expression("attribute_not_exists(notification_id)")
            .build()
            .map_err(|e| StoreError::local("build notification", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order of these tests.
    const O1: &str = "01JDZ000000000000000000001";
    use serde_json::json;
    use std::sync::Mutex;

    fn delivery(name: &str, source: &str, data: serde_json::Value, replay: bool) -> Delivery {
        let mut e = json!({
            "id": "x", "source": source, "detail-type": name, "time": "2026-11-21T10:00:00Z",
            "detail": {"metadata": {"event_id": "01JD0000000000000000000001", "occurred_at": "2026-11-21T10:00:00Z",
                                     "correlation_id": "c", "causation_id": null, "schema_version": 1},
                       "data": data}
        });
        if replay {
            e["replay-name"] = json!("r1");
        }
        Delivery::parse(&e.to_string()).unwrap()
    }

    fn money() -> serde_json::Value {
        json!({"amount": "12.50", "currency": "EUR"})
    }

    fn confirmed(replay: bool) -> Delivery {
        delivery(
            "OrderConfirmed",
            "commerce.orders",
            json!({"order_id": O1, "user_id": "u1", "total": money(),
                   "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": {"amount": "6.25", "currency": "EUR"}}]}),
            replay,
        )
    }

    #[derive(Default)]
    struct Memory(Mutex<Vec<Notification>>);
    impl Mailbox for Memory {
        fn deliver(&self, n: &Notification) -> Result<TransactWriteItem, StoreError> {
            self.0.lock().unwrap().push(n.clone());
            DynamoMailbox::new("t".into()).deliver(n)
        }
    }

    #[test]
    fn each_event_tells_its_customer() {
        let now = shared::time::now();
        let n = compose(&confirmed(false), now).unwrap().unwrap();
        assert_eq!(
            (n.kind, n.user_id.as_str(), n.order_id.as_str()),
            (Kind::OrderConfirmed, "u1", O1)
        );
        assert_eq!(n.event_id, "01JD0000000000000000000001");
        assert!(
            n.body.contains("12.50 EUR") && n.body.contains("2 item(s)"),
            "{}",
            n.body
        );

        let rejected = delivery(
            "OrderRejected",
            "commerce.orders",
            json!({"order_id": O1, "user_id": "u1", "total": money(), "reason": "PAYMENT_DECLINED"}),
            false,
        );
        let n = compose(&rejected, now).unwrap().unwrap();
        assert_eq!(n.kind, Kind::OrderRejected);
        assert!(n.body.contains("PAYMENT_DECLINED"));

        let cancelled = delivery(
            "OrderCancelled",
            "commerce.orders",
            json!({"order_id": O1, "user_id": "u1", "total": money()}),
            false,
        );
        assert_eq!(
            compose(&cancelled, now).unwrap().unwrap().kind,
            Kind::OrderCancelled
        );

        let refunded = delivery(
            "PaymentRefunded",
            "commerce.payments",
            json!({"order_id": O1, "user_id": "u1", "payment_id": "p1", "amount": money()}),
            false,
        );
        let n = compose(&refunded, now).unwrap().unwrap();
        assert_eq!((n.kind, n.user_id.as_str()), (Kind::PaymentRefunded, "u1"));
        // A live refund event without its customer (published before payment events named
        // one) can never be told: it is refused, to the dead-letter queue.
        let anonymous = delivery(
            "PaymentRefunded",
            "commerce.payments",
            json!({"order_id": O1, "payment_id": "p1", "amount": money()}),
            false,
        );
        assert!(matches!(
            compose(&anonymous, now),
            Err(ConsumerError::Poison(_))
        ));
    }

    #[test]
    fn a_replay_tells_no_one() {
        assert_eq!(
            compose(&confirmed(true), shared::time::now()).unwrap(),
            None
        );
    }

    #[test]
    fn other_events_are_refused() {
        let placed = delivery("OrderPlaced", "commerce.orders", json!({}), false);
        assert!(matches!(
            compose(&placed, shared::time::now()),
            Err(ConsumerError::Poison(_))
        ));
        let forged = delivery("OrderConfirmed", "commerce.payments", json!({}), false);
        assert!(matches!(
            compose(&forged, shared::time::now()),
            Err(ConsumerError::Poison(_))
        ));
    }

    #[tokio::test]
    async fn the_handler_delivers_one_write_per_live_event_and_none_for_a_replay() {
        let notifier = Notifier {
            mailbox: Memory::default(),
        };
        assert_eq!(notifier.handle(&confirmed(false)).await.unwrap().len(), 1);
        assert!(notifier.handle(&confirmed(true)).await.unwrap().is_empty());
        let refunded = delivery(
            "PaymentRefunded",
            "commerce.payments",
            json!({"order_id": O1, "user_id": "u1", "payment_id": "p1", "amount": money()}),
            false,
        );
        assert_eq!(notifier.handle(&refunded).await.unwrap().len(), 1);
        let sent = notifier.mailbox.0.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].user_id, "u1");
    }
}
