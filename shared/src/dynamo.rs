//! DynamoDB items through `serde_dynamo`, and the error type store adapters share.

use crate::problem::ApiError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Why a store operation failed for reasons other than the domain's own
/// (a failed condition that means "already exists" is the adapter's to translate).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An item could not be converted to or from its Rust type.
    #[error("item conversion failed")]
    Codec(#[from] serde_dynamo::Error),
    /// DynamoDB refused or could not be reached.
    #[error("DynamoDB {operation} failed{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Request {
        /// The API operation, for the log.
        operation: &'static str,
        /// DynamoDB's error code when it answered (`ThrottlingException`,
        /// `ConditionalCheckFailedException`, ...); none when it was not reached.
        code: Option<String>,
        /// The SDK error with its cause chain.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A batch request still had unprocessed keys or writes after its retries: DynamoDB's
    /// way of throttling a batch.
    #[error("DynamoDB {operation} left items unprocessed after its retries")]
    Unprocessed {
        /// The API operation, for the log.
        operation: &'static str,
    },
    /// A request could not be built, or its answer did not say what DynamoDB promises:
    /// a defect of ours, not of the store.
    #[error("{what}")]
    Local {
        /// What failed.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The error codes with which DynamoDB says it is throttling the caller.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

impl StoreError {
    /// Wraps the SDK error of `operation`, keeping DynamoDB's error code (and counting a
    /// throttled answer into the invocation's `DynamoDbThrottled` metric).
    pub fn request<E>(operation: &'static str, source: E) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let code = source.code().map(str::to_owned);
        if code
            .as_deref()
            .is_some_and(|c| THROTTLING_CODES.contains(&c))
        {
            crate::metrics::note_dynamodb_throttled();
        }
        Self::Request {
            operation,
            code,
            source: Box::new(source),
        }
    }

    /// A batch `operation` whose items stayed unprocessed after its retries.
    pub fn unprocessed(operation: &'static str) -> Self {
        crate::metrics::note_dynamodb_throttled();
        Self::Unprocessed { operation }
    }

    /// A failure before a request was sent or in reading its answer (`what` says which).
    pub fn local(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Local {
            what,
            source: Box::new(source),
        }
    }

    /// DynamoDB said it is throttling: the same request later, not a different one, is
    /// the remedy, and an alarm on this is about capacity, not a fault.
    pub fn is_throttled(&self) -> bool {
        match self {
            Self::Request { code, .. } => code
                .as_deref()
                .is_some_and(|c| THROTTLING_CODES.contains(&c)),
            Self::Unprocessed { .. } => true,
            Self::Codec(_) | Self::Local { .. } => false,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(err)
    }
}

/// The item of `table` at `key` as a `T`, read consistently (a saga step and an API route
/// read what the last write left), or `None` when there is none: the one `GetItem` every
/// store adapter makes.
pub async fn get<T: DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Item,
) -> Result<Option<T>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| StoreError::request("GetItem", e))?;
    out.item.map(from_item).transpose()
}

/// The items of `table` at `keys`, read consistently in one `BatchGetItem` (at most 100
/// keys), with `projection` if given. Keys DynamoDB leaves unprocessed (its answer to
/// throttling) are asked again after [`crate::retry::UNPROCESSED`]'s pause, in at most
/// `rounds` requests in all; past that the read fails as throttled. Items come in no
/// particular order; a missing key is simply absent.
pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
    rounds: u32,
) -> Result<Vec<Item>, StoreError> {
    let mut pending = Some(
        aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_owned))
            .build()
            .map_err(|e| StoreError::local("build BatchGetItem", e))?,
    );
    let mut found = Vec::new();
    for round in 0..rounds {
        let Some(request) = pending.take() else { break };
        if round > 0 {
            crate::retry::UNPROCESSED.wait(round).await;
        }
        let out = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(|e| StoreError::request("BatchGetItem", e))?;
        found.extend(
            out.responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default(),
        );
        pending = out
            .unprocessed_keys
            .and_then(|mut u| u.remove(table))
            .filter(|k| !k.keys().is_empty());
    }
    match pending {
        Some(_) => Err(StoreError::unprocessed("BatchGetItem")),
        None => Ok(found),
    }
}

/// A key of one attribute.
pub fn key(name: &str, value: impl Into<String>) -> Item {
    Item::from([(name.to_owned(), AttributeValue::S(value.into()))])
}

