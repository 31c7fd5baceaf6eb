//! The command line itself: its arguments ([`Cli`], [`Command`], [`ReplayArgs`]) and
//! [`run`], which hands each subcommand to its module and turns what it did into the
//! operator's report and the exit status; and what every command shares: [`Error`],
//! `fail`, and reading a queue's attribute. The commands' work lives in their own modules,
//! so each can be read (and tested) on its own.

use crate::compensate::compensate;
use crate::read_model::{empty_table, read_model_table};
use crate::redeliver::redeliver;
use crate::redrive::redrive;
use crate::replay::replay;
use crate::republish::outbox_tables;
use aws_sdk_eventbridge::Client as EventBridge;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Parser, Subcommand};
use std::time::Duration;

/// The operator's command line.
#[derive(Debug, Parser)]
#[command(
    name = "commerce-ops",
    version,
    about = "Operate a serverless-commerce deployment: replay the bus archive, redrive dead letters, reset read models."
)]
pub struct Cli {
    /// The deployment's name prefix (Terraform's name_prefix; the local stack's is `commerce`).
    #[arg(
        long,
        env = "COMMERCE_PREFIX",
        default_value = "commerce",
        global = true
    )]
    pub prefix: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the bus archive for a time window (by the events' time), optionally to named rules only.
    Replay(ReplayArgs),
    /// Move a consumer queue's dead-letter messages back to the queue.
    Redrive {
        /// The queue as the declaration names it, e.g. `notifications`.
        #[arg(long)]
        queue: String,
        /// Move at most this many messages.
        #[arg(long)]
        max: Option<usize>,
    },
    /// Send the events the bus could not deliver to a rule's queue (they wait in the bus's
    /// dead-letter queue) to the queue each was meant for, once the cause is mended.
    Redeliver {
        /// Send at most this many events.
        #[arg(long)]
        max: Option<usize>,
        /// Send events older than the consumers' dedupe window (24 hours) too: a consumer
        /// that had one (the bus may have delivered it before reporting a failure) no longer
        /// remembers it and acts again. Without it they are counted and left.
        #[arg(long)]
        force: bool,
    },
    /// Finish an order whose saga execution failed (README: Failed executions): give back
    /// whatever money and stock it holds and reject it unless it is confirmed; an order
    /// left CANCELLING gets a new cancel-order execution.
    Compensate {
        /// The order id (a ULID, as the order's API answers it).
        #[arg(long)]
        order: shared::ids::OrderId,
        /// Give up following the execution after this many seconds (it goes on).
        #[arg(long, default_value_t = 600)]
        timeout_seconds: u64,
        /// Compensate even though the order's saga did not end without finishing (it is
        /// running, or never started).
        #[arg(long)]
        force: bool,
    },
    /// Publish the outbox items the relay never got onto the bus (after an outage of the
    /// bus longer than the relay's retries, or an item passed over), oldest first.
    Republish {
        /// The service table (`inventory`, `orders`, `payments`, `fraud`); all by default.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Only items written at least this many seconds ago (younger ones are most likely
        /// still on their way through the stream).
        #[arg(long, default_value_t = 60)]
        older_than_seconds: u64,
        /// Publish items older than the consumers' dedupe window (24 hours) too: consumers
        /// that handled one before no longer remember it and act again (a customer is
        /// notified twice). Without it they are counted and left.
        #[arg(long)]
        force: bool,
        /// Only count them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete every item of a read model, so a replay can rebuild it.
    EmptyReadModel {
        /// The read model: `sales`.
        model: String,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
}

/// `replay`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Start of the window, inclusive: RFC 3339 (`2026-11-21T10:00:00Z`) or a UTC date.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the window, exclusive: RFC 3339 or a UTC date (its midnight).
    #[arg(long)]
    pub to: Option<String>,
    /// Replay only to this rule (as the declaration names it, e.g. `sales-projection`); repeatable.
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// The replay's name (default: `replay-<time>-<random>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Allow a missing end: from the archive's creation and/or until now.
    #[arg(long)]
    pub unbounded: bool,
    /// Allow a window that overlaps another replay of the archive to the same rules.
    #[arg(long)]
    pub allow_overlap: bool,
    /// Seconds between progress checks.
    #[arg(long, default_value_t = 2)]
    pub poll_seconds: u64,
    /// Give up following after this many seconds (the replay goes on).
    #[arg(long, default_value_t = 3600)]
    pub timeout_seconds: u64,
}

/// Everything that ends the command early.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn fail(message: impl Into<String>) -> Error {
    message.into().into()
}

