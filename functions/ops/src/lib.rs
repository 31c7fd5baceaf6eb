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

use aws_sdk_eventbridge::Client as EventBridge;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState, RuleState, Target};
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};
use chrono::{DateTime as ChronoTime, NaiveDate, SecondsFormat, Utc};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::fmt::Write as _;
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
        /// The order id.
        #[arg(long)]
        order: String,
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

fn fail(message: impl Into<String>) -> Error {
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
                Some((_, ref status)) if status != "SUCCEEDED" => Err(fail(format!(
                    "the compensating execution ended {status}; see its history"
                ))),
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

// ------------------------------------------------------------------------------------
// Windows
// ------------------------------------------------------------------------------------

/// A replay window, `[from, to)`, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub from_ms: i64,
    /// Exclusive end.
    pub to_ms: i64,
}

impl Window {
    /// Whether two windows share any instant.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.from_ms < other.to_ms && other.from_ms < self.to_ms
    }
}

/// Parses an instant: RFC 3339, or a date meaning its midnight UTC.
pub fn parse_instant(value: &str) -> Result<ChronoTime<Utc>, Error> {
    if let Ok(t) = ChronoTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    Err(fail(format!(
        "{value:?} is neither RFC 3339 (2026-11-21T10:00:00Z) nor a date (2026-11-21)"
    )))
}

/// The window `from..to`. Both ends are required unless `unbounded`, when a missing
/// start is the archive's creation and a missing end is `now`. The window must not be
/// empty or end in the future.
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
    unbounded: bool,
    archive_created: ChronoTime<Utc>,
    now: ChronoTime<Utc>,
) -> Result<Window, Error> {
    if (from.is_none() || to.is_none()) && !unbounded {
        return Err(fail(
            "a replay needs --from and --to; to replay from the archive's start or until now, say --unbounded",
        ));
    }
    let from = from
        .map(parse_instant)
        .transpose()?
        .unwrap_or(archive_created);
    let to = to.map(parse_instant).transpose()?.unwrap_or(now);
    if to <= from {
        return Err(fail(format!(
            "the window is empty: --to {to} is not after --from {from}"
        )));
    }
    if to > now {
        return Err(fail(format!(
            "the window ends in the future ({to}); the archive holds nothing after now"
        )));
    }
    Ok(Window {
        from_ms: from.timestamp_millis(),
        to_ms: to.timestamp_millis(),
    })
}

/// Another replay that reaches the same events and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Its window.
    pub window: Window,
}

/// Whether replays to rules `a` and `b` reach a common rule (no rules = every rule).
pub fn rules_meet(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|r| b.contains(r))
}

fn to_ms(t: &DateTime) -> i64 {
    t.to_millis().unwrap_or(0)
}

fn to_chrono(ms: i64) -> String {
    ChronoTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

// ------------------------------------------------------------------------------------
// Replay
// ------------------------------------------------------------------------------------

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Its name.
    pub name: String,
    /// Final state (`COMPLETED`, `FAILED`, `CANCELLED`, or the last seen if we stopped following).
    pub state: String,
    /// Why, when AWS says.
    pub reason: Option<String>,
    /// The window.
    pub window: Window,
    /// The rules it was limited to (empty: all).
    pub rules: Vec<String>,
    /// Events replayed, per event name, as the tap counted them.
    pub replayed: BTreeMap<String, usize>,
    /// Seconds it took.
    pub seconds: f64,
}

impl ReplayReport {
    /// Total events replayed.
    pub fn total(&self) -> usize {
        self.replayed.values().sum()
    }

    /// The report an operator reads.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "replay {}: {}", self.name, self.state);
        if let Some(r) = &self.reason {
            let _ = writeln!(out, "  reason: {r}");
        }
        let _ = writeln!(
            out,
            "  window: {} .. {}",
            to_chrono(self.window.from_ms),
            to_chrono(self.window.to_ms)
        );
        let rules = if self.rules.is_empty() {
            "all".to_owned()
        } else {
            self.rules.join(", ")
        };
        let _ = writeln!(out, "  rules: {rules}");
        let _ = writeln!(out, "  events replayed: {}", self.total());
        for (name, n) in &self.replayed {
            let _ = writeln!(out, "    {name}: {n}");
        }
        let _ = write!(out, "  took: {:.1} s", self.seconds);
        out
    }
}

