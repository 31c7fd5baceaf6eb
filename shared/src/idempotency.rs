//! Idempotency: a request repeated with the same key gets the first answer again, never
//! a second effect.
//!
//! A record per `(scope, owner, key)` in the `idempotency` table holds the request's
//! fingerprint (SHA-256 of its canonical JSON) and a state:
//! - claiming is one conditional `PutItem`: it succeeds for a new key, an expired record,
//!   or an in-progress record whose lease ran out (its Lambda died); otherwise DynamoDB
//!   hands back the existing record in the same round trip
//!   (`ReturnValuesOnConditionCheckFailure`), which decides the answer: the stored
//!   response (same fingerprint, completed), 409 with `Retry-After` (same fingerprint,
//!   still running), or 422 (another body);
//! - completing stores the response, ideally inside the operation's own transaction
//!   ([`Idempotency::completion`]), so the effect and its record commit together;
//! - a refused operation (a final 4xx such as 404, 409, 422) records its refusal, which
//!   repeats answer again; an operation that failed on our side (5xx, contention)
//!   releases its claim, so the client can retry with the same key.
//!
//! Each claim carries a token of its own: after a takeover (the first holder's lease ran
//! out) the old holder can neither complete nor release the new holder's claim.
//!
//! Expiry is checked on read (`expires_at`); DynamoDB's TTL deletes records later. HTTP
//! handlers use [`run`]; saga steps and consumers use the same calls with the order id or
//! event id as the key.

use crate::dynamo::{
    StoreError, from_item, is_condition_failed, is_transaction_conflict, to_attribute, to_item,
};
use crate::problem::ApiError;
use crate::time::Timestamp;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;

/// The request header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// The response header that marks a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a completed record answers repeats (API.md: at least 24 hours).
pub const RETENTION_SECS: i64 = 24 * 3600;
/// How long a claim holds by default before another request may take over: longer than
/// the timeout of every function that claims keys (the declaration test checks it), so a
/// live request is never overtaken.
pub const DEFAULT_LEASE_MILLIS: i64 = 60_000;
/// How often completing a claim is tried before giving up (the operation's effect has
/// happened by then; giving up leaves the key to be retaken after its lease).
const COMPLETE_ATTEMPTS: u32 = 3;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// The answer a completed request gave, kept to give again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// `Location` header, if it had one.
    pub location: Option<String>,
    /// Media type, when not `application/json` (a recorded refusal is problem+json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl StoredResponse {
    /// The response as the client gets it (`replayed` adds [`REPLAYED_HEADER`]).
    pub fn to_response(&self, replayed: bool) -> Result<Response<Body>, ApiError> {
        // The stored bytes, exactly: a replay is the first answer again.
        let mut response = Response::new(Body::Text(self.body.clone()));
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).map_err(ApiError::internal)?;
        let headers = response.headers_mut();
        let content_type = self.content_type.as_deref().unwrap_or("application/json");
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_str(content_type).map_err(ApiError::internal)?,
        );
        if let Some(loc) = &self.location {
            headers.insert(
                http::header::LOCATION,
                http::HeaderValue::from_str(loc).map_err(ApiError::internal)?,
            );
        }
        if replayed {
            headers.insert(REPLAYED_HEADER, http::HeaderValue::from_static("true"));
        }
        Ok(response)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    status: String,
    fingerprint: String,
    /// The holder's token; only it may complete or release the claim.
    token: String,
    response: Option<StoredResponse>,
    /// Epoch milliseconds until which an in-progress claim holds.
    lease_until: i64,
    /// Epoch seconds; the TTL attribute.
    expires_at: i64,
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is ours: run the operation, then complete or release.
    Acquired(Claimed),
    /// The same request completed before: give its answer again.
    Replay(StoredResponse),
    /// The same request is running now.
    InProgress {
        /// Seconds until its lease runs out.
        retry_after_secs: u64,
    },
    /// The key was used with a different request.
    Mismatch,
}

/// A key this request holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The record id: `scope#owner#key`.
    pub id: String,
    /// This holder's token.
    pub token: String,
}

/// The idempotency table.
#[derive(Debug, Clone)]
pub struct Idempotency {
    client: Client,
    table: String,
}

/// SHA-256 (hex) of a body's canonical JSON (object keys sorted, no whitespace), so two
/// bodies that mean the same are the same request; non-JSON bodies hash as bytes.
pub fn fingerprint(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => fingerprint_of(&v),
        Err(_) => hex_sha256(body),
    }
}