/// Runs `cli`.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let sdk = shared::aws::sdk_config().await?;
    match cli.command {
        Command::Replay(args) => {
            let report =
                replay(&EventBridge::new(&sdk), &Sqs::new(&sdk), &cli.prefix, &args).await?;
            println!("{}", report.render());
            if report.state != "COMPLETED" {
                return Err(fail(format!(
                    "replay {} ended {}",
                    report.name, report.state
                )));
            }
            Ok(())
        }
        Command::Redrive { queue, max } => {
            let r = redrive(&Sqs::new(&sdk), &cli.prefix, &queue, max).await?;
            println!(
                "redrive {}: moved {} message(s) from {} to {}; {} failed; about {} left in the dead-letter queue",
                queue, r.moved, r.dlq, r.queue, r.failed, r.left
            );
            if r.failed > 0 {
                return Err(fail(format!("{} message(s) could not be moved", r.failed)));
            }
            Ok(())
        }
        Command::Redeliver { max, force } => {
            let r = redeliver(&Sqs::new(&sdk), &cli.prefix, max, force).await?;
            println!("{}", r.render());
            if r.unfinished() > 0 {
                return Err(fail(format!(
                    "{} event(s) or problem(s) left; what was not sent stays in {}",
                    r.unfinished(),
                    r.dlq
                )));
            }
            Ok(())
        }
        Command::Compensate {
            order,
            timeout_seconds,
            force,
        } => {
            let ddb = aws_sdk_dynamodb::Client::new(&sdk);
            let sfn = aws_sdk_sfn::Client::new(&sdk);
            let r = compensate(
                &ddb,
                &sfn,
                &cli.prefix,
                &order,
                Duration::from_secs(timeout_seconds),
                force,
            )
            .await?;
            println!("{}", r.render());
            match r.execution {
                Some((_, ref status)) if *status != ExecutionStatus::Succeeded => Err(fail(
                    format!("the compensating execution ended {status}; see its history"),
                )),
                _ => Ok(()),
            }
        }
        Command::Republish {
            tables,
            older_than_seconds,
            force,
            dry_run,
        } => {
            let ddb = aws_sdk_dynamodb::Client::new(&sdk);
            let bus = outbox::bus::EventBridgeBus::new(EventBridge::new(&sdk), cli.prefix.clone());
            let marks = outbox::bus::DynamoMarks::new(ddb.clone());
            let tables = outbox_tables(&tables)?;
            let mut problems = 0;
            for t in tables {
                let table = format!("{}-{t}", cli.prefix);
                let r = outbox::republish(
                    &ddb,
                    &bus,
                    &marks,
                    &table,
                    Duration::from_secs(older_than_seconds),
                    force,
                    dry_run,
                )
                .await?;
                println!(
                    "republish {table}: {} unpublished, {} published now, {} refused, {} unpublishable, {} older than the consumers' 24 h memory left{}",
                    r.unpublished,
                    r.published,
                    r.refused,
                    r.unpublishable.len(),
                    r.too_old,
                    if r.too_old > 0 {
                        " (--force publishes them; consumers act on them again)"
                    } else {
                        ""
                    }
                );
                for (key, reason) in &r.unpublishable {
                    println!("  unpublishable {key}: {reason}");
                }
                problems += r.refused + r.unpublishable.len() + r.too_old;
            }
            if problems > 0 {
                return Err(fail(format!("{problems} outbox item(s) still unpublished")));
            }
            Ok(())
        }
        Command::EmptyReadModel { model, yes } => {
            let table = read_model_table(&cli.prefix, &model)?;
            let ddb = aws_sdk_dynamodb::Client::new(&sdk);
            if !yes {
                return Err(fail(format!(
                    "this deletes every item of {table}; rebuild it with `commerce-ops replay` afterwards. Run again with --yes"
                )));
            }
            let deleted = empty_table(&ddb, &table).await?;
            println!("empty-read-model {model}: deleted {deleted} item(s) from {table}");
            Ok(())
        }
    }
}

/// The URL of the queue named `name`, or why there is none (the caller names the queue).
pub(crate) async fn queue_url(sqs: &Sqs, name: &str) -> Result<String, String> {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| "no URL".to_owned())
}

/// The messages waiting in the queue at `url` (SQS's approximate count; 0 when it does not
/// say a number).
pub(crate) async fn queue_depth(sqs: &Sqs, url: &str) -> Result<usize, Error> {
    Ok(
        queue_attribute(sqs, url, QueueAttributeName::ApproximateNumberOfMessages)
            .await?
            .parse()
            .unwrap_or(0),
    )
}

/// The attribute `name` of the queue at `url` (replay's tap, redrive and redeliver read them).
pub(crate) async fn queue_attribute(
    sqs: &Sqs,
    url: &str,
    name: QueueAttributeName,
) -> Result<String, Error> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await?;
    out.attributes()
        .and_then(|a| a.get(&name))
        .cloned()
        .ok_or_else(|| fail(format!("queue {url} has no {}", name.as_str())))
}
