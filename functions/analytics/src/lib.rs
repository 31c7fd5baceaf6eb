//! Analytics: the sales read model, a CQRS projection of the bus.
//!
//! Per day, sku and currency: units sold and revenue of confirmed orders, net of
//! cancellations. A cancellation takes its order's figures off the day the order was
//! confirmed, so a day's figures are what was sold that day and is still sold.
//!
//! The projection keeps, next to the figures, one fact per order (confirmed? cancelled?
//! on which day, which lines). Folding an event reads that fact and commits the new fact
//! and the figure changes in one transaction, conditioned on the fact it read. That makes
//! the fold idempotent and order-independent: a cancellation that arrives before its
//! confirmation is remembered, and the late confirmation then adds nothing. Because of
//! that, the model can be emptied and rebuilt by replaying the bus archive
//! (`commerce-ops empty-read-model sales`, then `commerce-ops replay`), and replaying the
//! same window twice changes nothing the second time.
//!
//! Items (one table, `pk`/`sk`):
//! - fact: `ORDER#<order_id>` / `ORDER`;
//! - figures: `MONTH#<yyyy-mm>` / `<yyyy-mm-dd>#<sku>#<currency>`, so a report over at
//!   most 366 days is at most 13 queries.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use shared::consumer::{ConsumerError, Delivery, Handler};
use shared::dynamo::{StoreError, from_item, to_attribute, to_item};
use shared::events::{OrderCancelled, OrderConfirmed};
use std::collections::BTreeMap;

/// One line of a confirmed order as the projection keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldLine {
    /// The sku.
    pub sku: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Units.
    pub units: i64,
    /// Revenue in minor units.
    pub revenue_minor: i64,
}

/// What the projection knows about one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFact {
    /// `ORDER#<order_id>`.
    pub pk: String,
    /// `ORDER`.
    pub sk: String,
    /// Its `OrderConfirmed` was folded.
    pub confirmed: bool,
    /// Its `OrderCancelled` was folded.
    pub cancelled: bool,
    /// The day it was confirmed (UTC), once confirmed.
    #[serde(default)]
    pub day: Option<NaiveDate>,
    /// Its lines, once confirmed.
    #[serde(default)]
    pub lines: Vec<SoldLine>,
    /// Bumped on every change; the fold's condition.
    pub version: u64,
}

impl OrderFact {
    fn key(order_id: &str) -> String {
        format!("ORDER#{order_id}")
    }
}

/// A change of one day's figures for one sku and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The day.
    pub day: NaiveDate,
    /// The sku.
    pub sku: String,
    /// The currency.
    pub currency: String,
    /// Units to add (negative for a cancellation).
    pub units: i64,
    /// Revenue to add, in minor units.
    pub revenue_minor: i64,
}

/// What folding one event does: the order's fact after it (with the version it must
/// replace, `None` for a new fact), and the figure changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// The fact to write.
    pub fact: OrderFact,
    /// The version the stored fact must still have, or `None` if there must be none.
    pub replaces: Option<u64>,
    /// Figure changes.
    pub deltas: Vec<Delta>,
}

/// The lines of a confirmed order, per sku and currency.
pub fn sold_lines(event: &OrderConfirmed) -> Result<Vec<SoldLine>, ConsumerError> {
    let mut lines: BTreeMap<(String, String), SoldLine> = BTreeMap::new();
    for l in &event.items {
        let revenue = l
            .unit_price
            .times(l.quantity)
            .map_err(|e| ConsumerError::Poison(format!("line {}: {e}", l.sku)))?;
        let currency = l.unit_price.currency().code().to_owned();
        let entry = lines
            .entry((l.sku.as_str().to_owned(), currency.clone()))
            .or_insert(SoldLine {
                sku: l.sku.as_str().to_owned(),
                currency,
                units: 0,
                revenue_minor: 0,
            });
        entry.units += i64::from(l.quantity);
        entry.revenue_minor += revenue.minor();
    }
    Ok(lines.into_values().collect())
}