/// Serializes a value into an item.
pub fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    Ok(serde_dynamo::to_item(value)?)
}

/// Deserializes an item into a value.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

/// Serializes one value into an attribute (for expression values).
pub fn to_attribute<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    Ok(serde_dynamo::to_attribute_value(value)?)
}

/// A guarded state change of one item, the write every saga step makes: `field` (the
/// record's `status` or `state`) moves `from` → `to` only if it still holds `from` (the value
/// the step read), with `updated_at` and any other `sets`, and an optional extra condition.
/// Orders, payments and reservations build their transitions with it, so the guard is
/// written once.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    /// The table.
    pub table: &'a str,
    /// The item's key attribute and value.
    pub key: (&'a str, AttributeValue),
    /// The attribute that holds the record's state.
    pub field: &'a str,
    /// The state read: the write happens only if it is still this.
    pub from: AttributeValue,
    /// The new state.
    pub to: AttributeValue,
    /// Other attributes set with it.
    pub sets: Vec<(&'a str, AttributeValue)>,
    /// A further condition ANDed with the guard, with the values it names.
    pub also: Option<(&'a str, Vec<(&'a str, AttributeValue)>)>,
}

impl Transition<'_> {
    /// The transaction item of this change.
    pub fn item(self) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let mut sets = vec!["#field = :to".to_owned(), "#updated = :now".to_owned()];
        let mut condition = "#field = :from".to_owned();
        let now = crate::time::now().to_rfc3339_opts(crate::time::SecondsFormat::Millis, true);
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.table)
            .key(self.key.0, self.key.1)
            .expression_attribute_names("#field", self.field)
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_values(":to", self.to)
            .expression_attribute_values(":from", self.from)
            .expression_attribute_values(":now", AttributeValue::S(now));
        for (i, (name, value)) in self.sets.into_iter().enumerate() {
            sets.push(format!("#x{i} = :x{i}"));
            update = update
                .expression_attribute_names(format!("#x{i}"), name)
                .expression_attribute_values(format!(":x{i}"), value);
        }
        if let Some((also, values)) = self.also {
            condition = format!("{condition} AND {also}");
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::local("build a transition", e))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(update)
            .build())
    }
}

/// True when a request failed only because its condition expression did not hold:
/// the signal for "exists already" or "does not exist", never a fault.
pub fn is_condition_failed<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

/// True when a single-item write was refused because a transaction holds the item right now
/// (`TransactionConflictException`): in AWS it happens whenever a write meets a transaction
/// on the same item, so it means "someone else is writing this", never a fault.
pub fn is_transaction_conflict<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("TransactionConflictException")
}

/// How a transaction ended, short of a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transaction {
    /// Every item was written.
    Committed,
    /// Nothing was written: a condition did not hold or another transaction was on the
    /// same item. Holds each item's cancellation code, in the order of the items
    /// (`None` for items that were fine).
    Cancelled(Vec<Option<String>>),
}

impl Transaction {
    /// True when the transaction was written.
    pub fn committed(&self) -> bool {
        matches!(self, Self::Committed)
    }

    /// True when the transaction was cancelled only because other transactions held some of
    /// its items: nothing was wrong with it, and the same request may simply be sent again.
    pub fn only_conflicts(&self) -> bool {
        matches!(self, Self::Cancelled(codes)
            if codes.iter().any(|c| c.as_deref() == Some("TransactionConflict"))
                && codes.iter().flatten().all(|c| c == "TransactionConflict"))
    }

    /// True when item `index`'s condition did not hold.
    pub fn condition_failed(&self, index: usize) -> bool {
        matches!(self, Self::Cancelled(codes) if codes.get(index).and_then(Option::as_deref) == Some("ConditionalCheckFailed"))
    }
}

