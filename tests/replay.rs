//! Consumers and replay, end to end: the notifications consumer and the sales read model
//! fed by the bus, `commerce-ops replay` rebuilding the read model from the archive
//! without telling any customer twice, windows and rule filters limiting a replay (on the
//! emulator whose replay honours them, as AWS's does), and a poison message going to its
//! dead-letter queue and back with `commerce-ops redrive`, and an event the bus could not
//! deliver kept in the bus's dead-letter queue until `commerce-ops redeliver` sends it on.
//!
//! The tests of this binary share the sales table (one of them empties it) and the
//! archive, so they run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod saga_support;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use e2e::*;
use saga_support::{SAGA_WAIT as WAIT, place_lines, wait_for};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A poison message is received 3 times, 30 s apart locally (the queue's visibility timeout,
/// at least the consumer's timeout), before it is dead-lettered.
const DLQ_WAIT: Duration = Duration::from_secs(240);

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The queues of the consumers a replay reaches.
const CONSUMERS: [&str; 3] = ["sales-projection", "notifications", "order-placed"];

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `GET /analytics/sales` for `sku` over yesterday..tomorrow (UTC), as an admin.
async fn sales(sku: &str) -> Value {
    let today = chrono::Utc::now().date_naive();
    let res = http()
        .get(format!(
            "{}/analytics/sales?from={}&to={}&sku={sku}",
            api_url(),
            today - chrono::Days::new(1),
            today + chrono::Days::new(1)
        ))
        .bearer_auth(e2e::token(&fresh_admin_id(), true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Units and revenue per sku over the report's rows.
async fn sales_of(skus: &[&str]) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for sku in skus {
        out.insert(
            (*sku).to_owned(),
            sales(sku).await["items"].as_array().unwrap().clone(),
        );
    }
    out
}

fn summary(rows: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, (i64, String)> {
    rows.iter()
        .map(|(sku, items)| {
            let units = items.iter().map(|i| i["units"].as_i64().unwrap()).sum();
            let revenue: Vec<String> = items
                .iter()
                .map(|i| {
                    format!(
                        "{} {}",
                        i["revenue"]["amount"].as_str().unwrap(),
                        i["revenue"]["currency"].as_str().unwrap()
                    )
                })
                .collect();
            (sku.clone(), (units, revenue.join(",")))
        })
        .collect()
}

/// Polls until `check` holds for the report of `skus`.
async fn wait_for_sales(
    skus: &[&str],
    check: impl Fn(&BTreeMap<String, (i64, String)>) -> bool,
) -> BTreeMap<String, Vec<Value>> {
    let started = Instant::now();
    loop {
        let rows = sales_of(skus).await;
        if check(&summary(&rows)) {
            return rows;
        }
        assert!(
            started.elapsed() < WAIT,
            "sales still {:?} after {WAIT:?}",
            summary(&rows)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws().await)
}

/// Messages in the queue `name`, visible and in flight.
async fn depth(sqs: &aws_sdk_sqs::Client, name: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url(sqs, name).await)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes.unwrap();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| a[k].parse::<u64>().unwrap())
    .sum()
}

/// Waits until the consumers' queues are empty, twice in a row a second apart.
async fn drained(queues: &[&str]) {
    let sqs = sqs().await;
    let started = Instant::now();
    let mut empty_in_a_row = 0;
    while empty_in_a_row < 2 {
        let mut total = 0;
        for q in queues {
            total += depth(&sqs, q).await;
        }
        empty_in_a_row = if total == 0 { empty_in_a_row + 1 } else { 0 };
        assert!(started.elapsed() < WAIT, "queues {queues:?} not drained");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The notifications written for `order_ids`: (event id, kind, order id) per item.
async fn notifications_for(order_ids: &BTreeSet<String>) -> Vec<(String, String, String)> {
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table("notifications"))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let s = |k: &str| item[k].as_s().unwrap().clone();
            if order_ids.contains(&s("order_id")) {
                found.push((s("event_id"), s("kind"), s("order_id")));
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            found.sort();
            return found;
        }
    }
}

fn count_per_event(n: &[(String, String, String)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (event_id, _, _) in n {
        *counts.entry(event_id.clone()).or_default() += 1;
    }
    counts
}

/// Whether `consumer` handled `event_id` from replay `replay` (its dedupe record).
async fn handled_in_replay(consumer: &str, replay: &str, event_id: &str) -> bool {
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    let id = shared::idempotency::record_id(
        &format!("event:{consumer}"),
        &format!("replay:{replay}"),
        event_id,
    );
    let item = ddb
        .get_item()
        .table_name(table("idempotency"))
        .key("id", AttributeValue::S(id))
        .send()
        .await
        .unwrap()
        .item;
    item.is_some_and(|i| i["status"].as_s().is_ok_and(|s| s == "COMPLETED"))
}

fn replay_name(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("replay ")?.split(':').next())
        .unwrap()
        .to_owned()
}

fn replayed_count(output: &str) -> usize {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("events replayed: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_replay_rebuilds_the_sales_read_model_and_tells_no_customer_twice() {
    let _one = ONE_AT_A_TIME.lock().await;
    let from = chrono::Utc::now() - chrono::Duration::seconds(2);
    let (a, b) = (fresh_sku("SALES"), fresh_sku("SALES"));
    create_product(&a, "10.00", "EUR", 100).await;
    create_product(&b, "2.50", "EUR", 100).await;
    let user = fresh_user_id();

    // Confirmed; confirmed then cancelled; rejected.
    let kept = place_lines(&user, &[(&a, 2), (&b, 3)], "tok_visa").await;
    let cancelled = place_lines(&user, &[(&a, 1)], "tok_visa").await;
    let rejected = place_lines(&user, &[(&b, 1)], "tok_declined").await;
    wait_for(&user, &kept, &["CONFIRMED"]).await;
    wait_for(&user, &cancelled, &["CONFIRMED"]).await;
    let res = cancel_order(&cancelled, &e2e::token(&user, false)).await;
    assert!(
        res.status().is_success(),
        "cancel answered {}",
        res.status()
    );
    wait_for(&user, &cancelled, &["CANCELLED"]).await;
    wait_for(&user, &rejected, &["REJECTED"]).await;

    // Net of the cancellation: a sold 2 for 20.00, b sold 3 for 7.50.
    let skus = [a.as_str(), b.as_str()];
    let (ka, kb) = (a.clone(), b.clone());
    let expected = move |s: &BTreeMap<String, (i64, String)>| {
        s[&ka] == (2, "20.00 EUR".to_owned()) && s[&kb] == (3, "7.50 EUR".to_owned())
    };
    let before = wait_for_sales(&skus, &expected).await;
    let ours: BTreeSet<String> = [&kept, &cancelled, &rejected]
        .into_iter()
        .cloned()
        .collect();
    let started = Instant::now();
    let told = loop {
        let n = notifications_for(&ours).await;
        if n.len() >= 5 {
            break n;
        }
        assert!(started.elapsed() < WAIT, "notifications so far: {n:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let kinds: BTreeSet<(String, String)> = told
        .iter()
        .map(|(_, kind, order)| (order.clone(), kind.clone()))
        .collect();
    let expected_kinds: BTreeSet<(String, String)> = [
        (&kept, "order-confirmed"),
        (&cancelled, "order-confirmed"),
        (&cancelled, "order-cancelled"),
        (&cancelled, "payment-refunded"),
        (&rejected, "order-rejected"),
    ]
    .into_iter()
    .map(|(o, k)| (o.clone(), k.to_owned()))
    .collect();
    assert_eq!(kinds, expected_kinds);
    drained(&CONSUMERS).await;

    // Empty the read model: the report has nothing.
    let (ok, out) = commerce_ops(&["empty-read-model", "sales"]);
    assert!(!ok && out.contains("--yes"), "emptying needs --yes");
    let (ok, out) = commerce_ops(&["empty-read-model", "sales", "--yes"]);
    assert!(ok, "{out}");
    let empty = sales_of(&skus).await;
    assert!(empty.values().all(Vec::is_empty), "{empty:?}");

    // A window with one end only is refused unless told.
    let (ok, out) = commerce_ops(&["replay", "--from", &rfc3339(from)]);
    assert!(!ok && out.contains("--unbounded"), "{out}");

    // Replay the window of this test: the model is what it was.
    let to = chrono::Utc::now();
    let window = [
        "--from".to_owned(),
        rfc3339(from),
        "--to".to_owned(),
        rfc3339(to),
    ];
    let mut args: Vec<&str> = vec!["replay", "--allow-overlap"];
    args.extend(window.iter().map(String::as_str));
    let (ok, out) = commerce_ops(&args);
    assert!(ok && out.contains("COMPLETED"), "{out}");
    let first = replay_name(&out);
    assert!(replayed_count(&out) >= 12, "{out}");
    drained(&CONSUMERS).await;
    let rebuilt = wait_for_sales(&skus, &expected).await;
    assert_eq!(rebuilt, before, "the rebuilt read model differs");

    // Every consumer saw the replay; no customer was told twice, and no saga restarted.
    for (event_id, _, _) in &told {
        assert!(
            handled_in_replay("notifications", &first, event_id).await,
            "the notifications consumer did not see {event_id} replayed"
        );
    }
    let after = notifications_for(&ours).await;
    assert_eq!(after, told, "a replay notified a customer");
    assert!(count_per_event(&after).values().all(|n| *n == 1));
    let order = saga_support::order(&user, &kept).await;
    assert_eq!(order["status"], "CONFIRMED");

    // The same window again without saying so: refused, as it overlaps.
    let mut again: Vec<&str> = vec!["replay"];
    again.extend(window.iter().map(String::as_str));
    let (ok, out) = commerce_ops(&again);
    assert!(
        !ok && out.contains("overlaps") && out.contains(&first),
        "{out}"
    );
    // Said so: it runs and changes nothing.
    let (ok, out) = commerce_ops(&args);
    assert!(ok && out.contains("COMPLETED"), "{out}");
    let second = replay_name(&out);
    assert_ne!(first, second);
    drained(&CONSUMERS).await;
    for (event_id, kind, _) in &told {
        if kind == "order-confirmed" {
            assert!(handled_in_replay("sales-projection", &second, event_id).await);
        }
    }
    assert_eq!(sales_of(&skus).await, before);
    assert_eq!(notifications_for(&ours).await, told);
}

/// A rule `commerce-<name>` on the bus, for OrderConfirmed, into a queue of the same name.
async fn listener(name: &str) {
    let pattern = json!({"source": ["commerce.orders"], "detail-type": ["OrderConfirmed"]});
    listen_to_bus_with(name, &queue(name), pattern).await;
}

/// The events of `orders` that replay `replay` delivered to the listener `queue_name`,
/// once at least `at_least` are there (the emulator's replay is done when the command ends).
async fn replayed_to(
    queue_name: &str,
    replay: &str,
    orders: &[String],
    at_least: usize,
) -> Vec<Value> {
    let (replay, orders) = (replay.to_owned(), orders.to_vec());
    events_on_queue(queue_name, at_least, Duration::from_secs(10), move |e| {
        e["replay-name"] == replay.as_str()
            && orders
                .iter()
                .any(|o| e["detail"]["data"]["order_id"] == o.as_str())
    })
    .await
}

#[tokio::test]
async fn a_window_replays_only_its_events_and_a_rule_filter_only_to_that_rule() {
    let _one = ONE_AT_A_TIME.lock().await;
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    let (first_rule, second_rule) = (
        format!("e2e-replay-a-{suffix}"),
        format!("e2e-replay-b-{suffix}"),
    );
    listener(&first_rule).await;
    listener(&second_rule).await;
    let sku = fresh_sku("WINDOW");
    create_product(&sku, "4.00", "EUR", 10).await;
    let user = fresh_user_id();
    let from = chrono::Utc::now() - chrono::Duration::seconds(1);
    let early = place_lines(&user, &[(&sku, 1)], "tok_visa").await;
    wait_for(&user, &early, &["CONFIRMED"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late = place_lines(&user, &[(&sku, 1)], "tok_visa").await;
    wait_for(&user, &late, &["CONFIRMED"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Only the early order's events, only to the first rule.
    let (ok, out) = commerce_ops(&[
        "replay",
        "--allow-overlap",
        "--from",
        &rfc3339(from),
        "--to",
        &rfc3339(middle),
        "--rule",
        &first_rule,
    ]);
    assert!(ok && out.contains("COMPLETED"), "{out}");
    let name = replay_name(&out);
    let ours = [early.clone(), late.clone()];
    let first = replayed_to(&first_rule, &name, &ours, 0).await;
    let orders: Vec<&str> = first
        .iter()
        .map(|e| e["detail"]["data"]["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        orders,
        vec![early.as_str()],
        "the window holds the early order only"
    );
    assert!(
        replayed_to(&second_rule, &name, &ours, 0).await.is_empty(),
        "the filter excludes the second rule"
    );

    // The whole span, to both: both orders reach both rules.
    let (ok, out) = commerce_ops(&[
        "replay",
        "--allow-overlap",
        "--from",
        &rfc3339(from),
        "--to",
        &rfc3339(chrono::Utc::now()),
        "--rule",
        &first_rule,
        "--rule",
        &second_rule,
    ]);
    assert!(ok, "{out}");
    let name = replay_name(&out);
    for q in [&first_rule, &second_rule] {
        let got = replayed_to(q, &name, &ours, 2).await;
        assert_eq!(got.len(), 2, "{q}: {got:?}");
    }
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_then_redriven_and_its_batch_handled_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sqs = sqs().await;
    let url = queue_url(&sqs, "notifications").await;
    let event_id = ulid::Ulid::new().to_string();
    let order_id = ulid::Ulid::new().to_string();
    let good = json!({
        "version": "0", "id": ulid::Ulid::new().to_string(), "source": "commerce.orders",
        "detail-type": "OrderConfirmed", "account": "123456789012", "region": "us-east-1",
        "time": rfc3339(chrono::Utc::now()), "resources": [],
        "detail": {
            "metadata": {"event_id": event_id, "occurred_at": rfc3339(chrono::Utc::now()),
                         "correlation_id": "poison-test", "causation_id": null, "schema_version": 1},
            "data": {"order_id": order_id, "user_id": fresh_user_id(),
                     "items": [{"sku": "SKU-POISON", "quantity": 1, "unit_price": {"amount": "1.00", "currency": "EUR"}}],
                     "total": {"amount": "1.00", "currency": "EUR"}}
        }
    });
    let poison = format!("poison {}", ulid::Ulid::new());
    let entry = |id: &str, body: String| {
        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
            .build()
            .unwrap()
    };
    let dlq_before = depth(&sqs, "notifications-dlq").await;
    let sent = sqs
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("good", good.to_string()))
        .entries(entry("poison", poison.clone()))
        .send()
        .await
        .unwrap();
    assert!(sent.failed().is_empty());

    // The poison ends in the DLQ after the queue's max receives (3, 30 s apart).
    let ours: BTreeSet<String> = [order_id.clone()].into();
    let started = Instant::now();
    while depth(&sqs, "notifications-dlq").await < dlq_before + 1 {
        assert!(
            started.elapsed() < DLQ_WAIT,
            "the poison message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drained(&["notifications"]).await;
    let told = notifications_for(&ours).await;
    assert_eq!(
        told.len(),
        1,
        "the good message of the batch is handled once: {told:?}"
    );
    assert_eq!(told[0].0, event_id);

    // Redrive: it goes back to the queue, fails its receives again, and returns to the DLQ.
    let (ok, out) = commerce_ops(&["redrive", "--queue", "notifications"]);
    assert!(ok, "{out}");
    let moved = dlq_before + 1;
    assert!(out.contains(&format!("moved {moved} message(s)")), "{out}");
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        depth(&sqs, "notifications-dlq").await,
        0,
        "the DLQ is empty right after"
    );
    let started = Instant::now();
    while depth(&sqs, "notifications-dlq").await < moved {
        assert!(
            started.elapsed() < DLQ_WAIT,
            "the redriven message did not come back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let back = sqs
        .receive_message()
        .queue_url(queue_url(&sqs, "notifications-dlq").await)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(
        back.messages()
            .iter()
            .any(|m| m.body() == Some(poison.as_str())),
        "the poison message is the one back in the DLQ"
    );
    let (ok, out) = commerce_ops(&["redrive", "--queue", "nonexistent"]);
    assert!(
        !ok && out.contains("no queue commerce-nonexistent"),
        "{out}"
    );
    assert_eq!(notifications_for(&ours).await, told, "still told once");
}

/// The bus's rules as the local stack provisions them: each target retries within the
/// declared bounds and then dead-letters to the bus's dead-letter queue, as Terraform's.
#[tokio::test]
async fn every_rule_target_dead_letters_what_the_bus_cannot_deliver() {
    let events = aws_sdk_eventbridge::Client::new(&aws().await);
    let sqs = sqs().await;
    let decl = declaration();
    let dlq_arn = queue_arn(&sqs, decl["bus"]["dead_letter_queue"].as_str().unwrap()).await;
    let retry = &decl["bus"]["target_retry"];
    for rule in decl["rules"].as_object().unwrap().keys() {
        let targets = events
            .list_targets_by_rule()
            .rule(format!("commerce-{rule}"))
            .event_bus_name("commerce")
            .send()
            .await
            .unwrap();
        let [target] = targets.targets() else {
            panic!(
                "rule {rule}: one target expected, got {:?}",
                targets.targets()
            );
        };
        assert_eq!(
            target.dead_letter_config().and_then(|d| d.arn()),
            Some(dlq_arn.as_str()),
            "rule {rule}"
        );
        let policy = target.retry_policy().expect("a retry policy");
        assert_eq!(
            policy.maximum_event_age_in_seconds().map(i64::from),
            retry["maximum_event_age_s"].as_i64(),
            "rule {rule}"
        );
        assert_eq!(
            policy.maximum_retry_attempts().map(i64::from),
            retry["maximum_retry_attempts"].as_i64(),
            "rule {rule}"
        );
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue_url(sqs, name).await)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
}

/// An event the bus cannot deliver (its rule's queue is gone) is not lost: PutEvents still
/// succeeds, the event waits in the bus's dead-letter queue with the rule, target and error,
/// `commerce-ops redeliver` leaves it there while the queue is missing, and once the queue
/// is back sends it there unchanged (same event id), and it leaves the dead-letter queue.
/// The test's rule and queue are removed whatever happens, so a failed run leaves nothing
/// behind on a long-lived stack.
#[tokio::test]
async fn an_undeliverable_event_waits_in_the_bus_dlq_until_redelivered() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let rule = format!("commerce-undelivered-{tag}");
    let queue_name = queue(&format!("undelivered-{tag}"));
    let outcome = tokio::spawn(undeliverable_event(tag, rule.clone(), queue_name.clone())).await;
    let sdk = aws().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let _ = events
        .remove_targets()
        .rule(&rule)
        .event_bus_name("commerce")
        .ids("queue")
        .send()
        .await;
    let _ = events
        .delete_rule()
        .name(&rule)
        .event_bus_name("commerce")
        .send()
        .await;
    if let Ok(q) = sqs.get_queue_url().queue_name(&queue_name).send().await
        && let Some(url) = q.queue_url()
    {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The messages of the bus's dead-letter queue that hold the event `event_id`, seen without
/// taking them (visibility 0): (body, attributes).
async fn dead_letters_of(
    sqs: &aws_sdk_sqs::Client,
    event_id: &str,
) -> Vec<(Value, BTreeMap<String, String>)> {
    let url = queue_url(sqs, "bus-dlq").await;
    let mut found = BTreeMap::new();
    for _ in 0..3 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let body: Value =
                serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
            if body["id"] == event_id {
                let attributes = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                    .collect();
                found.insert(
                    m.message_id().unwrap_or_default().to_owned(),
                    (body, attributes),
                );
            }
        }
    }
    found.into_values().collect()
}

async fn undeliverable_event(tag: String, rule: String, queue_name: String) {
    let sdk = aws().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = sqs().await;
    let bus_dlq = queue_arn(&sqs, "bus-dlq").await;
    // The queue the rule targets does not exist (yet): an ARN in this account and region.
    let target_arn = format!("{}:{queue_name}", bus_dlq.rsplit_once(':').unwrap().0);
    events
        .put_rule()
        .name(&rule)
        .event_bus_name("commerce")
        .event_pattern(
            json!({"source": ["commerce.test"], "detail-type": [format!("Undelivered-{tag}")]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name("commerce")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&target_arn)
                .dead_letter_config(
                    aws_sdk_eventbridge::types::DeadLetterConfig::builder()
                        .arn(&bus_dlq)
                        .build(),
                )
                .retry_policy(
                    aws_sdk_eventbridge::types::RetryPolicy::builder()
                        .maximum_event_age_in_seconds(3600)
                        .maximum_retry_attempts(3)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let put = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name("commerce")
                .source("commerce.test")
                .detail_type(format!("Undelivered-{tag}"))
                .detail(json!({"tag": tag}).to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.failed_entry_count(),
        0,
        "PutEvents succeeds: delivery is the bus's business"
    );
    let event_id = put.entries()[0].event_id().unwrap().to_owned();

    // It waits in the bus's dead-letter queue, once, with what an operator needs to find
    // the cause.
    let started = Instant::now();
    let (body, attributes) = loop {
        if let [one] = &dead_letters_of(&sqs, &event_id).await[..] {
            break one.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the event never reached the bus's dead-letter queue"
        );
    };
    assert_eq!(body["detail"]["tag"], tag.as_str());
    assert_eq!(attributes["TARGET_ARN"], target_arn);
    assert!(
        attributes["RULE_ARN"].ends_with(&format!("rule/commerce/{rule}")),
        "{attributes:?}"
    );
    assert!(
        !attributes["ERROR_CODE"].is_empty() && !attributes["ERROR_MESSAGE"].is_empty(),
        "{attributes:?}"
    );

    // While the queue is missing, redeliver sends nothing there, says why, fails, and
    // keeps the event.
    let (ok, out) = commerce_ops(&["redeliver"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("not sent (1): queue {queue_name}")),
        "{out}"
    );
    assert_eq!(
        dead_letters_of(&sqs, &event_id).await.len(),
        1,
        "the event stays in the dead-letter queue, visible for the next run"
    );

    // Mended (the queue is back): it is sent there, unchanged, once, and leaves the DLQ.
    let url = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let (ok, out) = commerce_ops(&["redeliver"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{queue_name}: 1")), "{out}");
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let delivered: Vec<Value> = got
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(
        delivered,
        vec![body],
        "the event as the queue would have had it, once"
    );
    assert!(
        dead_letters_of(&sqs, &event_id).await.is_empty(),
        "the event left the bus's dead-letter queue"
    );
}