async fn replays_overlapping(
    events: &EventBridge,
    archive_arn: &str,
    window: &Window,
    rule_arns: &[String],
) -> Result<Vec<Overlap>, Error> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = events
            .list_replays()
            .event_source_arn(archive_arn)
            .set_next_token(token)
            .send()
            .await?;
        for r in page.replays() {
            let state = r.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
            if matches!(
                r.state(),
                Some(ReplayState::Cancelled | ReplayState::Failed)
            ) {
                continue;
            }
            let (Some(start), Some(end), Some(name)) =
                (r.event_start_time(), r.event_end_time(), r.replay_name())
            else {
                continue;
            };
            let theirs = Window {
                from_ms: to_ms(start),
                to_ms: to_ms(end),
            };
            if !theirs.overlaps(window) {
                continue;
            }
            let described = events.describe_replay().replay_name(name).send().await?;
            let their_rules: Vec<String> = described
                .destination()
                .map(|d| d.filter_arns().to_vec())
                .unwrap_or_default();
            if rules_meet(rule_arns, &their_rules) {
                found.push(Overlap {
                    name: name.to_owned(),
                    state,
                    window: theirs,
                });
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// The temporary rule and queue that count what a replay sends.
struct Tap {
    rule: String,
    rule_arn: String,
    queue_url: String,
}

impl Tap {
    async fn create(
        events: &EventBridge,
        sqs: &Sqs,
        bus: &str,
        replay_name: &str,
    ) -> Result<Self, Error> {
        let name = format!(
            "{bus}-tap-{}",
            &replay_name[replay_name.len().saturating_sub(24)..]
        );
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await?
            .queue_url()
            .ok_or_else(|| fail("CreateQueue answered no URL"))?
            .to_owned();
        let queue_arn = queue_attribute(sqs, &queue_url, QueueAttributeName::QueueArn).await?;
        let rule_arn = events
            .put_rule()
            .name(&name)
            .event_bus_name(bus)
            .description(format!(
                "commerce-ops: counts what replay {replay_name} sends; removed when it ends"
            ))
            .event_pattern(serde_json::json!({"replay-name": [replay_name]}).to_string())
            .state(RuleState::Enabled)
            .send()
            .await?
            .rule_arn()
            .ok_or_else(|| fail("PutRule answered no ARN"))?
            .to_owned();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}
            }]
        });
        sqs.set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await?;
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(bus)
            .targets(Target::builder().id("tap").arn(queue_arn).build()?)
            .send()
            .await?;
        Ok(Self {
            rule: name,
            rule_arn,
            queue_url,
        })
    }

    /// Receives what arrived, counting it per event name; the number of messages taken.
    async fn drain(&self, sqs: &Sqs, counts: &mut BTreeMap<String, usize>) -> Result<usize, Error> {
        let mut taken = 0;
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            let messages = out.messages();
            if messages.is_empty() {
                return Ok(taken);
            }
            let mut deletes = Vec::new();
            for (i, m) in messages.iter().enumerate() {
                let name = m
                    .body()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                    .and_then(|v| v["detail-type"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "(unreadable)".to_owned());
                *counts.entry(name).or_default() += 1;
                taken += 1;
                if let Some(h) = m.receipt_handle() {
                    deletes.push(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(h)
                            .build()?,
                    );
                }
            }
            sqs.delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(deletes))
                .send()
                .await?;
        }
    }

    async fn remove(&self, events: &EventBridge, sqs: &Sqs, bus: &str) {
        let steps = [
            events
                .remove_targets()
                .rule(&self.rule)
                .event_bus_name(bus)
                .ids("tap")
                .send()
                .await
                .err()
                .map(|e| format!("{e:?}")),
            events
                .delete_rule()
                .name(&self.rule)
                .event_bus_name(bus)
                .send()
                .await
                .err()
                .map(|e| format!("{e:?}")),
            sqs.delete_queue()
                .queue_url(&self.queue_url)
                .send()
                .await
                .err()
                .map(|e| format!("{e:?}")),
        ];
        for e in steps.into_iter().flatten() {
            eprintln!(
                "commerce-ops: could not remove the replay tap {}: {e}",
                self.rule
            );
        }
    }
}

