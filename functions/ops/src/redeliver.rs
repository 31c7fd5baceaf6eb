//! `redeliver`: sends the events the bus could not deliver to a rule's queue (the queue
//! was missing or refused them; after its retries the bus puts them in its dead-letter
//! queue, `<prefix>-bus-dlq`) to the queue each was meant for. Their outbox items were
//! marked published when the bus took them, so nothing else would ever send them again.
//! Like `redrive` it moves dead letters, but from one queue to many, by each message's
//! `TARGET_ARN`, and it leaves events older than the consumers' dedupe memory unless forced.

use crate::cli::{Error, fail, queue_depth, queue_url};
use aws_sdk_sqs::Client as Sqs;
use chrono::{DateTime as ChronoTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;

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
    let dlq_url = queue_url(sqs, &dlq)
        .await
        .map_err(|why| fail(format!("no queue {dlq}: {why}")))?;
    let there = queue_depth(sqs, &dlq_url).await?;
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
                let url = queue_url(sqs, &queue)
                    .await
                    .map_err(|why| format!("queue {queue}: {why}"));
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
    report.left = queue_depth(sqs, &dlq_url).await.ok().unwrap_or(0);
    Ok(report)
}

#[cfg(test)]
mod tests {
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
}
