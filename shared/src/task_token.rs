//! Answering a task token: a `.waitForTaskToken` state waits until someone calls
//! `SendTaskSuccess` or `SendTaskFailure` with its token. Two answer today: the fraud scorer
//! (`RequestFraudDecision`) and an administrator's review (`HoldForReview`), with one answer
//! type and one way of sending it.

use aws_sdk_sfn::error::ProvideErrorMetadata;
use serde::Serialize;

/// What a waiting task is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAnswer<T> {
    /// `SendTaskSuccess` with this output: the state's result.
    Success(T),
    /// `SendTaskFailure`: the state fails with this error, which its `Catch` matches.
    Failure {
        /// The error name the state machine's `Catch` matches.
        error: &'static str,
        /// A short reason for the execution history.
        cause: String,
    },
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The waiting task took it.
    Delivered,
    /// Nobody waits on the token any more (answered before, timed out, or unknown): named
    /// by the Step Functions error. Done, not a failure: retrying cannot change it.
    AlreadyClosed(&'static str),
}

/// Delivering an answer failed in a way worth retrying (throttled, unreachable).
#[derive(Debug, thiserror::Error)]
#[error("Step Functions {operation} failed")]
pub struct AnswerError {
    /// The API operation, for the log.
    pub operation: &'static str,
    /// The SDK error with its cause chain.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl AnswerError {
    /// Wraps an error of `operation`.
    pub fn new(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            operation,
            source: Box::new(source),
        }
    }
}

/// The Step Functions errors that mean the token is closed.
const CLOSED: [&str; 3] = ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"];

fn delivered<O, E>(
    operation: &'static str,
    sent: Result<O, aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>>,
) -> Result<Delivery, AnswerError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(Delivery::Delivered),
        Err(e) => match e.as_service_error().and_then(|s| s.code()) {
            Some(code) => match CLOSED.iter().find(|c| **c == code) {
                Some(closed) => Ok(Delivery::AlreadyClosed(closed)),
                None => Err(AnswerError::new(operation, e)),
            },
            None => Err(AnswerError::new(operation, e)),
        },
    }
}

/// Sends `answer` to the task waiting on `task_token`.
pub async fn send<T: Serialize>(
    client: &aws_sdk_sfn::Client,
    task_token: &str,
    answer: &TaskAnswer<T>,
) -> Result<Delivery, AnswerError> {
    match answer {
        TaskAnswer::Success(output) => {
            let output = serde_json::to_string(output)
                .map_err(|e| AnswerError::new("serialize task output", e))?;
            let sent = client
                .send_task_success()
                .task_token(task_token)
                .output(output)
                .send()
                .await;
            delivered("SendTaskSuccess", sent)
        }
        TaskAnswer::Failure { error, cause } => {
            let sent = client
                .send_task_failure()
                .task_token(task_token)
                .error(*error)
                .cause(cause)
                .send()
                .await;
            delivered("SendTaskFailure", sent)
        }
    }
}