async fn queue_attribute(sqs: &Sqs, url: &str, name: QueueAttributeName) -> Result<String, Error> {
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

/// Starts the replay `args` describe, follows it to the end and reports it.
pub async fn replay(
    events: &EventBridge,
    sqs: &Sqs,
    prefix: &str,
    args: &ReplayArgs,
) -> Result<ReplayReport, Error> {
    let started = std::time::Instant::now();
    let bus = prefix.to_owned();
    let archive = events
        .describe_archive()
        .archive_name(format!("{prefix}-archive"))
        .send()
        .await?;
    let archive_arn = archive
        .archive_arn()
        .ok_or_else(|| fail("the archive has no ARN"))?
        .to_owned();
    let bus_arn = archive
        .event_source_arn()
        .ok_or_else(|| fail("the archive names no bus"))?
        .to_owned();
    let created = archive
        .creation_time()
        .and_then(|t| ChronoTime::<Utc>::from_timestamp_millis(to_ms(t)))
        .unwrap_or_default();
    let window = window(
        args.from.as_deref(),
        args.to.as_deref(),
        args.unbounded,
        created,
        Utc::now(),
    )?;
    let mut rule_arns = Vec::new();
    for rule in &args.rules {
        let described = events
            .describe_rule()
            .name(format!("{prefix}-{rule}"))
            .event_bus_name(&bus)
            .send()
            .await
            .map_err(|e| fail(format!("no rule {prefix}-{rule} on bus {bus}: {e}")))?;
        rule_arns.push(
            described
                .arn()
                .ok_or_else(|| fail(format!("rule {rule} has no ARN")))?
                .to_owned(),
        );
    }
    let overlaps = replays_overlapping(events, &archive_arn, &window, &rule_arns).await?;
    if !overlaps.is_empty() && !args.allow_overlap {
        let list: Vec<String> = overlaps
            .iter()
            .map(|o| {
                format!(
                    "{} ({}, {} .. {})",
                    o.name,
                    o.state,
                    to_chrono(o.window.from_ms),
                    to_chrono(o.window.to_ms)
                )
            })
            .collect();
        return Err(fail(format!(
            "the window overlaps earlier replays to the same rules: {}; consumers would see those events again. Say --allow-overlap if that is what you want",
            list.join("; ")
        )));
    }
    let name = args.name.clone().unwrap_or_else(|| {
        let ulid = ulid::Ulid::new().to_string();
        format!(
            "replay-{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S"),
            &ulid[ulid.len() - 6..]
        )
    });
    let tap = Tap::create(events, sqs, &bus, &name).await?;
    let result = start_and_follow(
        events,
        sqs,
        &tap,
        &name,
        &archive_arn,
        &bus_arn,
        window,
        &rule_arns,
        args,
    )
    .await;
    tap.remove(events, sqs, &bus).await;
    let (state, reason, replayed) = result?;
    Ok(ReplayReport {
        name,
        state,
        reason,
        window,
        rules: args.rules.clone(),
        replayed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn start_and_follow(
    events: &EventBridge,
    sqs: &Sqs,
    tap: &Tap,
    name: &str,
    archive_arn: &str,
    bus_arn: &str,
    window: Window,
    rule_arns: &[String],
    args: &ReplayArgs,
) -> Result<(String, Option<String>, BTreeMap<String, usize>), Error> {
    let mut destination = ReplayDestination::builder().arn(bus_arn);
    if !rule_arns.is_empty() {
        // The tap must hear the replay too, or it could not count it.
        destination = destination.set_filter_arns(Some(
            rule_arns
                .iter()
                .cloned()
                .chain([tap.rule_arn.clone()])
                .collect(),
        ));
    }
    events
        .start_replay()
        .replay_name(name)
        .description("commerce-ops replay")
        .event_source_arn(archive_arn)
        .event_start_time(DateTime::from_millis(window.from_ms))
        .event_end_time(DateTime::from_millis(window.to_ms))
        .destination(destination.build()?)
        .send()
        .await?;
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} replay {msg} [{bar:40}] {percent}% {elapsed}",
        )
        .map_err(|e| fail(e.to_string()))?,
    );
    eprintln!(
        "replay {name}: started, {} .. {}",
        to_chrono(window.from_ms),
        to_chrono(window.to_ms)
    );
    let mut counts = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout_seconds);
    let mut last_state = String::new();
    let (state, reason) = loop {
        let d = events.describe_replay().replay_name(name).send().await?;
        let state = d.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
        if state != last_state {
            eprintln!("replay {name}: {state}");
            last_state = state.clone();
        }
        let done_to = d
            .event_last_replayed_time()
            .map(to_ms)
            .unwrap_or(window.from_ms);
        let span = (window.to_ms - window.from_ms).max(1);
        let progress = ((done_to - window.from_ms).clamp(0, span) * 1000) / span;
        bar.set_position(u64::try_from(progress).unwrap_or(0));
        tap.drain(sqs, &mut counts).await?;
        bar.set_message(format!(
            "{state}, {} events",
            counts.values().sum::<usize>()
        ));
        match d.state() {
            Some(ReplayState::Completed) => {
                bar.set_position(1000);
                break (state, d.state_reason().map(str::to_owned));
            }
            Some(ReplayState::Failed | ReplayState::Cancelled) => {
                break (state, d.state_reason().map(str::to_owned));
            }
            _ => {}
        }
        if std::time::Instant::now() > deadline {
            bar.abandon();
            return Err(fail(format!(
                "replay {name} is still {state} after {} s; it goes on (commerce-ops does not cancel it)",
                args.timeout_seconds
            )));
        }
        tokio::time::sleep(Duration::from_secs(args.poll_seconds)).await;
    };
    // What the replay sent may still be on its way to the tap.
    let mut quiet = 0;
    while quiet < 2 {
        if tap.drain(sqs, &mut counts).await? == 0 {
            quiet += 1;
        } else {
            quiet = 0;
        }
    }
    bar.finish_and_clear();
    Ok((state, reason, counts))
}

// ------------------------------------------------------------------------------------
// Redrive
// ------------------------------------------------------------------------------------

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The queue's physical name.
    pub queue: String,
    /// Its dead-letter queue's.
    pub dlq: String,
    /// Messages moved back.
    pub moved: usize,
    /// Messages that could not be sent back (they stay in the DLQ).
    pub failed: usize,
    /// Approximate messages left in the DLQ afterwards.
    pub left: usize,
}