/// Writes `items` as one transaction. With a `scope` (what the write is about, e.g. the
/// order id and step) it carries a `ClientRequestToken` derived from the scope and from
/// everything written ([`request_token`]), so the SDK's retry of a transaction whose answer
/// was lost gets the first outcome instead of failing its own conditions, which would read
/// as a lost race. Because the token is derived from the content, the same token always
/// carries the same request: a later attempt that writes something else (a new timestamp,
/// new event ids) is a new request, where a fixed token would be refused by DynamoDB with
/// `IdempotentParameterMismatchException` for ten minutes.
/// A cancellation on conditions or conflicts is an outcome ([`Transaction::Cancelled`]),
/// anything else is a [`StoreError`].
///
/// A cancellation caused only by conflicts with other transactions (a hot sku, many orders at
/// once) wrote nothing, so it is sent again after a jittered, growing pause, up to
/// [`CONFLICT_ATTEMPTS`] times in all, before it is returned as an outcome: DynamoDB's own
/// advice for `TransactionConflict`, and it keeps contention from surfacing as a failed step.
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    scope: Option<&str>,
) -> Result<Transaction, StoreError> {
    let token = scope.map(|scope| request_token(scope, &items));
    let mut attempt = 1;
    loop {
        let outcome = transact_once(client, items.clone(), token.clone()).await?;
        if !outcome.only_conflicts() || attempt >= CONFLICT_ATTEMPTS {
            return Ok(outcome);
        }
        crate::retry::CONFLICT.wait(attempt).await;
        attempt += 1;
    }
}

/// How many times [`transact`] sends a transaction that only met conflicts.
pub const CONFLICT_ATTEMPTS: u32 = 8;

async fn transact_once(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    token: Option<String>,
) -> Result<Transaction, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(token)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Transaction::Committed),
        Err(e) => match e.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(c)
                if c.cancellation_reasons().iter().any(|r| {
                    matches!(
                        r.code(),
                        Some("ConditionalCheckFailed" | "TransactionConflict")
                    )
                }) =>
            {
                let codes = c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().filter(|code| *code != "None").map(str::to_owned))
                    .collect();
                Ok(Transaction::Cancelled(codes))
            }
            other => Err(StoreError::request("TransactWriteItems", other)),
        },
    }
}

/// The `ClientRequestToken` of a transaction: 36 hex digits (DynamoDB's limit) of a SHA-256
/// over the scope and a canonical form of every item (maps in key order), so two requests
/// share a token only when they write the same thing.
pub fn request_token(scope: &str, items: &[aws_sdk_dynamodb::types::TransactWriteItem]) -> String {
    use sha2::{Digest, Sha256};
    let mut canon = String::new();
    canon.push_str(scope);
    for item in items {
        canon.push('\u{1e}');
        canonical_write(&mut canon, item);
    }
    let digest = Sha256::digest(canon.as_bytes());
    digest.iter().take(18).map(|b| format!("{b:02x}")).collect()
}

/// What one write of a transaction says, whatever its kind: the parts the token covers.
struct WriteParts<'a> {
    kind: &'static str,
    table: &'a str,
    target: &'a HashMap<String, AttributeValue>,
    update: Option<&'a str>,
    condition: Option<&'a str>,
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, AttributeValue>>,
}

fn write_parts(item: &aws_sdk_dynamodb::types::TransactWriteItem) -> Option<WriteParts<'_>> {
    if let Some(p) = item.put() {
        return Some(WriteParts {
            kind: "put",
            table: p.table_name(),
            target: p.item(),
            update: None,
            condition: p.condition_expression(),
            names: p.expression_attribute_names(),
            values: p.expression_attribute_values(),
        });
    }
    if let Some(u) = item.update() {
        return Some(WriteParts {
            kind: "update",
            table: u.table_name(),
            target: u.key(),
            update: Some(u.update_expression()),
            condition: u.condition_expression(),
            names: u.expression_attribute_names(),
            values: u.expression_attribute_values(),
        });
    }
    if let Some(d) = item.delete() {
        return Some(WriteParts {
            kind: "delete",
            table: d.table_name(),
            target: d.key(),
            update: None,
            condition: d.condition_expression(),
            names: d.expression_attribute_names(),
            values: d.expression_attribute_values(),
        });
    }
    item.condition_check().map(|c| WriteParts {
        kind: "check",
        table: c.table_name(),
        target: c.key(),
        update: None,
        condition: Some(c.condition_expression()),
        names: c.expression_attribute_names(),
        values: c.expression_attribute_values(),
    })
}

fn canonical_write(out: &mut String, item: &aws_sdk_dynamodb::types::TransactWriteItem) {
    use std::fmt::Write as _;
    let Some(w) = write_parts(item) else { return };
    labelled(out, w.kind, Some(w.target));
    labelled(out, "values", w.values);
    let _ = write!(
        out,
        "|{}|{:?}|{:?}|{:?}",
        w.table,
        w.update,
        w.condition,
        sorted(w.names)
    );
}

