//! The saga's request for a fraud decision: the transaction and the state machine's task
//! token go on the Kinesis stream `transactions`, keyed by user id (so one customer's
//! transactions are scored in order); the fraud scorer answers the token.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use serde::Deserialize;
use shared::country::CountryCode;
use shared::events::OrderLine;
use shared::ids::{OrderId, UserId};
use shared::money::Money;
use shared::saga::CustomerProfile;
use shared::step::StepError;

/// What the state machine hands the step.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct FraudCheckInput {
    /// The order.
    pub order_id: OrderId,
    /// Its customer: the partition key.
    pub user_id: UserId,
    /// Its total.
    pub total: Money,
    /// Its lines (the record carries their units' count).
    pub items: Vec<OrderLine>,
    /// Where it ships.
    pub shipping_country: CountryCode,
    /// The customer's country and registration time; `None` without a profile.
    pub customer: Option<CustomerProfile>,
    /// The client's address when the order was placed.
    pub source_ip: Option<std::net::IpAddr>,
    /// The payment method; only its fingerprint goes on the stream.
    pub payment_token: String,
    /// The token the scorer answers with SendTaskSuccess/SendTaskFailure.
    pub task_token: String,
    /// The request's correlation id.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// `payments-request-fraud-check`'s contract (`RequestFraudDecision`, `.waitForTaskToken`):
/// its own answer is not the state's output; the scorer's task answer is
/// (`fraud::answer::TaskOutput`).
pub const REQUEST: shared::step::Contract<FraudCheckInput, serde_json::Value> =
    shared::step::Contract::new("payments-request-fraud-check");

/// The stream, as the step uses it.
#[derive(Debug, Clone)]
pub struct TransactionStream {
    client: Client,
    stream: String,
}

impl TransactionStream {
    /// The stream named by `TRANSACTIONS_STREAM`.
    pub async fn from_env() -> Result<Self, shared::config::ConfigError> {
        let stream = shared::config::required("TRANSACTIONS_STREAM")?;
        let sdk = shared::aws::sdk_config().await?;
        Ok(Self {
            client: Client::new(&sdk),
            stream,
        })
    }
}

/// Step `payments-request-fraud-check` (invoked with `.waitForTaskToken`): puts the
/// record and returns; the saga waits for the scorer's answer. A retried put is harmless:
/// the scorer decides once per order and answers every token it sees.
pub async fn request(
    stream: &TransactionStream,
    input: FraudCheckInput,
) -> Result<serde_json::Value, StepError> {
    let record = shared::transactions::TransactionRecord {
        correlation_id: Some(
            input
                .correlation_id
                .clone()
                .unwrap_or_else(|| input.order_id.to_string()),
        ),
        item_count: input.items.iter().map(|l| l.quantity).sum(),
        shipping_country: input.shipping_country,
        profile_country: input.customer.map(|c| c.country),
        account_created_at: input.customer.map(|c| c.registered_at),
        payment_fingerprint: shared::transactions::fingerprint(&input.payment_token),
        source_ip: input.source_ip,
        order_id: input.order_id,
        user_id: input.user_id,
        amount: input.total,
        task_token: input.task_token,
        requested_at: shared::time::now(),
    };
    let data = serde_json::to_vec(&record).map_err(StepError::transient)?;
    stream
        .client
        .put_record()
        .stream_name(&stream.stream)
        .partition_key(record.user_id.as_str())
        .data(Blob::new(data))
        .send()
        .await
        .map_err(|e| StepError::transient(aws_sdk_kinesis::error::DisplayErrorContext(e)))?;
    tracing::info!(order_id = %record.order_id, "fraud check requested");
    Ok(serde_json::json!({"order_id": record.order_id, "requested": true}))
}