/// Moves up to `max` messages of `<prefix>-<queue>-dlq` back to `<prefix>-<queue>`, each
/// deleted from the DLQ only once the queue has it.
pub async fn redrive(
    sqs: &Sqs,
    prefix: &str,
    queue: &str,
    max: Option<usize>,
) -> Result<Redrive, Error> {
    let queue_name = format!("{prefix}-{queue}");
    let dlq_name = format!("{queue_name}-dlq");
    let url = |name: String| async move {
        sqs.get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| fail(format!("no queue {name}: {e}")))
            .and_then(|o| {
                o.queue_url()
                    .map(str::to_owned)
                    .ok_or_else(|| fail("no URL"))
            })
    };
    let queue_url = url(queue_name.clone()).await?;
    let dlq_url = url(dlq_name.clone()).await?;
    let policy = queue_attribute(sqs, &queue_url, QueueAttributeName::RedrivePolicy).await?;
    let dlq_arn = queue_attribute(sqs, &dlq_url, QueueAttributeName::QueueArn).await?;
    if !policy.contains(&dlq_arn) {
        return Err(fail(format!(
            "{queue_name} does not dead-letter to {dlq_name}"
        )));
    }
    let (mut moved, mut failed) = (0, 0);
    let mut empty_polls = 0;
    while empty_polls < 2 && max.is_none_or(|m| moved + failed < m) {
        let want = max.map_or(10, |m| (m - moved - failed).min(10));
        let out = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = out.messages();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        empty_polls = 0;
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .set_message_attributes(m.message_attributes().cloned())
                    .build()?,
            );
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        failed += sent.failed().len();
        let mut deletes = Vec::new();
        for ok in sent.successful() {
            let i: usize = ok.id().parse().unwrap_or(usize::MAX);
            if let Some(h) = messages.get(i).and_then(|m| m.receipt_handle()) {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id())
                        .receipt_handle(h)
                        .build()?,
                );
            }
        }
        moved += deletes.len();
        if !deletes.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&dlq_url)
                .set_entries(Some(deletes))
                .send()
                .await?;
        }
    }
    let left = queue_attribute(
        sqs,
        &dlq_url,
        QueueAttributeName::ApproximateNumberOfMessages,
    )
    .await?
    .parse()
    .unwrap_or(0);
    Ok(Redrive {
        queue: queue_name,
        dlq: dlq_name,
        moved,
        failed,
        left,
    })
}

// ------------------------------------------------------------------------------------
// Redelivering what the bus could not deliver
// ------------------------------------------------------------------------------------

/// The bus's dead-letter queue as the declaration names it (`bus.dead_letter_queue`).
pub const BUS_DLQ: &str = "bus-dlq";

/// What a redelivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redelivery {
    /// The bus's dead-letter queue (physical name).
    pub dlq: String,
    /// Events sent on, per queue.
    pub delivered: BTreeMap<String, usize>,
    /// Why the bus had failed them, per `ERROR_CODE`, for the events seen.
    pub causes: BTreeMap<String, usize>,
    /// Events that could not be sent on, per reason (they stay in the dead-letter queue).
    pub failed: BTreeMap<String, usize>,
    /// Events older than the consumers' dedupe memory, left (`--force` sends them).
    pub too_old: usize,
    /// What went wrong around the events (a receive, a delete, a visibility reset).
    pub problems: Vec<String>,
    /// Approximate messages left in the dead-letter queue afterwards.
    pub left: usize,
}

impl Redelivery {
    fn problem(&mut self, what: String) {
        self.problems.push(what);
    }

    /// Events not sent on, and problems: the command fails while there are any.
    #[must_use]
    pub fn unfinished(&self) -> usize {
        self.failed.values().sum::<usize>() + self.too_old + self.problems.len()
    }

    /// The report an operator reads.
    #[must_use]
    pub fn render(&self) -> String {
        let list = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "redeliver: sent {} event(s) on ({}); {} failed; {} older than the consumers' 24 h memory left; about {} left in {}",
            self.delivered.values().sum::<usize>(),
            list(&self.delivered),
            self.failed.values().sum::<usize>(),
            self.too_old,
            self.left,
            self.dlq
        );
        if self.too_old > 0 {
            out.push_str(" (--force sends the old ones; a consumer that had one acts again)");
        }
        if !self.causes.is_empty() {
            let _ = write!(
                out,
                "\n  the bus had failed them with: {}",
                list(&self.causes)
            );
        }
        for (why, n) in &self.failed {
            let _ = write!(out, "\n  not sent ({n}): {why}");
        }
        for p in &self.problems {
            let _ = write!(out, "\n  problem: {p}");
        }
        out
    }
}

/// The queue an undelivered event was meant for: the last part of its `TARGET_ARN`
/// attribute, if it is one of this deployment's queues (`<prefix>-...`).
fn redelivery_queue(prefix: &str, target_arn: Option<&str>) -> Result<String, String> {
    let arn = target_arn.ok_or("no TARGET_ARN attribute: not put there by the bus")?;
    let name = match arn.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "sqs", _, _, name] => name,
        _ => return Err(format!("target {arn} is not an SQS queue")),
    };
    if name.starts_with(&format!("{prefix}-")) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "target {arn} is not a queue of deployment {prefix}"
        ))
    }
}

/// How long an event that cannot be sent on stays out of sight while a redelivery runs:
/// longer than any run, so a run never meets it twice.
const HOLD_BACK_SECONDS: i32 = 900;