fn labelled(out: &mut String, label: &str, m: Option<&HashMap<String, AttributeValue>>) {
    out.push('|');
    out.push_str(label);
    out.push(':');
    canonical_map(out, m);
}

fn sorted(names: Option<&HashMap<String, String>>) -> Vec<(&String, &String)> {
    let mut names: Vec<_> = names.into_iter().flatten().collect();
    names.sort();
    names
}

fn canonical_map(out: &mut String, m: Option<&HashMap<String, AttributeValue>>) {
    let mut entries: Vec<_> = m.into_iter().flatten().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (k, v) in entries {
        out.push_str(k);
        out.push('=');
        canonical_attr(out, v);
        out.push(',');
    }
    out.push('}');
}

fn canonical_attr(out: &mut String, v: &AttributeValue) {
    match v {
        AttributeValue::M(m) => canonical_map(out, Some(m)),
        AttributeValue::L(l) => {
            out.push('[');
            for v in l {
                canonical_attr(out, v);
                out.push(',');
            }
            out.push(']');
        }
        // Sets are unordered: sort their members.
        AttributeValue::Ss(s) | AttributeValue::Ns(s) => {
            let mut s = s.clone();
            s.sort();
            out.push_str(&format!("set{s:?}"));
        }
        other => out.push_str(&format!("{other:?}")),
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

    fn put(pairs: &[(&str, &str)]) -> TransactWriteItem {
        let item = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect();
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name("t")
                    .set_item(Some(item))
                    .build()
                    .expect("put"),
            )
            .build()
    }

    #[test]
    fn same_writes_same_token_in_any_map_order() {
        let a = put(&[("pk", "o1"), ("at", "2026-01-01T00:00:00Z"), ("x", "1")]);
        let b = put(&[("x", "1"), ("pk", "o1"), ("at", "2026-01-01T00:00:00Z")]);
        let token = request_token("o1-reserve", &[a]);
        assert_eq!(token, request_token("o1-reserve", &[b]));
        assert_eq!(token.len(), 36);
    }

    #[test]
    fn only_a_cancellation_by_conflicts_alone_is_sent_again() {
        let conflict = Some("TransactionConflict".to_owned());
        let failed = Some("ConditionalCheckFailed".to_owned());
        assert!(Transaction::Cancelled(vec![None, conflict.clone()]).only_conflicts());
        assert!(!Transaction::Cancelled(vec![failed, conflict]).only_conflicts());
        assert!(!Transaction::Cancelled(vec![None, None]).only_conflicts());
        assert!(!Transaction::Committed.only_conflicts());
    }

    #[test]
    fn another_write_or_scope_is_another_token() {
        let first = put(&[("pk", "o1"), ("at", "2026-01-01T00:00:00Z")]);
        let retry = put(&[("pk", "o1"), ("at", "2026-01-01T00:00:01Z")]);
        let token = request_token("o1-reserve", std::slice::from_ref(&first));
        assert_ne!(token, request_token("o1-reserve", &[retry]));
        assert_ne!(token, request_token("o1-commit", &[first]));
    }

    #[test]
    fn a_transition_is_guarded_by_the_state_read() {
        let item = Transition {
            table: "t",
            key: ("order_id", AttributeValue::S("o1".into())),
            field: "status",
            from: AttributeValue::S("PENDING".into()),
            to: AttributeValue::S("CONFIRMED".into()),
            sets: vec![("reason", AttributeValue::S("r".into()))],
            also: Some((
                "attempt < :attempt",
                vec![(":attempt", AttributeValue::N("2".into()))],
            )),
        }
        .item()
        .unwrap();
        let u = item.update().unwrap();
        assert_eq!(
            u.update_expression(),
            "SET #field = :to, #updated = :now, #x0 = :x0"
        );
        assert_eq!(
            u.condition_expression(),
            Some("#field = :from AND attempt < :attempt")
        );
        let names = u.expression_attribute_names().unwrap();
        assert_eq!(
            (names["#field"].as_str(), names["#x0"].as_str()),
            ("status", "reason")
        );
        let values = u.expression_attribute_values().unwrap();
        assert_eq!(values[":from"], AttributeValue::S("PENDING".into()));
        assert_eq!(values[":to"], AttributeValue::S("CONFIRMED".into()));
        assert_eq!(values[":attempt"], AttributeValue::N("2".into()));
    }
}