/// SHA-256 (hex) of `value` serialized as JSON. For a `serde_json::Value` that is its
/// canonical form (maps keep their keys sorted), so [`fingerprint`] and this agree.
pub fn fingerprint_of<T: Serialize + ?Sized>(value: &T) -> String {
    hex_sha256(&serde_json::to_vec(value).unwrap_or_default())
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The record id of a key: per operation (`scope`) and per caller (`owner`), so two
/// clients choosing the same key never collide. The owner's length is part of the id, so
/// no `#` in an owner or key can make two different pairs meet.
pub fn record_id(scope: &str, owner: &str, key: &str) -> String {
    format!("{scope}#{}#{owner}#{key}", owner.len())
}

/// Reads the `Idempotency-Key` header: required, 1..=255 visible ASCII characters.
pub fn key_from(req: &Request) -> Result<String, ApiError> {
    let raw = req
        .headers()
        .get(HEADER)
        .ok_or_else(|| ApiError::field("Idempotency-Key", "this header is required"))?;
    raw.to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        })
}

impl Idempotency {
    /// The store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Claims `id` for a request with `fingerprint` (one round trip, see the module doc).
    pub async fn claim(
        &self,
        id: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let record = Record {
            id: id.to_owned(),
            status: IN_PROGRESS.to_owned(),
            fingerprint: fingerprint.to_owned(),
            token: ulid::Ulid::new().to_string(),
            response: None,
            lease_until: now.timestamp_millis() + DEFAULT_LEASE_MILLIS,
            expires_at: now.timestamp() + RETENTION_SECS,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression(
                "attribute_not_exists(#id) OR #expires < :now_s OR (#status = :in_progress AND #lease < :now_ms)",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#lease", "lease_until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now.timestamp_millis().to_string()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => {
                return Ok(Claim::Acquired(Claimed {
                    id: id.to_owned(),
                    token: record.token,
                }));
            }
            Err(e) if is_condition_failed(&e) => e,
            // The twin's transaction is completing the record at this moment (it holds the
            // item): the same request is in progress, and answers in a moment.
            Err(e) if is_transaction_conflict(&e) => {
                return Ok(Claim::InProgress {
                    retry_after_secs: 1,
                });
            }
            Err(e) => return Err(StoreError::request("PutItem", e)),
        };
        let existing = match err.into_service_error() {
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        }
            .ok_or_else(|| StoreError::local("PutItem answered a failed condition without the existing item", std::io::Error::other("no item in the answer")))?;
        let existing: Record = from_item(existing)?;
        Ok(if existing.fingerprint != fingerprint {
            Claim::Mismatch
        } else if existing.status == COMPLETED {
            match existing.response {
                Some(r) => Claim::Replay(r),
                None => Claim::Mismatch,
            }
        } else {
            let wait_ms = (existing.lease_until - now.timestamp_millis()).max(1000);
            Claim::InProgress {
                retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(1),
            }
        })
    }

    fn completion_update(
        &self,
        claimed: &Claimed,
        response: &StoredResponse,
        now: Timestamp,
    ) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .key("id", AttributeValue::S(claimed.id.clone()))
            // Every attribute through a placeholder: `response` and `status` are reserved words.
            .update_expression(
                "SET #status = :completed, #response = :response, #expires = :expires",
            )
            .condition_expression("#status = :in_progress AND #token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#response", "response")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.into()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":token", AttributeValue::S(claimed.token.clone()))
            .expression_attribute_values(":response", to_attribute(response)?)
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((now.timestamp() + RETENTION_SECS).to_string()),
            )
            .build()
            .map_err(|e| StoreError::local("build completion", e))
    }

    /// The transaction item that completes `claimed` with `response`: put it in the
    /// operation's own transaction so the effect and the record commit together. If
    /// the claim was lost meanwhile, the whole transaction is cancelled.
    pub fn completion(
        &self,
        claimed: &Claimed,
        response: &StoredResponse,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .update(self.completion_update(claimed, response, now)?)
            .build())
    }

    /// Completes `claimed` on its own (for operations without a transaction), trying a
    /// few times. `Ok(false)` when the claim is no longer this holder's (its lease ran out
    /// and another request took the key).
    pub async fn complete(
        &self,
        claimed: &Claimed,
        response: &StoredResponse,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut attempt = 0;
        loop {
            let u = self.completion_update(claimed, response, now)?;
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(u.key))
                .update_expression(u.update_expression)
                .set_condition_expression(u.condition_expression)
                .set_expression_attribute_names(u.expression_attribute_names)
                .set_expression_attribute_values(u.expression_attribute_values)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) if is_condition_failed(&e) => return Ok(false),
                Err(e) if attempt + 1 >= COMPLETE_ATTEMPTS => {
                    return Err(StoreError::request("UpdateItem", e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, id = %claimed.id, attempt, "completing idempotency claim failed; retrying");
                    attempt += 1;
                    crate::retry::CLAIM_COMPLETION.wait(attempt).await;
                }
            }
        }
    }

    /// Gives `claimed` up after a failed operation, so the same key can be tried again.
    pub async fn release(&self, claimed: &Claimed) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(claimed.id.clone()))
            .condition_expression("#status = :in_progress AND #token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":token", AttributeValue::S(claimed.token.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()), // not ours any more: nothing to give up
            Err(e) => Err(StoreError::request("DeleteItem", e)),
        }
    }
}