/// Sends up to `max` events of `<prefix>-bus-dlq` to the queue each was meant for (its
/// `TARGET_ARN`), unchanged: the body is the event as the rule's queue would have had it.
/// Each is deleted from the dead-letter queue only once its queue has it. An event older than
/// the consumers' dedupe memory ([`outbox::CONSUMER_MEMORY`], by its `time`) is left and
/// counted unless `force`: had the bus in fact delivered it before reporting a failure, a
/// consumer would no longer know it and act twice (as `republish`). Events that stay (queue
/// still missing, too old) are made visible again when the run ends, for the next one.
///
/// A run looks at each message once: at most the messages there when it starts (or `max`),
/// and it stops at a batch of messages it has already seen. An error after an event was
/// sent is counted in the report, never a reason to stop without one.
pub async fn redeliver(
    sqs: &Sqs,
    prefix: &str,
    max: Option<usize>,
    force: bool,
) -> Result<Redelivery, Error> {
    let dlq = format!("{prefix}-{BUS_DLQ}");
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(&dlq)
        .send()
        .await
        .map_err(|e| fail(format!("no queue {dlq}: {e}")))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| fail("no URL"))?;
    let there: usize = queue_attribute(
        sqs,
        &dlq_url,
        QueueAttributeName::ApproximateNumberOfMessages,
    )
    .await?
    .parse()
    .unwrap_or(0);
    let budget = max.map_or(there, |m| m.min(there));
    let remembered_from = Utc::now()
        - chrono::Duration::from_std(outbox::CONSUMER_MEMORY)
            .unwrap_or_else(|_| chrono::Duration::days(1));
    let mut report = Redelivery {
        dlq,
        ..Redelivery::default()
    };
    let mut urls: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    // Message id -> its latest receipt handle, for the events that stay.
    let mut held_back: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut empty_polls = 0;
    while empty_polls < 2 && seen.len() < budget {
        let want = (budget - seen.len()).min(10);
        let out = match sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .wait_time_seconds(1)
            .visibility_timeout(HOLD_BACK_SECONDS)
            .message_attribute_names("All")
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                report.problem(format!(
                    "receive stopped: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ));
                break;
            }
        };
        if out.messages().is_empty() {
            empty_polls += 1;
            continue;
        }
        empty_polls = 0;
        let mut new = 0;
        for m in out.messages() {
            let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else {
                continue;
            };
            if !seen.insert(id.to_owned()) {
                if let Some(h) = held_back.get_mut(id) {
                    handle.clone_into(h);
                }
                continue;
            }
            new += 1;
            let attribute = |name: &str| {
                m.message_attributes()
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value())
            };
            *report
                .causes
                .entry(attribute("ERROR_CODE").unwrap_or("unknown").to_owned())
                .or_default() += 1;
            let body = m.body().unwrap_or_default();
            let time = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|e| {
                    e["time"]
                        .as_str()
                        .and_then(|t| ChronoTime::parse_from_rfc3339(t).ok())
                });
            if !force && time.is_some_and(|t| t < remembered_from) {
                report.too_old += 1;
                held_back.insert(id.to_owned(), handle.to_owned());
                continue;
            }
            let queue = match redelivery_queue(prefix, attribute("TARGET_ARN")) {
                Ok(q) => q,
                Err(why) => {
                    *report.failed.entry(why).or_default() += 1;
                    held_back.insert(id.to_owned(), handle.to_owned());
                    continue;
                }
            };
            if !urls.contains_key(&queue) {
                let url = sqs
                    .get_queue_url()
                    .queue_name(&queue)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "queue {queue}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        )
                    })
                    .and_then(|o| {
                        o.queue_url()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("queue {queue}: no URL"))
                    });
                urls.insert(queue.clone(), url);
            }
            let sent = match &urls[&queue] {
                Ok(url) => sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(body)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        format!(
                            "queue {queue}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        )
                    }),
                Err(why) => Err(why.clone()),
            };
            match sent {
                Ok(()) => {
                    *report.delivered.entry(queue).or_default() += 1;
                    if let Err(e) = sqs
                        .delete_message()
                        .queue_url(&dlq_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                    {
                        report.problem(format!(
                            "sent, but not deleted from the dead-letter queue (the next run sends it again): {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        ));
                    }
                }
                Err(why) => {
                    *report.failed.entry(why).or_default() += 1;
                    held_back.insert(id.to_owned(), handle.to_owned());
                }
            }
        }
        if new == 0 {
            break; // everything in sight was seen already
        }
    }
    // What stays is visible again now, for the next run once it is mended.
    for (id, handle) in &held_back {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(&dlq_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
        {
            report.problem(format!(
                "message {id} stays out of sight for up to {HOLD_BACK_SECONDS} s: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            ));
        }
    }
    report.left = queue_attribute(
        sqs,
        &dlq_url,
        QueueAttributeName::ApproximateNumberOfMessages,
    )
    .await
    .ok()
    .and_then(|n| n.parse().ok())
    .unwrap_or(0);
    Ok(report)
}

// ------------------------------------------------------------------------------------
// Republishing the outbox
// ------------------------------------------------------------------------------------

/// The tables with an outbox (the relay reads their streams).
pub const OUTBOX_TABLES: &[&str] = &["inventory", "orders", "payments", "fraud"];

/// The tables `republish` works on: those named, or all.
pub fn outbox_tables(named: &[String]) -> Result<Vec<&'static str>, Error> {
    if named.is_empty() {
        return Ok(OUTBOX_TABLES.to_vec());
    }
    named
        .iter()
        .map(|n| {
            OUTBOX_TABLES
                .iter()
                .find(|t| **t == n.as_str())
                .copied()
                .ok_or_else(|| {
                    fail(format!(
                        "{n} has no outbox; these do: {}",
                        OUTBOX_TABLES.join(", ")
                    ))
                })
        })
        .collect()
}

// ------------------------------------------------------------------------------------
// Compensating one order
// ------------------------------------------------------------------------------------

/// What `compensate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompensateReport {
    /// The order.
    pub order_id: String,
    /// Its status before.
    pub before: String,
    /// The execution started (name) and how it ended, if one was needed.
    pub execution: Option<(String, String)>,
    /// Its status after.
    pub after: String,
}

impl CompensateReport {
    /// One line per fact.
    pub fn render(&self) -> String {
        let mut out = format!("compensate {}: {}", self.order_id, self.before);
        match &self.execution {
            Some((name, status)) => {
                let _ = write!(out, " -> execution {name} {status} -> {}", self.after);
            }
            None => {
                let _ = write!(out, ": nothing to compensate");
            }
        }
        out
    }
}

/// Which state machine finishes an order in `status`, if any: `place-order`'s
/// compensations for an order the saga left open or rejected (they give back whatever is
/// still held, and reject it unless it is confirmed), `cancel-order` for one left
/// `CANCELLING`. A confirmed or cancelled order holds nothing it should not.
pub fn compensation_for(status: &str) -> Option<&'static str> {
    match status {
        "PENDING" | "UNDER_REVIEW" | "REJECTED" => Some("place-order"),
        "CANCELLING" => Some("cancel-order"),
        _ => None,
    }
}

