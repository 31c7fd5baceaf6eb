//! Saga steps: Lambdas the place-order state machine invokes.
//!
//! A step answers JSON or fails with a [`StepError`], whose `error_type` becomes the
//! Lambda error's `errorType` and so the name the state machine's `Retry` and `Catch`
//! match (`OutOfStock`, `PaymentDeclined`, ...). Faults on our side are
//! [`StepError::transient`] (`TransientError`), which the definition retries with backoff
//! and jitter; business outcomes are never retried, only caught.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use tracing::Instrument;

/// The `errorType` of faults worth retrying (a store or provider that did not answer).
pub const TRANSIENT: &str = "TransientError";

/// A step's failure, named for the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct StepError {
    /// The name `Retry`/`Catch` match.
    pub error_type: &'static str,
    /// What happened, for the execution history and the logs.
    pub message: String,
}

impl StepError {
    /// A business outcome the definition catches (never retried).
    pub fn business(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }

    /// A fault the definition retries.
    pub fn transient(err: impl std::fmt::Display) -> Self {
        Self {
            error_type: TRANSIENT,
            message: err.to_string(),
        }
    }
}

impl From<crate::dynamo::StoreError> for StepError {
    fn from(err: crate::dynamo::StoreError) -> Self {
        Self::transient(crate::problem::error_chain(&err))
    }
}

impl From<StepError> for Diagnostic {
    fn from(err: StepError) -> Self {
        Diagnostic {
            error_type: err.error_type.to_owned(),
            error_message: err.message,
        }
    }
}

/// Runs a step Lambda: parses the state's input, runs `handler` in a span with the
/// function name and request id, logs a failure, and answers its output or its error.
pub async fn run<I, O, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send,
    O: Serialize,
    F: Fn(I) -> Fut + Sync,
    Fut: Future<Output = Result<O, StepError>> + Send,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<I>| async move {
        let span = crate::telemetry::event_span(&event.context, 1);
        let result = handler(event.payload).instrument(span.clone()).await;
        if let Err(e) = &result {
            span.in_scope(
                || tracing::warn!(error_type = e.error_type, message = %e.message, "step failed"),
            );
        }
        result
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_become_lambda_error_types() {
        let d: Diagnostic = StepError::business("OutOfStock", "MUG-1").into();
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("OutOfStock", "MUG-1")
        );
        let store =
            crate::dynamo::StoreError::request("GetItem", std::io::Error::other("timed out"));
        let d: Diagnostic = StepError::from(store).into();
        assert_eq!(d.error_type, TRANSIENT);
        assert!(d.error_message.contains("timed out"), "{}", d.error_message);
    }
}
