//! Answering the saga: the place-order execution waits on a task token
//! (`.waitForTaskToken`) until the scorer calls `SendTaskSuccess` or `SendTaskFailure`.
//!
//! The library decides the [`Answer`]; the [`SagaAnswer`] port delivers it, so tests can
//! check the decision without a waiting execution, and the Lambda delivers it through
//! Step Functions ([`StepFunctions`]).

use crate::domain::Assessment;
use serde::Serialize;
use shared::events::FraudDecision;
use shared::ids::OrderId;
use shared::task_token::TaskAnswer;
use std::future::Future;

/// The error name a denied order fails the waiting task with; the saga catches it.
pub const FRAUD_DENIED: &str = "FraudDenied";

/// The output of a successful fraud step, as the saga's next states read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TaskOutput {
    /// `approve` or `review` (a denied order fails the task instead).
    pub decision: FraudDecision,
    /// The score, 0..=1000.
    pub score: u32,
    /// The order.
    pub order_id: OrderId,
}

/// What the scorer tells the waiting execution.
pub type Answer = TaskAnswer<TaskOutput>;

pub use shared::task_token::{AnswerError, Delivery};

/// The answer an assessment calls for; the same for the first delivery and every
/// redelivery, since it is derived from the stored assessment only.
pub fn for_assessment(a: &Assessment) -> Answer {
    match a.decision {
        FraudDecision::Deny => TaskAnswer::Failure {
            error: FRAUD_DENIED,
            cause: format!("score {} ({})", a.score, a.reasons.join(", ")),
        },
        decision => TaskAnswer::Success(TaskOutput {
            decision,
            score: a.score,
            order_id: a.order_id.clone(),
        }),
    }
}

/// The port through which the scorer answers a task token.
pub trait SagaAnswer: Send + Sync {
    /// Delivers `answer` to the task waiting on `task_token`.
    fn send(
        &self,
        task_token: &str,
        answer: &Answer,
    ) -> impl Future<Output = Result<Delivery, AnswerError>> + Send;
}

/// Answers through the Step Functions API (endpoint from the standard SDK settings).
#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: aws_sdk_sfn::Client,
}

impl StepFunctions {
    /// Answers through `client`.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl SagaAnswer for StepFunctions {
    async fn send(&self, task_token: &str, answer: &Answer) -> Result<Delivery, AnswerError> {
        shared::task_token::send(&self.client, task_token, answer).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(score: u32, decision: FraudDecision, reasons: &[&str]) -> Assessment {
        Assessment {
            order_id: "01JDZ0000000000000000000AB".parse().unwrap(),
            user_id: "u1".parse().unwrap(),
            score,
            decision,
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            model_version: "logit-v2/rates-2025-01".into(),
            features: crate::features::Features::default(),
            assessed_at: shared::time::now(),
        }
    }

    #[test]
    fn approve_and_review_succeed_with_decision_score_and_order() {
        for decision in [FraudDecision::Approve, FraudDecision::Review] {
            let Answer::Success(output) =
                for_assessment(&assessment(450, decision, &["amount_over_2000"]))
            else {
                panic!("{decision:?} must succeed");
            };
            assert_eq!(
                serde_json::to_value(&output).unwrap(),
                serde_json::json!({
                    "decision": serde_json::to_value(decision).unwrap(),
                    "score": 450,
                    "order_id": "01JDZ0000000000000000000AB"
                })
            );
        }
    }

    #[test]
    fn deny_fails_the_task_with_fraud_denied_and_the_reasons() {
        let answer = for_assessment(&assessment(
            900,
            FraudDecision::Deny,
            &["amount_over_10000", "velocity_6_orders_last_hour"],
        ));
        assert_eq!(
            answer,
            Answer::Failure {
                error: FRAUD_DENIED,
                cause: "score 900 (amount_over_10000, velocity_6_orders_last_hour)".into()
            }
        );
    }
}
