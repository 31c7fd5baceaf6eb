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
    #[error("DynamoDB {operation} failed")]
    Request {
        /// The API operation, for the log.
        operation: &'static str,
        /// The SDK error with its cause chain.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Wraps an SDK error of `operation`.
    pub fn request(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Request {
            operation,
            source: Box::new(source),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(err)
    }
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

/// True when a request failed only because its condition expression did not hold:
/// the signal for "exists already" or "does not exist", never a fault.
pub fn is_condition_failed<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
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

    /// True when item `index`'s condition did not hold.
    pub fn condition_failed(&self, index: usize) -> bool {
        matches!(self, Self::Cancelled(codes) if codes.get(index).and_then(Option::as_deref) == Some("ConditionalCheckFailed"))
    }
}

/// Writes `items` as one transaction. `token` (DynamoDB's `ClientRequestToken`) makes the
/// SDK's retry of a transaction whose answer was lost get the first outcome instead of
/// failing its own conditions, which would read as a lost race and apply a change twice.
/// A cancellation on conditions or conflicts is an outcome ([`Transaction::Cancelled`]),
/// anything else is a [`StoreError`].
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    token: Option<&str>,
) -> Result<Transaction, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(token.map(str::to_owned))
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
