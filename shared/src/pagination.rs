//! Cursor pagination as the API promises it: `?limit=` (1..=100, default 20) and an
//! opaque `?cursor=`; answers `{"items": [...], "next_cursor": "..." | null}`.
//!
//! A cursor is DynamoDB's `LastEvaluatedKey`, as base64url JSON. It is opaque to clients
//! but not secret: the store that takes one back checks it names the same partition.

use crate::dynamo::{Item, StoreError};
use crate::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::{Request, RequestExt};
use serde::Serialize;

/// Default page size.
pub const DEFAULT_LIMIT: i32 = 20;
/// Largest page size.
pub const MAX_LIMIT: i32 = 100;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// Items per page.
    pub limit: i32,
    /// Where to continue, as a DynamoDB key.
    pub cursor: Option<Item>,
}

/// One page of a list endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The cursor of the next page, `null` on the last.
    pub next_cursor: Option<String>,
}

/// Reads `limit` and `cursor` from the query string; bad values are 400s naming them.
/// The cursor must hold exactly `key_attributes`.
pub fn page_request(req: &Request, key_attributes: &[&str]) -> Result<PageRequest, ApiError> {
    let query = req.query_string_parameters_ref();
    let limit = match query.and_then(|q| q.first("limit")) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::field(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let cursor = query
        .and_then(|q| q.first("cursor"))
        .map(|raw| decode_cursor(raw, key_attributes))
        .transpose()?;
    Ok(PageRequest { limit, cursor })
}

/// The cursor for `last_evaluated_key`.
pub fn encode_cursor(key: &Item) -> Result<String, StoreError> {
    let json: serde_json::Value = serde_dynamo::from_item(key.clone())?;
    Ok(URL_SAFE_NO_PAD.encode(json.to_string()))
}

/// The string value of `attribute` in a decoded cursor, for the store's own checks.
pub fn cursor_str<'a>(cursor: &'a Item, attribute: &str) -> Option<&'a str> {
    cursor
        .get(attribute)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The 400 for a cursor that does not belong to the list it was sent to.
pub fn foreign_cursor() -> ApiError {
    ApiError::field("cursor", "is not a cursor this list returned")
}

/// The key a cursor stands for, if it is one of ours with exactly `key_attributes`.
pub fn decode_cursor(raw: &str, key_attributes: &[&str]) -> Result<Item, ApiError> {
    let invalid = || ApiError::field("cursor", "is not a cursor this list returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let obj = json.as_object().ok_or_else(invalid)?;
    // Non-empty strings within DynamoDB's key size, or numbers: anything else would make
    // DynamoDB refuse the request, which must be the client's 400, not our 500.
    let shape_ok = obj.len() == key_attributes.len()
        && key_attributes.iter().all(|k| match obj.get(*k) {
            Some(serde_json::Value::String(v)) => (1..=1024).contains(&v.len()),
            Some(serde_json::Value::Number(_)) => true,
            _ => false,
        });
    if !shape_ok {
        return Err(invalid());
    }
    serde_dynamo::to_item(json).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_shapes() {
        let key: Item = [
            ("user_id".to_owned(), AttributeValue::S("u1".into())),
            ("order_id".to_owned(), AttributeValue::S("01J".into())),
        ]
        .into_iter()
        .collect();
        let c = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&c, &["user_id", "order_id"]).unwrap(), key);
        assert!(decode_cursor(&c, &["sku"]).is_err());
        assert!(decode_cursor("not base64!", &["sku"]).is_err());
        for forged in [
            r#"{"user_id":{"nested":1},"order_id":"x"}"#.to_owned(),
            r#"{"user_id":"","order_id":"x"}"#.to_owned(),
            format!(r#"{{"user_id":"{}","order_id":"x"}}"#, "u".repeat(1025)),
            r#"{"user_id":"u","order_id":"x","extra":"y"}"#.to_owned(),
        ] {
            let c = URL_SAFE_NO_PAD.encode(&forged);
            assert!(
                decode_cursor(&c, &["user_id", "order_id"]).is_err(),
                "{forged}"
            );
        }
    }
}
