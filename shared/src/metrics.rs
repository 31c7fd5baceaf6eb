//! Per-invocation metrics as CloudWatch Embedded Metric Format lines (API invocations,
//! and saga steps and batches of records), and the DynamoDB request counter behind the
//! `DynamoDbRequests` metric. `local/round_trips.py` reads them back from the local
//! stack's logs to show every operation's round trips.
//!
//! EMF lines are plain JSON on stdout; CloudWatch Logs extracts the metrics from them,
//! so no metrics API call sits on the request path.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every DynamoDB HTTP request this process sent, retries included. A Lambda process
/// handles one invocation at a time, so the difference across an invocation is that
/// invocation's round trips.
static PROCESS_DYNAMODB_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The process-wide DynamoDB request count so far.
pub fn dynamodb_requests_so_far() -> u64 {
    PROCESS_DYNAMODB_REQUESTS.load(Ordering::Relaxed)
}

/// DynamoDB requests that failed throttled after the SDK's own retries, process-wide
/// (counted where the answer becomes a [`crate::dynamo::StoreError`]); the difference
/// across an invocation is its `DynamoDbThrottled` metric.
static PROCESS_DYNAMODB_THROTTLED: AtomicU64 = AtomicU64::new(0);

/// Counts one DynamoDB request that failed throttled.
pub fn note_dynamodb_throttled() {
    PROCESS_DYNAMODB_THROTTLED.fetch_add(1, Ordering::Relaxed);
}

/// The process-wide count of throttled DynamoDB failures so far.
pub fn dynamodb_throttled_so_far() -> u64 {
    PROCESS_DYNAMODB_THROTTLED.load(Ordering::Relaxed)
}

/// The process-wide counters at the start of an invocation; what changed by its end is
/// the invocation's.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    requests: u64,
    throttled: u64,
}

impl Counters {
    /// The counters now.
    pub fn now() -> Self {
        Self {
            requests: dynamodb_requests_so_far(),
            throttled: dynamodb_throttled_so_far(),
        }
    }

    /// DynamoDB requests sent and throttled failures since `self`.
    pub fn since(self) -> (u64, u64) {
        (
            dynamodb_requests_so_far().saturating_sub(self.requests),
            dynamodb_throttled_so_far().saturating_sub(self.throttled),
        )
    }
}

/// An SDK interceptor that counts each DynamoDB request attempt, into the process-wide
/// count and into its own counter (which tests read to prove an operation's round trips).
#[derive(Debug, Clone, Default)]
pub struct DynamoDbRequestCounter {
    own: Arc<AtomicU64>,
}

impl DynamoDbRequestCounter {
    /// Requests counted by this counter (and its clones) so far.
    pub fn get(&self) -> u64 {
        self.own.load(Ordering::Relaxed)
    }
}

impl Intercept for DynamoDbRequestCounter {
    fn name(&self) -> &'static str {
        "DynamoDbRequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.own.fetch_add(1, Ordering::Relaxed);
        PROCESS_DYNAMODB_REQUESTS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What one API invocation reports.
#[derive(Debug, Clone)]
pub struct InvocationMetrics<'a> {
    /// The function's name, the metric dimension.
    pub function: &'a str,
    /// The request id, kept as a property so a metric can be traced to its log lines.
    pub request_id: &'a str,
    /// HTTP status answered.
    pub status: u16,
    /// Wall time in the handler.
    pub latency_ms: f64,
    /// DynamoDB requests made while handling it.
    pub dynamodb_requests: u64,
    /// DynamoDB requests that failed throttled after the SDK's retries.
    pub dynamodb_throttled: u64,
}

/// One EMF line (namespace `Commerce`, dimension `Function`): each metric declared with its
/// unit and written with its value, so none is declared without a value; then the
/// properties (ids, status) that tie it to its log lines.
fn emf(
    timestamp_ms: i64,
    function: &str,
    metrics: &[(&str, &str, serde_json::Value)],
    properties: &[(&str, serde_json::Value)],
) -> String {
    let declared: Vec<serde_json::Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Commerce",
                "Dimensions": [["Function"]],
                "Metrics": declared,
            }],
        },
        "Function": function,
    });
    for (name, _, value) in metrics {
        line[*name] = value.clone();
    }
    for (name, value) in properties {
        line[*name] = value.clone();
    }
    line.to_string()
}

/// Renders one EMF line (namespace `Commerce`, dimension `Function`).
pub fn emf_line(m: &InvocationMetrics<'_>, timestamp_ms: i64) -> String {
    emf(
        timestamp_ms,
        m.function,
        &[
            ("Latency", "Milliseconds", json!(m.latency_ms)),
            ("DynamoDbRequests", "Count", json!(m.dynamodb_requests)),
            ("DynamoDbThrottled", "Count", json!(m.dynamodb_throttled)),
            (
                "ClientErrors",
                "Count",
                json!(u8::from((400..500).contains(&m.status))),
            ),
            ("ServerErrors", "Count", json!(u8::from(m.status >= 500))),
        ],
        &[
            ("request_id", json!(m.request_id)),
            ("status", json!(m.status)),
        ],
    )
}

/// Writes the EMF line for one invocation to stdout, where CloudWatch Logs picks it up.
pub fn emit(m: &InvocationMetrics<'_>) {
    println!("{}", emf_line(m, chrono::Utc::now().timestamp_millis()));
}

