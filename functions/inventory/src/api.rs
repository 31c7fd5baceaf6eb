//! HTTP handlers for `/products`.

use crate::domain::{ProductName, ProductView, StockDelta};
use crate::{ProductStore, Trace};
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use shared::catalog::Sku;
use shared::http::{json, json_at, meta, parse_json, path_param};
use shared::idempotency::{self, Idempotency, Recorded, StoredResponse};
use shared::identity::Caller;
use shared::money::Money;
use shared::pagination::{Page, cursor_str, encode_cursor, foreign_cursor, page_request};
use shared::{ApiError, FieldError};

/// Body of `PUT /products/{sku}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutProductRequest {
    name: String,
    price: PriceRequest,
}

/// A price as sent: strings, validated into [`Money`] with field errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceRequest {
    amount: String,
    currency: String,
}

/// Body of `POST /products/{sku}/stock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustStockRequest {
    delta: i64,
}

fn trace(req: &Request) -> Trace {
    let m = meta(req);
    Trace {
        correlation_id: m.correlation_id,
        causation_id: m.request_id,
    }
}

/// The SKU in the path. A malformed one names no product: 404 on reads; 400 on `PUT`,
/// where the client is choosing it.
fn sku_for_read(req: &Request) -> Result<Sku, ApiError> {
    let raw = path_param(req, "sku")?;
    Sku::try_from(raw.clone()).map_err(|_| ApiError::NotFound(format!("No product {raw}")))
}

/// `PUT /products/{sku}` (admin): 201 created, 200 replaced.
pub async fn put_product(
    store: &impl ProductStore,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    caller.require_admin()?;
    let raw_sku = path_param(&req, "sku")?;
    let body: PutProductRequest = parse_json(&req)?;
    let mut errors = Vec::new();
    let sku = Sku::try_from(raw_sku)
        .map_err(|e| errors.push(FieldError::new("sku", e.to_string())))
        .ok();
    let name = ProductName::try_from(body.name)
        .map_err(|e| errors.push(FieldError::new("name", e)))
        .ok();
    let price = match Money::parse(&body.price.amount, &body.price.currency) {
        Ok(p) if p.is_zero() => {
            errors.push(FieldError::new("price.amount", "must be greater than zero"));
            None
        }
        Ok(p) => Some(p),
        Err(e @ shared::money::MoneyError::UnknownCurrency) => {
            errors.push(FieldError::new("price.currency", e.to_string()));
            None
        }
        Err(e) => {
            errors.push(FieldError::new("price.amount", e.to_string()));
            None
        }
    };
    let (Some(sku), Some(name), Some(price)) = (sku, name, price) else {
        return Err(ApiError::Validation(errors));
    };
    let (product, created) =
        crate::upsert(store, sku, name, price, &trace(&req), shared::time::now()).await?;
    let view = ProductView::from(&product);
    if created {
        json_at(
            StatusCode::CREATED,
            &format!("/products/{}", product.sku),
            &view,
        )
    } else {
        json(StatusCode::OK, &view)
    }
}

/// `GET /products/{sku}`: any caller.
pub async fn get_product(
    store: &impl ProductStore,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    Caller::from_context(req.request_context_ref())?;
    let sku = sku_for_read(&req)?;
    let product = store
        .get(&sku)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No product {sku}")))?;
    json(StatusCode::OK, &ProductView::from(&product))
}

/// `GET /products`: any caller; the catalog in SKU order, paginated.
pub async fn list_products(
    store: &impl ProductStore,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    Caller::from_context(req.request_context_ref())?;
    let page = page_request(&req, &["catalog", "sku"])?;
    if let Some(c) = &page.cursor {
        let ours = cursor_str(c, "catalog") == Some("products")
            && cursor_str(c, "sku").is_some_and(|s| Sku::try_from(s.to_owned()).is_ok());
        if !ours {
            return Err(foreign_cursor());
        }
    }
    let (products, next) = store.list(&page).await?;
    let next_cursor = next.as_ref().map(encode_cursor).transpose()?;
    let page = Page {
        items: products.iter().map(ProductView::from).collect(),
        next_cursor,
    };
    json(StatusCode::OK, &page)
}

/// The idempotency scope of stock adjustments.
pub const ADJUST_SCOPE: &str = "adjust-stock";

/// `POST /products/{sku}/stock` (admin): `{"delta": n}`, never below reserved (409). With
/// an `Idempotency-Key` (recommended: an admin page that retries after a lost answer would
/// otherwise add twice) it happens at most once per key and SKU: a repeat answers the
/// first answer again, another body with the key is 422, as `POST /orders`.
pub async fn adjust_stock(
    store: &impl ProductStore,
    idem: &Idempotency,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    caller.require_admin()?;
    let sku = sku_for_read(&req)?;
    let keyed = req.headers().contains_key(idempotency::HEADER);
    if keyed {
        idempotency::key_from(&req)?;
    }
    let body: AdjustStockRequest = parse_json(&req)?;
    let delta = StockDelta::try_from(body.delta).map_err(|e| ApiError::field("delta", e))?;
    let trace = trace(&req);
    let now = shared::time::now();
    if !keyed {
        let product = crate::adjust_stock(store, sku, delta, &trace, now).await?;
        return json(StatusCode::OK, &ProductView::from(&product));
    }
    let answer =
        |p: &crate::domain::Product| -> Result<StoredResponse, shared::dynamo::StoreError> {
            Ok(StoredResponse {
                status: StatusCode::OK.as_u16(),
                body: serde_json::to_string(&ProductView::from(p))
                    .map_err(|e| shared::dynamo::StoreError::local("serialize the answer", e))?,
                location: None,
                content_type: None,
            })
        };
    // A key names one adjustment of one SKU: the owner is the admin and the SKU.
    let owner = format!("{}#{sku}", caller.user_id);
    idempotency::run(idem, ADJUST_SCOPE, &owner, &req, |claimed| async move {
        let product = crate::adjust_stock_with(store, sku, delta, &trace, now, |p| {
            Ok(Some(idem.completion(&claimed, &answer(p)?, now)?))
        })
        .await?;
        Ok((answer(&product)?, Recorded::InTransaction))
    })
    .await
}
