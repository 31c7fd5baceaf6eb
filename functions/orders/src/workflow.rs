//! Starting and steering the saga: the `OrderPlaced` consumer that starts `place-order`,
//! and the routes that cancel an order and decide a review.

use crate::OrderStore;
use crate::domain::{OrderStatus, OrderView};
use crate::store::DynamoOrderStore;
use aws_sdk_sfn::Client as Sfn;
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use shared::ApiError;
use shared::consumer::ConsumerError;
use shared::events::OrderPlaced;
use shared::identity::Caller;
use shared::ids::OrderId;
use shared::task_token::{Delivery, TaskAnswer};

/// The state machines the orders service starts, and its Step Functions client.
#[derive(Debug, Clone)]
pub struct Workflows {
    sfn: Sfn,
    place_order_arn: String,
    cancel_order_arn: String,
}

impl Workflows {
    /// The saga starter's: `PLACE_ORDER_STATE_MACHINE_ARN`, required, so a function
    /// deployed without it fails its cold start with the variable's name, not its requests.
    pub fn place_order(sdk: &shared::aws::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self {
            sfn: Sfn::new(sdk),
            place_order_arn: shared::config::required("PLACE_ORDER_STATE_MACHINE_ARN")?,
            cancel_order_arn: String::new(),
        })
    }

    /// `orders-cancel`'s: `CANCEL_ORDER_STATE_MACHINE_ARN`, required (as
    /// [`Workflows::place_order`]).
    pub fn cancel_order(sdk: &shared::aws::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self {
            sfn: Sfn::new(sdk),
            place_order_arn: String::new(),
            cancel_order_arn: shared::config::required("CANCEL_ORDER_STATE_MACHINE_ARN")?,
        })
    }

    /// `orders-review`'s: it answers task tokens and starts nothing, so it needs no ARN.
    pub fn answers(sdk: &shared::aws::SdkConfig) -> Self {
        Self {
            sfn: Sfn::new(sdk),
            place_order_arn: String::new(),
            cancel_order_arn: String::new(),
        }
    }

    /// Starts `machine` named `name`; an execution of that name already running or done
    /// is the same start, so this is a no-op then.
    async fn start(
        &self,
        machine: &str,
        name: &str,
        input: serde_json::Value,
    ) -> Result<bool, String> {
        if machine.is_empty() {
            return Err("state machine ARN is not configured".into());
        }
        let result = self
            .sfn
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("{}", aws_sdk_sfn::error::DisplayErrorContext(e))),
        }
    }

    /// Whether the execution `name` of `machine` is still running or succeeded (`true`),
    /// or ended without finishing (`false`: failed, timed out, aborted).
    async fn running_or_done(&self, machine: &str, name: &str) -> Result<bool, String> {
        let arn = shared::aws::execution_arn(machine, name);
        let out = self
            .sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(|e| format!("{}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        use aws_sdk_sfn::types::ExecutionStatus;
        Ok(matches!(
            out.status(),
            ExecutionStatus::Running | ExecutionStatus::Succeeded | ExecutionStatus::PendingRedrive
        ))
    }

    /// Makes sure a `cancel-order` execution for order `id` is running or has finished:
    /// starts `cancel-<id>`, and when an earlier one ended without finishing (its order
    /// left `CANCELLING`), the next of `cancel-<id>-2`, `cancel-<id>-3`, ... Every step of
    /// cancel-order is idempotent, so a new execution finishes what a failed one left.
    /// Answers the name of the execution that is running or done.
    async fn resume_cancel(&self, id: &str, input: serde_json::Value) -> Result<String, String> {
        for attempt in 1..=MAX_CANCEL_EXECUTIONS {
            let name = if attempt == 1 {
                format!("cancel-{id}")
            } else {
                format!("cancel-{id}-{attempt}")
            };
            // Started, or (AWS: same name and input while it runs) the running one.
            if self
                .start(&self.cancel_order_arn, &name, input.clone())
                .await?
                || self.running_or_done(&self.cancel_order_arn, &name).await?
            {
                return Ok(name);
            }
        }
        Err(format!(
            "cancel-order ended without finishing {MAX_CANCEL_EXECUTIONS} times for order {id}; see its executions (README: Failed executions)"
        ))
    }
}

/// How many `cancel-order` executions one order may go through before asking to cancel
/// again is refused (each has retried every step for about a minute).
pub const MAX_CANCEL_EXECUTIONS: u32 = 20;

/// `orders-start-saga`: the saga's starter, on the orders service's own table.
#[derive(Debug, Clone)]
pub struct SagaStarter {
    /// The state machines.
    pub workflows: Workflows,
    /// The orders, read for what the saga needs that is not on the bus (the payment token,
    /// the shipping country, the client's address).
    pub orders: DynamoOrderStore,
    /// The customer's country and account age for the fraud check, read through the users
    /// service's crate.
    pub profiles: users::profiles::Profiles,
}

/// `orders-start-saga`: starts one `place-order` execution per `OrderPlaced`, named by
/// the order id, through [`shared::consumer`] (deduped by event id, failed messages
/// reported alone, so the queue redelivers only them and, after its max receives, parks
/// them in its dead-letter queue). The execution's input is the typed
/// [`shared::saga::SagaInput`]: the event's order; the payment token, shipping country and
/// client address read from the order itself (none of them travels on the bus); and the
/// customer's country and registration time from the users table. Starting a payment saga is an outward side
/// effect: a replayed `OrderPlaced` starts nothing.
impl shared::consumer::Handler for SagaStarter {
    fn name(&self) -> &str {
        "orders-start-saga"
    }

    async fn handle(
        &self,
        delivery: &shared::consumer::Delivery,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, ConsumerError> {
        let placed = delivery.event::<OrderPlaced>()?;
        if delivery.is_replay() {
            tracing::info!(order_id = %placed.data.order_id, replay = ?delivery.replay, "replayed OrderPlaced: the saga ran when it was live");
            return Ok(Vec::new());
        }
        // Written in the transaction that wrote the event, so it is there (a consistent read).
        let order = self
            .orders
            .get(&placed.data.order_id)
            .await?
            .ok_or_else(|| {
                ConsumerError::Poison(format!(
                    "no order {} for its OrderPlaced",
                    placed.data.order_id
                ))
            })?;
        let customer = self.profiles.customer(&placed.data.user_id).await?;
        let shipping_country = order.shipping.country.clone().try_into().map_err(|e| {
            ConsumerError::Poison(format!(
                "order {}: shipping country: {e}",
                placed.data.order_id
            ))
        })?;
        let input = shared::saga::SagaInput {
            order_id: placed.data.order_id.clone(),
            user_id: placed.data.user_id,
            items: placed.data.items,
            total: placed.data.total,
            payment_token: order.payment_token,
            correlation_id: placed.metadata.correlation_id.clone(),
            shipping_country,
            customer,
            source_ip: order.source_ip,
        };
        let input = serde_json::to_value(&input)
            .map_err(|e| ConsumerError::Poison(format!("the saga's input: {e}")))?;
        let started = self
            .workflows
            .start(
                &self.workflows.place_order_arn,
                &placed.data.order_id,
                input,
            )
            .await
            .map_err(ConsumerError::Transient)?;
        tracing::info!(order_id = %placed.data.order_id, correlation_id = %placed.metadata.correlation_id, started, "place-order");
        Ok(Vec::new())
    }
}

fn order_id(req: &Request) -> Result<OrderId, ApiError> {
    let id = shared::http::path_param(req, "order_id")?;
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("No order {id}")))
}