async fn order_status(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    order_id: &str,
) -> Result<String, Error> {
    let (status, _) = order_item(ddb, table, order_id).await?;
    Ok(status)
}

/// An order's status and the part of it a compensating place-order reads (its customer
/// and total: the payment void seals an order that has no payment with them).
async fn order_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    order_id: &str,
) -> Result<(String, serde_json::Value), Error> {
    let out = ddb
        .get_item()
        .table_name(table)
        .key(
            "order_id",
            aws_sdk_dynamodb::types::AttributeValue::S(order_id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await?;
    let item = out
        .item
        .ok_or_else(|| fail(format!("no order {order_id} in {table}")))?;
    let status = item
        .get("status")
        .and_then(|s| s.as_s().ok())
        .cloned()
        .ok_or_else(|| fail(format!("order {order_id} in {table} has no status")))?;
    let order: serde_json::Value = shared::dynamo::from_item(item)?;
    Ok((
        status,
        serde_json::json!({"user_id": order["user_id"], "total": order["total"]}),
    ))
}

async fn state_machine_arn(sfn: &aws_sdk_sfn::Client, name: &str) -> Result<String, Error> {
    let mut pages = sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        if let Some(m) = page?.state_machines().iter().find(|m| m.name() == name) {
            return Ok(m.state_machine_arn().to_owned());
        }
    }
    Err(fail(format!("no state machine {name}")))
}

/// Whether an order whose saga is in `status` (`None`: it has no place-order execution)
/// may be compensated without `--force`: only once the saga ended without finishing. A
/// running saga (an order in review waits up to a day) is not the operator's to end, and
/// an order without one most likely waits for its `OrderPlaced` (`republish` first).
pub fn may_compensate(saga_status: Option<&str>) -> Result<(), String> {
    match saga_status {
        Some("FAILED" | "TIMED_OUT" | "ABORTED") => Ok(()),
        Some(status) => Err(format!(
            "its place-order execution is {status}; it is not the operator's to finish (--force to do it anyway)"
        )),
        None => Err("it has no place-order execution: its OrderPlaced may not be published yet (`commerce-ops republish`), or use --force".into()),
    }
}

/// Runs the compensating execution of `order_id` (see [`compensation_for`]) and follows
/// it for up to `timeout`. Every step it runs is idempotent and accepts every state, so
/// running it on an order that holds nothing changes nothing. An order still in
/// `place-order` is compensated only once its execution failed (see [`may_compensate`]).
pub async fn compensate(
    ddb: &aws_sdk_dynamodb::Client,
    sfn: &aws_sdk_sfn::Client,
    prefix: &str,
    order_id: &str,
    timeout: Duration,
    force: bool,
) -> Result<CompensateReport, Error> {
    let table = format!("{prefix}-orders");
    let (before, payer) = order_item(ddb, &table, order_id).await?;
    let Some(machine) = compensation_for(&before) else {
        return Ok(CompensateReport {
            order_id: order_id.to_owned(),
            after: before.clone(),
            before,
            execution: None,
        });
    };
    let arn = state_machine_arn(sfn, &format!("{prefix}-{machine}")).await?;
    if machine == "place-order" && !force {
        let saga = shared::aws::execution_arn(&arn, order_id);
        let status = match sfn.describe_execution().execution_arn(saga).send().await {
            Ok(d) => Some(d.status().as_str().to_owned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        may_compensate(status.as_deref())
            .map_err(|why| fail(format!("not compensating {order_id}: {why}")))?;
    }
    let run = ulid::Ulid::new();
    let (name, input) = if machine == "place-order" {
        (
            format!("{order_id}-compensate-{run}"),
            serde_json::json!({
                "order_id": order_id,
                "correlation_id": format!("ops-compensate-{run}"),
                "compensate": true,
                "user_id": payer["user_id"],
                "total": payer["total"],
            }),
        )
    } else {
        (
            format!("cancel-{order_id}-ops-{run}"),
            serde_json::json!({
                "order_id": order_id,
                "correlation_id": format!("ops-compensate-{run}"),
            }),
        )
    };
    let started = sfn
        .start_execution()
        .state_machine_arn(&arn)
        .name(&name)
        .input(input.to_string())
        .send()
        .await?;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await?;
        let status = d.status().as_str().to_owned();
        if status != "RUNNING" || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(CompensateReport {
        order_id: order_id.to_owned(),
        before,
        execution: Some((name, status)),
        after: order_status(ddb, &table, order_id).await?,
    })
}

#[cfg(test)]
mod compensate_tests {
    use super::*;

    #[test]
    fn the_bus_dead_letter_queue_is_the_declared_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/declaration.json");
        let decl: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(decl["bus"]["dead_letter_queue"], BUS_DLQ);
    }

    #[test]
    fn an_undelivered_event_goes_back_to_a_queue_of_this_deployment_only() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:commerce-notifications";
        assert_eq!(
            redelivery_queue("commerce", Some(arn)),
            Ok("commerce-notifications".to_owned())
        );
        assert!(
            redelivery_queue("shop", Some(arn))
                .unwrap_err()
                .contains("not a queue of deployment shop")
        );
        assert!(
            redelivery_queue("commerce", None)
                .unwrap_err()
                .contains("no TARGET_ARN")
        );
        assert!(
            redelivery_queue(
                "commerce",
                Some("arn:aws:lambda:eu-west-1:1:function:commerce-x")
            )
            .unwrap_err()
            .contains("not an SQS queue")
        );
    }

    #[test]
    fn the_redelivery_report_says_what_stayed_and_why() {
        let r = Redelivery {
            dlq: "commerce-bus-dlq".into(),
            delivered: [("commerce-notifications".to_owned(), 2)].into(),
            causes: [("NO_RESOURCE".to_owned(), 3)].into(),
            failed: [("queue commerce-x: gone".to_owned(), 1)].into(),
            too_old: 1,
            problems: vec!["sent, but not deleted".into()],
            left: 2,
        };
        let text = r.render();
        assert!(
            text.starts_with(
                "redeliver: sent 2 event(s) on (commerce-notifications: 2); 1 failed; 1 older than the consumers' 24 h memory left; about 2 left in commerce-bus-dlq (--force"
            ),
            "{text}"
        );
        assert!(
            text.contains("NO_RESOURCE: 3")
                && text.contains("not sent (1): queue commerce-x: gone")
                && text.contains("problem: sent, but not deleted"),
            "{text}"
        );
        assert_eq!(r.unfinished(), 3);
        assert_eq!(Redelivery::default().unfinished(), 0);
    }

    #[test]
    fn the_outbox_tables_are_the_streams_the_relay_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/declaration.json");
        let decl: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let streams: Vec<&str> = decl["functions"]["outbox-relay"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(streams, OUTBOX_TABLES);
    }

    #[test]
    fn republish_works_on_the_outbox_tables_only() {
        assert_eq!(outbox_tables(&[]).unwrap(), OUTBOX_TABLES);
        assert_eq!(outbox_tables(&["orders".into()]).unwrap(), vec!["orders"]);
        assert!(outbox_tables(&["users".into()]).is_err());
    }

    #[test]
    fn only_a_saga_that_ended_unfinished_is_compensated_without_force() {
        for s in ["FAILED", "TIMED_OUT", "ABORTED"] {
            assert!(may_compensate(Some(s)).is_ok(), "{s}");
        }
        assert!(may_compensate(Some("RUNNING")).is_err());
        assert!(may_compensate(Some("SUCCEEDED")).is_err());
        assert!(may_compensate(None).is_err());
    }

    #[test]
    fn each_unfinished_status_has_its_compensation() {
        for s in ["PENDING", "UNDER_REVIEW", "REJECTED"] {
            assert_eq!(compensation_for(s), Some("place-order"), "{s}");
        }
        assert_eq!(compensation_for("CANCELLING"), Some("cancel-order"));
        for s in ["CONFIRMED", "CANCELLED"] {
            assert_eq!(compensation_for(s), None, "{s}");
        }
    }
}

// ------------------------------------------------------------------------------------
// Read models
// ------------------------------------------------------------------------------------

/// The read models an operator may empty (they rebuild from the archive); nothing else.
pub const READ_MODELS: &[&str] = &["sales"];

/// The table of read model `model`.
pub fn read_model_table(prefix: &str, model: &str) -> Result<String, Error> {
    if READ_MODELS.contains(&model) {
        Ok(format!("{prefix}-{model}"))
    } else {
        Err(fail(format!(
            "{model} is not a read model; these are: {}",
            READ_MODELS.join(", ")
        )))
    }
}

/// Deletes every item of `table`; how many.
pub async fn empty_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<usize, Error> {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    let described = ddb.describe_table().table_name(table).send().await?;
    let keys: Vec<String> = described
        .table()
        .map(|t| {
            t.key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(fail(format!("{table} has no key schema")));
    }
    let mut deleted = 0;
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .projection_expression(
                (0..keys.len())
                    .map(|i| format!("#k{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .set_expression_attribute_names(Some(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| (format!("#k{i}"), k.clone()))
                    .collect(),
            ))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        for chunk in page.items().chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    Ok(WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key.clone()))
                                .build()?,
                        )
                        .build())
                })
                .collect::<Result<_, Error>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let out = ddb
                    .batch_write_item()
                    .request_items(table, requests.clone())
                    .send()
                    .await?;
                let unprocessed = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .unwrap_or_default();
                deleted += requests.len() - unprocessed.len();
                requests = unprocessed;
                attempt += 1;
                if !requests.is_empty() {
                    if attempt > 8 {
                        return Err(fail(format!("{table}: deletes keep being throttled")));
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> ChronoTime<Utc> {
        parse_instant(s).unwrap()
    }

    #[test]
    fn a_window_needs_both_ends_unless_told() {
        let (created, now) = (at("2026-11-01T00:00:00Z"), at("2026-11-21T12:00:00Z"));
        let w = window(
            Some("2026-11-20"),
            Some("2026-11-21T06:00:00Z"),
            false,
            created,
            now,
        )
        .unwrap();
        assert_eq!(w.from_ms, at("2026-11-20T00:00:00Z").timestamp_millis());
        assert_eq!(w.to_ms, at("2026-11-21T06:00:00Z").timestamp_millis());
        for (from, to) in [
            (None, Some("2026-11-21")),
            (Some("2026-11-20"), None),
            (None, None),
        ] {
            let err = window(from, to, false, created, now)
                .unwrap_err()
                .to_string();
            assert!(err.contains("--unbounded"), "{err}");
        }
        let all = window(None, None, true, created, now).unwrap();
        assert_eq!(
            (all.from_ms, all.to_ms),
            (created.timestamp_millis(), now.timestamp_millis())
        );
    }

    #[test]
    fn a_window_is_not_empty_and_not_in_the_future() {
        let (created, now) = (at("2026-11-01T00:00:00Z"), at("2026-11-21T12:00:00Z"));
        assert!(window(Some("2026-11-21"), Some("2026-11-21"), false, created, now).is_err());
        assert!(window(Some("2026-11-21"), Some("2026-11-20"), false, created, now).is_err());
        assert!(window(Some("2026-11-21"), Some("2026-11-22"), false, created, now).is_err());
        assert!(window(Some("yesterday"), Some("2026-11-21"), false, created, now).is_err());
    }

    #[test]
    fn overlaps_need_shared_instants_and_shared_rules() {
        let w = |a, b| Window {
            from_ms: a,
            to_ms: b,
        };
        assert!(w(0, 10).overlaps(&w(5, 15)));
        assert!(w(5, 15).overlaps(&w(0, 10)));
        assert!(!w(0, 10).overlaps(&w(10, 20)), "the end is exclusive");
        let (a, b) = ("arn:a".to_owned(), "arn:b".to_owned());
        assert!(rules_meet(&[], std::slice::from_ref(&b)));
        assert!(rules_meet(std::slice::from_ref(&a), &[]));
        assert!(rules_meet(
            &[a.clone(), b.clone()],
            std::slice::from_ref(&b)
        ));
        assert!(!rules_meet(&[a], &[b]));
    }

    #[test]
    fn only_read_models_can_be_emptied() {
        assert_eq!(
            read_model_table("commerce", "sales").unwrap(),
            "commerce-sales"
        );
        assert!(read_model_table("commerce", "orders").is_err());
    }

    #[test]
    fn the_report_says_what_was_replayed() {
        let report = ReplayReport {
            name: "r1".into(),
            state: "COMPLETED".into(),
            reason: None,
            window: Window {
                from_ms: 0,
                to_ms: 60_000,
            },
            rules: vec!["sales-projection".into()],
            replayed: BTreeMap::from([
                ("OrderCancelled".to_owned(), 1),
                ("OrderConfirmed".to_owned(), 2),
            ]),
            seconds: 1.0,
        };
        let text = report.render();
        assert!(text.contains("replay r1: COMPLETED"));
        assert!(text.contains("events replayed: 3"));
        assert!(text.contains("OrderConfirmed: 2"));
        assert!(text.contains("rules: sales-projection"));
    }
}
