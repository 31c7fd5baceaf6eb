//! HTTP handlers for `/orders`.

use crate::domain::{OrderView, Quantity, Shipping};
use crate::{Catalog, NewOrder, OrderStore, Trace};
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use shared::catalog::Sku;
use shared::http::{json, meta, parse_json, path_param};
use shared::idempotency::{self, Idempotency, Recorded};
use shared::identity::Caller;
use shared::ids::{OrderId, UserId};
use shared::pagination::{Page, cursor_str, encode_cursor, foreign_cursor, page_request};
use shared::{ApiError, FieldError};
use std::collections::HashSet;

/// The idempotency scope of order intake.
pub const CREATE_SCOPE: &str = "orders-create";

/// Body of `POST /orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    items: Vec<LineRequest>,
    shipping: ShippingRequest,
    payment: PaymentRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRequest {
    sku: String,
    quantity: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippingRequest {
    name: String,
    line1: String,
    city: String,
    postal_code: String,
    country: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentRequest {
    token: String,
}

impl OrderRequest {
    /// Every problem of the request at once, each under its JSON path.
    fn validate(self) -> Result<NewOrder, ApiError> {
        let mut errors = Vec::new();
        if !(1..=50).contains(&self.items.len()) {
            errors.push(FieldError::new("items", "must have 1 to 50 lines"));
        }
        let mut seen = HashSet::new();
        let mut lines = Vec::new();
        for (i, line) in self.items.into_iter().enumerate() {
            let sku = Sku::try_from(line.sku)
                .map_err(|e| errors.push(FieldError::new(format!("items[{i}].sku"), e.to_string())))
                .ok();
            let qty = Quantity::try_from(line.quantity)
                .map_err(|e| errors.push(FieldError::new(format!("items[{i}].quantity"), e)))
                .ok();
            if let Some(s) = &sku
                && !seen.insert(s.clone())
            {
                errors.push(FieldError::new(
                    format!("items[{i}].sku"),
                    "appears on more than one line",
                ));
            }
            if let (Some(s), Some(q)) = (sku, qty) {
                lines.push((s, q));
            }
        }
        let s = self.shipping;
        let shipping = Shipping::parse(s.name, s.line1, s.city, s.postal_code, s.country)
            .map_err(|e| errors.extend(e))
            .ok();
        let token = self.payment.token.trim().to_owned();
        if !(1..=255).contains(&token.len()) || token.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "payment.token",
                "must be 1 to 255 characters",
            ));
        }
        match shipping {
            Some(shipping) if errors.is_empty() => Ok(NewOrder {
                lines,
                shipping,
                payment_token: token,
                source_ip: None,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// The body of `POST /orders`, parsed and validated: what intake works from. Every
/// problem of the body at once, each under its JSON path (400/422 as API.md says).
pub fn order_request(req: &Request) -> Result<NewOrder, ApiError> {
    parse_json::<OrderRequest>(req)?.validate()
}

fn trace(req: &Request) -> Trace {
    let m = meta(req);
    Trace {
        correlation_id: m.correlation_id,
        causation_id: m.request_id,
    }
}

/// `POST /orders`: 202 with the order `PENDING` and `Location`; at most once per
/// `Idempotency-Key` (a repeat answers the same; another body with the key is 422).
pub async fn create(
    orders: &impl OrderStore,
    catalog: &impl Catalog,
    idem: &Idempotency,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    idempotency::key_from(&req)?;
    let new = NewOrder {
        source_ip: shared::http::source_ip(&req),
        ..order_request(&req)?
    };
    let trace = trace(&req);
    let caller = &caller;
    idempotency::run(
        idem,
        CREATE_SCOPE,
        &caller.user_id,
        &req,
        |claimed| async move {
            let now = shared::time::now();
            let (_, response) =
                crate::place(orders, catalog, caller, new, &trace, now, Some(&claimed)).await?;
            Ok((response, Recorded::InTransaction))
        },
    )
    .await
}

/// `GET /orders/{order_id}`: its owner or an admin.
pub async fn get(orders: &impl OrderStore, req: Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let order_id = path_param(&req, "order_id")?;
    let order = crate::get(orders, &caller, &order_id).await?;
    json(StatusCode::OK, &OrderView::from(&order))
}

/// `GET /orders`: the caller's orders newest first; an admin may pass `?user_id=`.
pub async fn list(orders: &impl OrderStore, req: Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let requested = req
        .query_string_parameters_ref()
        .and_then(|q| q.first("user_id"))
        .map(str::to_owned);
    let user_id: UserId = match requested {
        Some(u) if caller.user_id != u.as_str() => {
            caller.require_admin()?;
            u.parse()
                .map_err(|_| ApiError::field("user_id", "must be a user id"))?
        }
        _ => caller.user_id.clone(),
    };
    let page = page_request(&req, &["order_id", "user_id"])?;
    if let Some(c) = &page.cursor {
        let ours = cursor_str(c, "user_id") == Some(user_id.as_str())
            && cursor_str(c, "order_id").is_some_and(|id| id.parse::<OrderId>().is_ok());
        if !ours {
            return Err(foreign_cursor());
        }
    }
    let (found, next) = orders.list_for_user(&user_id, &page).await?;
    let next_cursor = next.as_ref().map(encode_cursor).transpose()?;
    json(
        StatusCode::OK,
        &Page {
            items: found.iter().map(OrderView::from).collect(),
            next_cursor,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::http::parse_json_bytes;

    fn fields(body: &str) -> Vec<String> {
        let req: OrderRequest = parse_json_bytes(body.as_bytes()).unwrap();
        match req.validate() {
            Err(ApiError::Validation(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    const SHIP: &str = r#""shipping":{"name":"Ada","line1":"1 Main St","city":"London","postal_code":"N1","country":"GB"}"#;

    #[test]
    fn every_line_problem_is_named_by_its_path() {
        let body = format!(
            r#"{{"items":[{{"sku":"MUG-1","quantity":0}},{{"sku":"bad","quantity":1}},{{"sku":"MUG-1","quantity":2}}],{SHIP},"payment":{{"token":"tok_visa"}}}}"#
        );
        assert_eq!(
            fields(&body),
            ["items[0].quantity", "items[1].sku", "items[2].sku"]
        );
    }

    #[test]
    fn empty_orders_and_blank_tokens_are_refused() {
        let body = format!(r#"{{"items":[],{SHIP},"payment":{{"token":" "}}}}"#);
        assert_eq!(fields(&body), ["items", "payment.token"]);
        let many: Vec<String> = (0..51)
            .map(|i| format!(r#"{{"sku":"SKU-{i}","quantity":1}}"#))
            .collect();
        let body = format!(
            r#"{{"items":[{}],{SHIP},"payment":{{"token":"t"}}}}"#,
            many.join(",")
        );
        assert_eq!(fields(&body), ["items"]);
    }
}
