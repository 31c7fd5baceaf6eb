//! The library every commerce function links.
//!
//! It holds what would otherwise be copied into each Lambda: typed configuration read
//! once per cold start, AWS clients built from the standard SDK settings, JSON
//! telemetry with request and correlation ids, the caller's identity from the JWT
//! authorizer, RFC 9457 problem documents, request-body parsing with the API's limits,
//! and DynamoDB item (de)serialization through `serde_dynamo`.
//!
//! Nothing here knows about a particular service; services keep their domain in
//! `functions/<service>/src/lib.rs` and use these pieces at their edges.

pub mod aws;
pub mod catalog;
pub mod config;
pub mod consumer;
pub mod country;
pub mod dynamo;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod pagination;
pub mod problem;
pub mod retry;
pub mod saga;
pub mod step;
pub mod stream;
pub mod task_token;
pub mod telemetry;
pub mod time;
pub mod transactions;

pub use problem::{ApiError, FieldError};