fn deltas(day: NaiveDate, lines: &[SoldLine], sign: i64) -> Vec<Delta> {
    lines
        .iter()
        .map(|l| Delta {
            day,
            sku: l.sku.clone(),
            currency: l.currency.clone(),
            units: sign * l.units,
            revenue_minor: sign * l.revenue_minor,
        })
        .collect()
}

/// Folds an `OrderConfirmed` (confirmed on `day`) into the order's fact. `None`: it
/// changes nothing (folded before).
pub fn fold_confirmed(
    fact: Option<OrderFact>,
    event: &OrderConfirmed,
    day: NaiveDate,
) -> Result<Option<Fold>, ConsumerError> {
    let lines = sold_lines(event)?;
    Ok(match fact {
        None => Some(Fold {
            fact: OrderFact {
                pk: OrderFact::key(&event.order_id),
                sk: "ORDER".into(),
                confirmed: true,
                cancelled: false,
                day: Some(day),
                lines: lines.clone(),
                version: 1,
            },
            replaces: None,
            deltas: deltas(day, &lines, 1),
        }),
        Some(f) if f.confirmed => None,
        // Cancelled before its confirmation arrived: remember the sale, count nothing.
        Some(f) => Some(Fold {
            replaces: Some(f.version),
            fact: OrderFact {
                confirmed: true,
                day: Some(day),
                lines,
                version: f.version + 1,
                ..f
            },
            deltas: Vec::new(),
        }),
    })
}

/// Folds an `OrderCancelled` into the order's fact. `None`: it changes nothing.
pub fn fold_cancelled(fact: Option<OrderFact>, order_id: &str) -> Option<Fold> {
    match fact {
        None => Some(Fold {
            fact: OrderFact {
                pk: OrderFact::key(order_id),
                sk: "ORDER".into(),
                confirmed: false,
                cancelled: true,
                day: None,
                lines: Vec::new(),
                version: 1,
            },
            replaces: None,
            deltas: Vec::new(),
        }),
        Some(f) if f.cancelled => None,
        Some(f) => {
            let taken_off = match f.day {
                Some(day) if f.confirmed => deltas(day, &f.lines, -1),
                _ => Vec::new(),
            };
            Some(Fold {
                replaces: Some(f.version),
                fact: OrderFact {
                    cancelled: true,
                    version: f.version + 1,
                    ..f
                },
                deltas: taken_off,
            })
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesFigure {
    /// `MONTH#<yyyy-mm>`.
    pub pk: String,
    /// `<day>#<sku>#<currency>`.
    pub sk: String,
    /// The day.
    pub day: NaiveDate,
    /// The sku.
    pub sku: String,
    /// The currency.
    pub currency: String,
    /// Units, net.
    pub units: i64,
    /// Revenue in minor units, net.
    pub revenue_minor: i64,
}

fn month_key(day: NaiveDate) -> String {
    format!("MONTH#{:04}-{:02}", day.year(), day.month())
}

/// The sales table: the projection's writes and the report's reads.
#[derive(Debug, Clone)]
pub struct SalesProjection {
    client: Client,
    table: String,
}

impl SalesProjection {
    /// On `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// On the function's DynamoDB client ([`shared::aws::dynamodb`]), with `SALES_TABLE`.
    pub fn from_env(client: Client) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(client, shared::config::required("SALES_TABLE")?))
    }

    async fn fact(&self, order_id: &str) -> Result<Option<OrderFact>, StoreError> {
        let key = shared::dynamo::Item::from([
            ("pk".to_owned(), AttributeValue::S(OrderFact::key(order_id))),
            ("sk".to_owned(), AttributeValue::S("ORDER".into())),
        ]);
        shared::dynamo::get(&self.client, &self.table, key).await
    }

    /// The writes of `fold`: the fact, conditioned on the version read, and each delta.
    pub fn writes(&self, fold: &Fold) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&fold.fact)?));
        put = match fold.replaces {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :read")
                .expression_attribute_values(":read", AttributeValue::N(v.to_string())),
        };
        let mut writes = vec![
            TransactWriteItem::builder()
                .put(
                    put.build()
                        .map_err(|e| StoreError::local("build fact", e))?,
                )
                .build(),
        ];
        for d in &fold.deltas {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(month_key(d.day)))
                .key("sk", AttributeValue::S(format!("{}#{}#{}", d.day, d.sku, d.currency)))
                .update_expression(
                    "SET #day = :day, sku = :sku, currency = :currency ADD units :units, revenue_minor :revenue",
                )
                .expression_attribute_names("#day", "day")
                .expression_attribute_values(":day", to_attribute(&d.day)?)
                .expression_attribute_values(":sku", AttributeValue::S(d.sku.clone()))
                .expression_attribute_values(":currency", AttributeValue::S(d.currency.clone()))
                .expression_attribute_values(":units", AttributeValue::N(d.units.to_string()))
                .expression_attribute_values(
                    ":revenue",
                    AttributeValue::N(d.revenue_minor.to_string()),
                )
                .build()
                .map_err(|e| StoreError::local("build figure", e))?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(writes)
    }

    /// The figures of days `from..=to`, optionally of one sku; rows that net to nothing
    /// are left out. Sorted by day, sku, currency.
    pub async fn figures(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        sku: Option<&str>,
    ) -> Result<Vec<SalesFigure>, StoreError> {
        let mut rows = Vec::new();
        let mut month = NaiveDate::from_ymd_opt(from.year(), from.month(), 1).unwrap_or(from);
        while month <= to {
            let mut start_key = None;
            loop {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", AttributeValue::S(month_key(month)))
                    .expression_attribute_values(":from", AttributeValue::S(format!("{from}")))
                    // '$' sorts after '#', so every `<to>#...` key is inside.
                    .expression_attribute_values(":to", AttributeValue::S(format!("{to}$")))
                    .set_exclusive_start_key(start_key);
                if let Some(sku) = sku {
                    query = query
                        .filter_expression("sku = :sku")
                        .expression_attribute_values(":sku", AttributeValue::S(sku.to_owned()));
                }
                let out = query
                    .send()
                    .await
                    .map_err(|e| StoreError::request("Query", e))?;
                for item in out.items.unwrap_or_default() {
                    let row: SalesFigure = from_item(item)?;
                    if row.units != 0 || row.revenue_minor != 0 {
                        rows.push(row);
                    }
                }
                start_key = out.last_evaluated_key;
                if start_key.is_none() {
                    break;
                }
            }
            month = match month.checked_add_months(chrono::Months::new(1)) {
                Some(m) => m,
                None => break,
            };
        }
        rows.sort_by(|a, b| (a.day, &a.sku, &a.currency).cmp(&(b.day, &b.sku, &b.currency)));
        Ok(rows)
    }
}

