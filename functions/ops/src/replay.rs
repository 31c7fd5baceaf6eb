//! `replay`: replays the bus archive for a time window, optionally to named rules only,
//! so a consumer or read model that lost or mishandled events (a bug fixed, a read model
//! emptied) gets them again. It follows the replay to the end and counts what it sent per
//! event name through a temporary tap (a rule and queue of its own, removed afterwards),
//! because EventBridge tells a replay's progress, not its counts. A window must have both
//! ends and must not overlap another replay to the same rules unless the operator says so:
//! consumers would otherwise see the same events again without anyone meaning it.

use crate::cli::{Error, ReplayArgs, fail, queue_attribute};
use aws_sdk_eventbridge::Client as EventBridge;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState, RuleState, Target};
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use chrono::{DateTime as ChronoTime, NaiveDate, SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

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