/// How an operation under [`run`] left its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The operation's transaction completed the claim ([`Idempotency::completion`]).
    InTransaction,
    /// [`run`] must complete it.
    No,
}

/// Runs an HTTP operation at most once per `Idempotency-Key`: one call for any handler.
///
/// Reads and checks the header, claims the key for this caller and `scope`, and either
/// answers from the record (replay, 409 in progress, 422 other body) or runs `operation`
/// with the claim. On success the answer is recorded (unless the operation did so in its
/// transaction); on failure the claim is released and the error returned.
pub async fn run<F, Fut>(
    store: &Idempotency,
    scope: &str,
    owner: &str,
    req: &Request,
    operation: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(Claimed) -> Fut,
    Fut: Future<Output = Result<(StoredResponse, Recorded), ApiError>>,
{
    let key = key_from(req)?;
    let fp = fingerprint(req.body().as_ref());
    let id = record_id(scope, owner, &key);
    match store.claim(&id, &fp, crate::time::now()).await? {
        Claim::Replay(stored) => stored.to_response(true),
        Claim::InProgress { retry_after_secs } => Err(ApiError::InProgress { retry_after_secs }),
        Claim::Mismatch => Err(ApiError::Unprocessable(
            "This Idempotency-Key was used with a different request body".into(),
        )),
        Claim::Acquired(claimed) => match operation(claimed.clone()).await {
            Ok((stored, recorded)) => {
                if recorded == Recorded::No {
                    finish(store, &claimed, &stored).await;
                }
                stored.to_response(false)
            }
            Err(err) if err.is_final() => {
                // A refusal is this key's answer: a repeat gets it again (API.md).
                let request_id = crate::http::meta(req).request_id;
                let refusal = crate::http::problem_response(err, &request_id);
                let stored = StoredResponse {
                    status: refusal.status().as_u16(),
                    body: String::from_utf8_lossy(refusal.body().as_ref()).into_owned(),
                    location: None,
                    content_type: Some(crate::problem::PROBLEM_JSON.to_owned()),
                };
                finish(store, &claimed, &stored).await;
                Ok(refusal)
            }
            Err(err) => {
                if let Err(release) = store.release(&claimed).await {
                    tracing::error!(error = %release, id = %claimed.id, "could not release idempotency claim");
                }
                Err(err)
            }
        },
    }
}

/// Records an answer; a failure to record is logged, not answered: the operation's
/// effect has happened and the client must learn of it.
async fn finish(store: &Idempotency, claimed: &Claimed, stored: &StoredResponse) {
    match store.complete(claimed, stored, crate::time::now()).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::error!(id = %claimed.id, "idempotency claim was taken over before it completed")
        }
        Err(e) => {
            tracing::error!(error = %e, id = %claimed.id, "could not record the answer for an idempotency key")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_json_bodies_share_a_fingerprint() {
        let a = fingerprint(br#"{"b": 1, "a": [1, 2]}"#);
        let b = fingerprint(br#"{"a":[1,2],"b":1}"#);
        assert_eq!(a, b);
        assert_ne!(a, fingerprint(br#"{"a":[2,1],"b":1}"#));
        assert_eq!(a.len(), 64);
        assert_ne!(fingerprint(b"not json"), fingerprint(b"not json!"));
    }

    #[test]
    fn owners_and_keys_containing_separators_do_not_collide() {
        assert_ne!(record_id("s", "a#b", "c"), record_id("s", "a", "b#c"));
    }

    #[test]
    fn keys_are_scoped_by_operation_and_caller() {
        assert_ne!(
            record_id("orders-create", "u1", "k"),
            record_id("orders-create", "u2", "k")
        );
        assert_ne!(
            record_id("orders-create", "u1", "k"),
            record_id("orders-cancel", "u1", "k")
        );
    }

    #[test]
    fn stored_responses_replay_with_status_location_and_marker() {
        let stored = StoredResponse {
            status: 202,
            body: r#"{"order_id":"X"}"#.into(),
            location: Some("/orders/X".into()),
            content_type: None,
        };
        let r = stored.to_response(true).unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()["location"], "/orders/X");
        assert_eq!(r.headers()[REPLAYED_HEADER], "true");
        assert_eq!(r.body().as_ref(), br#"{"order_id":"X"}"#);
        assert!(
            stored
                .to_response(false)
                .unwrap()
                .headers()
                .get(REPLAYED_HEADER)
                .is_none()
        );
    }
}