impl Handler for SalesProjection {
    fn name(&self) -> &str {
        "sales-projection"
    }

    /// Live and replayed events alike: the projection is the consumer's own state.
    async fn handle(&self, delivery: &Delivery) -> Result<Vec<TransactWriteItem>, ConsumerError> {
        let fold = if delivery.is::<OrderConfirmed>() {
            let e = delivery.event::<OrderConfirmed>()?;
            let day = e.metadata.occurred_at.date_naive();
            let fact = self.fact(&e.data.order_id).await?;
            fold_confirmed(fact, &e.data, day)?
        } else if delivery.is::<OrderCancelled>() {
            let e = delivery.event::<OrderCancelled>()?;
            let fact = self.fact(&e.data.order_id).await?;
            fold_cancelled(fact, &e.data.order_id)
        } else {
            return Err(ConsumerError::Poison(format!(
                "the sales projection does not take {} from {}",
                delivery.name, delivery.source
            )));
        };
        match fold {
            Some(f) => Ok(self.writes(&f)?),
            None => Ok(Vec::new()),
        }
    }
}

/// The HTTP route.
pub mod api {
    use super::*;
    use http::StatusCode;
    use lambda_http::{Body, Request, RequestExt, Response};
    use shared::ApiError;
    use shared::identity::Caller;
    use shared::money::{Currency, Money};

    /// The widest report: a year and a day, so any whole year with a leap day fits.
    pub const MAX_DAYS: i64 = 366;

