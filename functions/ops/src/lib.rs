//! `commerce-ops`: what an operator runs against a deployment (or the local stack).
//!
//! - `replay`: replays the bus archive for a time window, optionally to named rules only,
//!   follows it to the end with a progress bar, and reports how many events it replayed
//!   (per event name) and the final state. It refuses a window without both ends, or one
//!   that overlaps another replay of the same archive to the same rules, unless told
//!   (`--unbounded`, `--allow-overlap`).
//! - `redrive`: moves a consumer's dead-letter messages back to its queue, with counts.
//! - `redeliver`: sends the events the bus could not deliver (its dead-letter queue,
//!   `<prefix>-bus-dlq`) to the queue each was meant for, with counts.
//! - `empty-read-model`: empties a read model (today: `sales`) before it is rebuilt by a
//!   replay.
//!
//! Names follow the deployment's prefix (`--prefix`, default `commerce`, as Terraform's
//! `name_prefix` and the local stack): bus `<prefix>`, archive `<prefix>-archive`, rules,
//! queues and tables `<prefix>-<name>`, dead-letter queues `<prefix>-<queue>-dlq`.
//!
//! The count of replayed events comes from a tap: a temporary rule matching this replay's
//! `replay-name`, targeting a temporary queue the command drains (EventBridge's
//! DescribeReplay tells progress, not counts). Both are removed when the command ends.
//!
//! Each command lives in its own module (`replay`, `redrive`, `redeliver`, `republish`,
//! `compensate`, `read_model`); `cli` holds the arguments, [`run`] and what they share.
//! Everything public is re-exported here, as `ops::…`.

mod cli;
mod compensate;
mod read_model;
mod redeliver;
mod redrive;
mod replay;
mod republish;

pub use cli::{Cli, Command, Error, ReplayArgs, run};
pub use compensate::{CompensateReport, compensate, compensation_for, may_compensate};
pub use read_model::{READ_MODELS, empty_table, read_model_table};
pub use redeliver::{BUS_DLQ, Redelivery, redeliver};
pub use redrive::{Redrive, redrive};
pub use replay::{Overlap, ReplayReport, Window, parse_instant, replay, rules_meet, window};
pub use republish::{OUTBOX_TABLES, outbox_tables};