/// One count of an event (e.g. `PaymentProviderCircuitOpened`), as an EMF line with the
/// function's dimension (`AWS_LAMBDA_FUNCTION_NAME`), so an alarm can follow it.
pub fn count_emf_line(metric: &str, timestamp_ms: i64) -> String {
    let function = crate::config::optional("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    emf(timestamp_ms, &function, &[(metric, "Count", json!(1))], &[])
}

/// What one invocation of a saga step or of a batch of records (a queue's, a stream's)
/// reports: the same latency and DynamoDB requests as an API invocation, and the records
/// it was given and failed. A saga step is one record.
#[derive(Debug, Clone)]
pub struct TaskMetrics<'a> {
    /// The function's name, the metric dimension.
    pub function: &'a str,
    /// The request id, kept as a property so a metric can be traced to its log lines.
    pub request_id: &'a str,
    /// Wall time in the handler.
    pub latency_ms: f64,
    /// DynamoDB requests made while handling it, retries included.
    pub dynamodb_requests: u64,
    /// Records handled: 1 for a saga step, the batch's size for a consumer.
    pub records: u64,
    /// Records that failed: a step's error, a batch's item failures.
    pub failed: u64,
    /// DynamoDB requests that failed throttled after the SDK's retries.
    pub dynamodb_throttled: u64,
    /// A saga step's outcome: `ok`, or the error type it answered (`OutOfStock`,
    /// `TransientError`, ...), so a dashboard tells business outcomes from faults. None for
    /// a batch.
    pub outcome: Option<&'a str>,
}

/// What an invocation's output says for its metrics line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report<'a> {
    /// Records that failed.
    pub failed: usize,
    /// A saga step's outcome (see [`TaskMetrics::outcome`]).
    pub outcome: Option<&'a str>,
}

impl Report<'_> {
    /// A batch's report: its failed records.
    pub fn batch(failed: usize) -> Self {
        Self {
            failed,
            outcome: None,
        }
    }
}

/// Renders one EMF line for a step or batch invocation (namespace `Commerce`, dimension
/// `Function`).
pub fn task_emf_line(m: &TaskMetrics<'_>, timestamp_ms: i64) -> String {
    let mut properties = vec![("request_id", json!(m.request_id))];
    if let Some(outcome) = m.outcome {
        properties.push(("Outcome", json!(outcome)));
    }
    emf(
        timestamp_ms,
        m.function,
        &[
            ("Latency", "Milliseconds", json!(m.latency_ms)),
            ("DynamoDbRequests", "Count", json!(m.dynamodb_requests)),
            ("DynamoDbThrottled", "Count", json!(m.dynamodb_throttled)),
            ("Records", "Count", json!(m.records)),
            ("FailedRecords", "Count", json!(m.failed)),
        ],
        &properties,
    )
}

/// Runs one step or batch invocation, `work`, and writes its EMF line: how long it took,
/// the DynamoDB requests it made and how many failed throttled, its `records`, and what
/// `report` says of the output (how many failed, a step's outcome).
pub async fn measure_task<T>(
    request_id: &str,
    records: usize,
    work: impl Future<Output = T>,
    report: impl for<'o> FnOnce(&'o T) -> Report<'o>,
) -> T {
    let started = std::time::Instant::now();
    let before = Counters::now();
    let output = work.await;
    let (dynamodb_requests, dynamodb_throttled) = before.since();
    let said = report(&output);
    let m = TaskMetrics {
        function: crate::config::function_name(),
        request_id,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        dynamodb_requests,
        records: records as u64,
        failed: said.failed as u64,
        dynamodb_throttled,
        outcome: said.outcome,
    };
    println!(
        "{}",
        task_emf_line(&m, chrono::Utc::now().timestamp_millis())
    );
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as JSON, after checking that every metric it declares is in it.
    fn declared_metrics_present(line: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let declared = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(v.get(name).is_some(), "metric {name} declared but absent");
        }
        v
    }

    #[test]
    fn a_task_emf_line_declares_every_metric_it_carries() {
        let line = task_emf_line(
            &TaskMetrics {
                function: "notifications-send",
                request_id: "r2",
                latency_ms: 7.25,
                dynamodb_requests: 4,
                records: 2,
                failed: 1,
                dynamodb_throttled: 1,
                outcome: None,
            },
            1_700_000_000_000,
        );
        let v = declared_metrics_present(&line);
        assert_eq!(v["DynamoDbThrottled"], 1);
        assert!(v.get("Outcome").is_none(), "a batch has no outcome: {v}");
        assert_eq!(v["Records"], 2);
        assert_eq!(v["FailedRecords"], 1);
        assert_eq!(v["DynamoDbRequests"], 4);
        assert_eq!(v["Function"], "notifications-send");
    }

    #[test]
    fn a_step_line_says_its_outcome() {
        let line = task_emf_line(
            &TaskMetrics {
                function: "inventory-reserve",
                request_id: "r3",
                latency_ms: 2.0,
                dynamodb_requests: 2,
                records: 1,
                failed: 1,
                dynamodb_throttled: 0,
                outcome: Some("OutOfStock"),
            },
            1_700_000_000_000,
        );
        let v = declared_metrics_present(&line);
        assert_eq!(v["Outcome"], "OutOfStock");
        assert_eq!(v["FailedRecords"], 1);
    }

    #[test]
    fn emf_line_declares_every_metric_it_carries() {
        let line = emf_line(
            &InvocationMetrics {
                function: "users-get",
                request_id: "r1",
                status: 404,
                latency_ms: 3.5,
                dynamodb_requests: 1,
                dynamodb_throttled: 0,
            },
            1_700_000_000_000,
        );
        let v = declared_metrics_present(&line);
        assert_eq!(v["ClientErrors"], 1);
        assert_eq!(v["ServerErrors"], 0);
        assert_eq!(v["Function"], "users-get");
    }
}