/// `POST /orders/{order_id}/cancel`: its owner or an admin. A `CONFIRMED` order becomes
/// `CANCELLING` and `cancel-order` refunds and restocks it; asking again is harmless, and
/// after a cancel-order execution failed it starts the one that finishes the order.
pub async fn cancel(
    orders: &DynamoOrderStore,
    workflows: &Workflows,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let id = order_id(&req)?;
    let mut order = orders
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No order {id}")))?;
    if !caller.may_act_for(&order.user_id) {
        return Err(ApiError::Forbidden(
            "This order belongs to another customer".into(),
        ));
    }
    if order.status == OrderStatus::Confirmed {
        let next = order
            .status
            .start_cancel()
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
        if !orders.transition(&order, next, &[], None, None).await? {
            return Err(ApiError::Contention(format!(
                "Order {id} changed meanwhile; retry"
            )));
        }
        order.status = next;
    }
    match order.status {
        // Started again when already cancelling: a start lost after the status change
        // (a crash in between) is made good, a running execution makes it a no-op, and one
        // that failed (the order left CANCELLING) is followed by a new one that finishes it.
        OrderStatus::Cancelling => {
            let correlation = shared::http::meta(&req).correlation_id;
            let execution = workflows
                .resume_cancel(
                    &id,
                    serde_json::to_value(shared::saga::CancelInput {
                        order_id: id.clone(),
                        correlation_id: correlation,
                    })
                    .map_err(ApiError::internal)?,
                )
                .await
                .map_err(|e| ApiError::internal(std::io::Error::other(e)))?;
            tracing::info!(order_id = %id, execution, "cancel-order");
        }
        OrderStatus::Cancelled => {}
        other => {
            return Err(ApiError::Conflict(format!(
                "An order in {other:?} cannot be cancelled"
            )));
        }
    }
    shared::http::json(StatusCode::ACCEPTED, &OrderView::from(&order))
}

/// Body of `POST /orders/{order_id}/review`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    decision: String,
}

/// `POST /orders/{order_id}/review` (admin): `{"decision": "approve" | "reject"}` for an
/// order held for review; answers the task token the saga waits on.
pub async fn review(
    orders: &DynamoOrderStore,
    workflows: &Workflows,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    caller.require_admin()?;
    let id = order_id(&req)?;
    let body: ReviewRequest = shared::http::parse_json(&req)?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(ApiError::field(
                "decision",
                "must be \"approve\" or \"reject\"",
            ));
        }
    };
    let order = orders
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No order {id}")))?;
    let token = match (&order.status, &order.review_task_token) {
        (OrderStatus::UnderReview, Some(token)) => token.clone(),
        (status, _) => {
            return Err(ApiError::Conflict(format!(
                "Order {id} is {status:?}, not under review"
            )));
        }
    };
    let answer = if approve {
        TaskAnswer::Success(ReviewOutput {
            decision: "approve",
        })
    } else {
        TaskAnswer::Failure {
            error: REVIEW_REJECTED,
            cause: "an administrator rejected the order in review".into(),
        }
    };
    match shared::task_token::send(&workflows.sfn, &token, &answer).await {
        Ok(Delivery::Delivered) => {
            shared::http::json(StatusCode::ACCEPTED, &OrderView::from(&order))
        }
        Ok(Delivery::AlreadyClosed(_)) => Err(ApiError::Conflict(format!(
            "Order {id} is no longer waiting for a review"
        ))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The error an administrator's rejection fails `HoldForReview` with; the saga catches it.
pub const REVIEW_REJECTED: &str = "ReviewRejected";

/// What an approval tells `HoldForReview` (its result; the saga goes on to capture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ReviewOutput {
    /// `approve`.
    pub decision: &'static str,
}
