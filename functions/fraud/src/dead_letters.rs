//! Records that can never be scored (not JSON, not the record's schema) are parked, with
//! their reason and their data, in the scorer's failure queue (`fraud-score-failures`, the
//! mapping's on-failure destination too) instead of holding up their shard: the batch goes
//! on without them. Only a record that could not be parked is retried.

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use base64::Engine;
use serde::Serialize;
use std::future::Future;

/// A record the scorer gave up on, as the message in the failure queue reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Why it cannot be scored.
    pub reason: String,
    /// Where it came from: the stream's ARN.
    pub event_source_arn: Option<String>,
    /// `shardId-…:<sequence number>`.
    pub event_id: Option<String>,
    /// Its sequence number in the shard.
    pub sequence_number: String,
    /// Its partition key.
    pub partition_key: String,
    /// Its data as Kinesis delivered it, base64 (its first [`KEPT_BYTES`] bytes).
    pub data: String,
    /// True when the data was longer than [`KEPT_BYTES`] and cut there.
    pub data_truncated: bool,
}

/// Bytes of a record's data a letter keeps: a Kinesis record holds up to 1 MiB and an SQS
/// message 256 KiB; 150,000 bytes are 200,000 in base64, with room for the rest.
pub const KEPT_BYTES: usize = 150_000;

impl DeadLetter {
    /// The letter for `record`, refused for `reason`.
    pub fn of(record: &KinesisEventRecord, reason: String) -> Self {
        Self {
            reason,
            event_source_arn: record.event_source_arn.clone(),
            event_id: record.event_id.clone(),
            sequence_number: record.kinesis.sequence_number.clone(),
            partition_key: record.kinesis.partition_key.clone(),
            data: base64::engine::general_purpose::STANDARD
                .encode(&record.kinesis.data.0[..record.kinesis.data.0.len().min(KEPT_BYTES)]),
            data_truncated: record.kinesis.data.0.len() > KEPT_BYTES,
        }
    }
}

/// Where letters go.
pub trait DeadLetters: Send + Sync {
    /// Parks `letters`; one result per letter, in their order.
    fn park(&self, letters: &[DeadLetter]) -> impl Future<Output = Vec<Result<(), String>>> + Send;
}

/// The failure queue, through SQS (`FRAUD_SCORE_FAILURES_URL`).
#[derive(Debug, Clone)]
pub struct FailureQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// SQS takes at most this many messages in one `SendMessageBatch`.
const SQS_BATCH: usize = 10;

impl FailureQueue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue a Lambda writes: `FRAUD_SCORE_FAILURES_URL`.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        let url = shared::config::required("FRAUD_SCORE_FAILURES_URL")?;
        Ok(Self::new(aws_sdk_sqs::Client::new(sdk), url))
    }
}

impl DeadLetters for FailureQueue {
    async fn park(&self, letters: &[DeadLetter]) -> Vec<Result<(), String>> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let mut results = Vec::with_capacity(letters.len());
        for chunk in letters.chunks(SQS_BATCH) {
            let entries: Result<Vec<_>, String> = chunk
                .iter()
                .enumerate()
                .map(|(i, letter)| {
                    let body = serde_json::to_string(letter).map_err(|e| e.to_string())?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect();
            let sent = match entries {
                Ok(entries) => self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(out) => {
                    for i in 0..chunk.len() {
                        let failed = out.failed().iter().find(|f| f.id() == i.to_string());
                        results.push(match failed {
                            Some(f) => Err(format!(
                                "SendMessageBatch refused it: {} {}",
                                f.code(),
                                f.message().unwrap_or_default()
                            )),
                            None => Ok(()),
                        });
                    }
                }
                Err(e) => results.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        results
    }
}