    /// One row as the API shows it.
    #[derive(Debug, Serialize)]
    pub struct SalesRow {
        day: NaiveDate,
        sku: String,
        currency: String,
        units: i64,
        revenue: Money,
    }

    /// The report's query: days `from..=to`, at most [`MAX_DAYS`] apart, optionally a sku.
    #[derive(Debug, PartialEq, Eq)]
    pub struct SalesQuery {
        /// First day.
        pub from: NaiveDate,
        /// Last day.
        pub to: NaiveDate,
        /// One sku.
        pub sku: Option<String>,
    }

    /// Reads and checks `from`, `to` and `sku`; every problem is a 400 naming its field.
    pub fn parse_query(req: &Request) -> Result<SalesQuery, ApiError> {
        let params = req.query_string_parameters_ref();
        let param = |name: &str| params.and_then(|q| q.first(name)).map(str::to_owned);
        let mut errors = Vec::new();
        let mut date = |name: &str| match param(name) {
            None => {
                errors.push(shared::FieldError::new(
                    name,
                    "this parameter is required (YYYY-MM-DD)",
                ));
                None
            }
            Some(v) => match NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
                Ok(d) if v.len() == 10 => Some(d),
                _ => {
                    errors.push(shared::FieldError::new(name, "must be a date, YYYY-MM-DD"));
                    None
                }
            },
        };
        let (from, to) = (date("from"), date("to"));
        let sku = match param("sku") {
            None => None,
            Some(s) => match shared::catalog::Sku::try_from(s) {
                Ok(s) => Some(s.as_str().to_owned()),
                Err(_) => {
                    errors.push(shared::FieldError::new(
                        "sku",
                        "must be a sku, [A-Z0-9-]{3,32}",
                    ));
                    None
                }
            },
        };
        let (Some(from), Some(to)) = (from, to) else {
            return Err(ApiError::Validation(errors));
        };
        if to < from {
            errors.push(shared::FieldError::new("to", "must not be before from"));
        } else if (to - from).num_days() > MAX_DAYS {
            errors.push(shared::FieldError::new(
                "to",
                format!("must be at most {MAX_DAYS} days after from"),
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(SalesQuery { from, to, sku })
    }

    /// `GET /analytics/sales?from=&to=&sku=` (admin).
    pub async fn get_sales(
        sales: &SalesProjection,
        req: Request,
    ) -> Result<Response<Body>, ApiError> {
        let caller = Caller::from_context(req.request_context_ref())?;
        caller.require_admin()?;
        let q = parse_query(&req)?;
        let figures = sales.figures(q.from, q.to, q.sku.as_deref()).await?;
        let items = figures
            .into_iter()
            .map(|f| {
                let currency = Currency::from_code(&f.currency).ok_or_else(|| {
                    ApiError::internal(std::io::Error::other(format!(
                        "unknown currency {} in the sales table",
                        f.currency
                    )))
                })?;
                let revenue =
                    Money::from_minor(f.revenue_minor, currency).map_err(ApiError::internal)?;
                Ok(SalesRow {
                    day: f.day,
                    sku: f.sku,
                    currency: f.currency,
                    units: f.units,
                    revenue,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        shared::http::json(StatusCode::OK, &serde_json::json!({ "items": items }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The orders of these tests.
    const O1: &str = "01JDZ000000000000000000001";

    fn confirmed(order_id: &str) -> OrderConfirmed {
        serde_json::from_value(json!({
            "order_id": order_id, "user_id": "u1", "total": {"amount": "35.00", "currency": "EUR"},
            "items": [
                {"sku": "SKU-A", "quantity": 2, "unit_price": {"amount": "10.00", "currency": "EUR"}},
                {"sku": "SKU-B", "quantity": 1, "unit_price": {"amount": "15.00", "currency": "EUR"}}
            ]
        }))
        .unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    #[test]
    fn a_confirmation_adds_its_lines_to_its_day() {
        let fold = fold_confirmed(None, &confirmed(O1), day())
            .unwrap()
            .unwrap();
        assert_eq!(fold.replaces, None);
        assert_eq!(fold.deltas.len(), 2);
        assert_eq!(
            (
                fold.deltas[0].sku.as_str(),
                fold.deltas[0].units,
                fold.deltas[0].revenue_minor
            ),
            ("SKU-A", 2, 2000)
        );
        assert_eq!(
            (
                fold.deltas[1].sku.as_str(),
                fold.deltas[1].units,
                fold.deltas[1].revenue_minor
            ),
            ("SKU-B", 1, 1500)
        );
        // Again: nothing.
        assert_eq!(
            fold_confirmed(Some(fold.fact), &confirmed(O1), day()).unwrap(),
            None
        );
    }

    #[test]
    fn a_cancellation_takes_the_lines_off_the_confirmation_day() {
        let confirm = fold_confirmed(None, &confirmed(O1), day())
            .unwrap()
            .unwrap();
        let cancel = fold_cancelled(Some(confirm.fact.clone()), O1).unwrap();
        assert_eq!(cancel.replaces, Some(1));
        let net: i64 = confirm
            .deltas
            .iter()
            .chain(&cancel.deltas)
            .map(|d| d.revenue_minor)
            .sum();
        assert_eq!(net, 0);
        assert!(cancel.deltas.iter().all(|d| d.day == day() && d.units < 0));
        assert_eq!(fold_cancelled(Some(cancel.fact), O1), None);
    }

    #[test]
    fn a_cancellation_before_its_confirmation_leaves_nothing_counted() {
        let cancel = fold_cancelled(None, O1).unwrap();
        assert!(cancel.deltas.is_empty());
        let late = fold_confirmed(Some(cancel.fact), &confirmed(O1), day())
            .unwrap()
            .unwrap();
        assert!(late.deltas.is_empty());
        assert!(late.fact.confirmed && late.fact.cancelled);
        assert_eq!(late.replaces, Some(1));
        assert_eq!(
            fold_confirmed(Some(late.fact.clone()), &confirmed(O1), day()).unwrap(),
            None
        );
        assert_eq!(fold_cancelled(Some(late.fact), O1), None);
    }

    #[test]
    fn lines_of_one_sku_and_currency_are_summed() {
        let mut e = confirmed(O1);
        e.items.push(e.items[0].clone());
        let lines = sold_lines(&e).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].units, lines[0].revenue_minor), (4, 4000));
    }

    fn request(query: &[(&str, &str)]) -> lambda_http::Request {
        use lambda_http::RequestExt;
        let mut map = std::collections::HashMap::new();
        for (k, v) in query {
            map.insert((*k).to_owned(), vec![(*v).to_owned()]);
        }
        lambda_http::Request::default().with_query_string_parameters(map)
    }

    #[test]
    fn the_query_needs_a_bounded_window_of_dates() {
        use api::parse_query;
        let ok = parse_query(&request(&[
            ("from", "2026-01-01"),
            ("to", "2027-01-02"),
            ("sku", "SKU-A"),
        ]))
        .unwrap();
        assert_eq!(ok.sku.as_deref(), Some("SKU-A"));
        let fields = |q: &[(&str, &str)]| match parse_query(&request(q)) {
            Err(shared::ApiError::Validation(errors)) => {
                errors.iter().map(|e| e.field.clone()).collect::<Vec<_>>()
            }
            other => panic!("expected a 400, got {other:?}"),
        };
        assert_eq!(fields(&[]), vec!["from", "to"]);
        assert_eq!(
            fields(&[("from", "2026-01-01"), ("to", "2027-01-03")]),
            vec!["to"]
        );
        assert_eq!(
            fields(&[("from", "2026-02-01"), ("to", "2026-01-31")]),
            vec!["to"]
        );
        assert_eq!(
            fields(&[("from", "2026-1-1"), ("to", "tomorrow")]),
            vec!["from", "to"]
        );
        assert_eq!(
            fields(&[
                ("from", "2026-01-01"),
                ("to", "2026-01-02"),
                ("sku", "bad sku")
            ]),
            vec!["sku"]
        );
    }
}
