//! JSON logs through `tracing`.
//!
//! One line per event, with the fields of the current span (the invocation span that
//! [`crate::http::serve`] opens carries function name, request id and correlation id; a
//! saga step's carries the order's correlation id; a batch's records each have a span with
//! theirs), so every line of an order's journey can be found by the id of the request that
//! placed it.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once per cold start. The level comes from `RUST_LOG`
/// (or Lambda's `AWS_LAMBDA_LOG_LEVEL`), `info` by default.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .map_err(|_| ())
                .and_then(|l| EnvFilter::try_new(l.to_lowercase()).map_err(|_| ()))
        })
        .unwrap_or_else(|()| EnvFilter::new("info"));
    // A second init (tests, a reused process) keeps the first subscriber; not an error.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}

/// The span of one saga step's invocation: function name, Lambda request id, and the
/// order and correlation id its state passes, so that an order's every step can be found
/// by the id of the request that placed it.
pub fn step_span(
    context: &lambda_runtime::Context,
    order_id: &str,
    correlation_id: &str,
) -> tracing::Span {
    tracing::info_span!(
        "invocation",
        function = %crate::config::function_name(),
        request_id = %context.request_id,
        order_id = %order_id,
        correlation_id = %correlation_id,
    )
}

/// The span of one record of a batch (a bus event a consumer handles, a transaction the
/// scorer scores): function name, Lambda request id, and the record's correlation id.
/// Lines inside it carry these fields instead of the invocation span's.
pub fn record_span(
    context_request_id: &str,
    event_id: &str,
    correlation_id: &str,
) -> tracing::Span {
    tracing::info_span!(
        "record",
        function = %crate::config::function_name(),
        request_id = %context_request_id,
        event_id = %event_id,
        correlation_id = %correlation_id,
    )
}

/// The span of one event-driven invocation (stream, queue, step): function name,
/// Lambda request id and batch size on every line it covers.
pub fn event_span(context: &lambda_runtime::Context, records: usize) -> tracing::Span {
    tracing::info_span!(
        "invocation",
        function = %crate::config::function_name(),
        request_id = %context.request_id,
        records,
    )
}
