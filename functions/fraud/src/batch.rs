//! The Kinesis consumer's batch path: one batch of the `transactions` stream scored with
//! as few DynamoDB requests as the table's layout allows, each order once, no update of a
//! user's state lost to another consumer.
//!
//! 1. Every record is parsed. A record that can never be scored (not JSON, not the record's
//!    schema) is parked in the failure queue with its reason ([`crate::dead_letters`]) and
//!    the batch goes on without it.
//! 2. The records are grouped by user, keeping stream order within each user.
//! 3. The users' states are read in one consistent `BatchGetItem` (100 users a request).
//! 4. Each user's records are scored in order against that state in memory. An order the
//!    state has counted already (a redelivery, a replay) is not counted again: it is
//!    answered from its stored assessment.
//! 5. Each user's new state (only if its version is still the one read), and the
//!    assessments and `FraudAssessed` events of its new orders, are written in conditional
//!    `TransactWriteItems` of up to 100 items, several users to a transaction, one user's
//!    items always in the same one, the transactions at once.
//! 6. When a transaction is cancelled, only the users whose items failed their condition
//!    (another consumer wrote the state meanwhile, or the order was assessed before) are
//!    read again and scored again; the others of that transaction are written again as
//!    they were. After [`MAX_ROUNDS`] rounds the remaining users' records are retried.
//! 7. Once a user's writes are committed, the saga's task tokens are answered.
//!
//! A record that failed for a reason that may pass (DynamoDB, Step Functions, the failure
//! queue) is named in `batchItemFailures`, with the later records of its user; Lambda
//! retries from the lowest, and what was done meanwhile is recognised and not done twice.

use crate::answer::{self, Answer, Delivery, SagaAnswer};
use crate::dead_letters::{DeadLetter, DeadLetters};
use crate::domain::Assessment;
use crate::features::UserState;
use crate::scoring::Scorer;
use crate::store::{FraudStore, MAX_TRANSACTION_ITEMS};
use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_lambda_events::event::streams::KinesisEventResponse;
use aws_sdk_dynamodb::types::TransactWriteItem;
use futures::StreamExt;
use shared::dynamo::Transaction;
use shared::events::{Envelope, FraudAssessed};
use shared::ids::{OrderId, UserId};
use shared::problem::error_chain;
use shared::transactions::TransactionRecord;
use std::collections::{HashMap, HashSet};

/// Rounds of read, score and write before the records of users still in conflict are left
/// to Lambda's retry.
pub const MAX_ROUNDS: u32 = 8;
/// New orders of one user written in one transaction: its state and two items per order
/// (the assessment and its event) fit in [`MAX_TRANSACTION_ITEMS`]. A user with more in
/// one batch is written in several rounds, the later ones from the state just written.
pub const MAX_NEW_PER_USER_ROUND: usize = (MAX_TRANSACTION_ITEMS - 1) / 2;
/// Task tokens answered at once.
pub const ANSWERS_AT_ONCE: usize = 16;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordResult {
    /// Scored now, stored and answered.
    Scored(Assessment, Delivery),
    /// Scored before (a redelivery): answered from the stored assessment.
    AnsweredAgain(Assessment, Delivery),
    /// Never scorable: parked in the failure queue with this reason.
    Parked(String),
    /// Failed for a reason that may pass: named in `batchItemFailures`.
    Failed(String),
}

/// What one batch did, record by record (in the batch's order), and the answer for Lambda.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// One result per record.
    pub results: Vec<RecordResult>,
    /// `batchItemFailures`: the sequence numbers of the records to retry.
    pub response: KinesisEventResponse,
    /// Rounds of read-score-write the batch needed (1 without conflicts).
    pub rounds: u32,
}

/// One user's part of the batch.
struct UserWork {
    user: UserId,
    /// Indexes into the batch of the records not yet stored, in stream order.
    pending: Vec<usize>,
    /// The state as last read or written, when it is still to be trusted.
    state: Option<UserState>,
    /// Orders found assessed by someone else (their assessment's condition failed): not
    /// counted again, answered from the stored assessment.
    assessed_elsewhere: HashSet<OrderId>,
    /// Written in a transaction of its own next round: its items failed a condition, or its
    /// transaction failed with other users in it. One user's trouble then holds up nobody
    /// else's writes.
    alone: bool,
}

/// What one user writes in a round.
struct Plan {
    user: usize,
    /// The state the round read (or last wrote).
    read: UserState,
    /// The state after this round's orders.
    state: UserState,
    /// (record index, assessment) of the orders scored now, in stream order.
    scored: Vec<(usize, Assessment)>,
    /// Records of orders the state had counted: answered from the store once this round's
    /// writes hold.
    again: Vec<usize>,
    /// Their items: the state first, then each order's assessment and event.
    items: Vec<TransactWriteItem>,
    /// How many items the plan sent (its share of a cancelled transaction's codes).
    sent: usize,
    /// Records this round takes off `pending` (scored or found counted).
    taken: usize,
}

/// Scores one batch of the `transactions` stream; see the module doc.
pub async fn score_batch(
    store: &FraudStore,
    saga: &impl SagaAnswer,
    dead_letters: &impl DeadLetters,
    scorer: &Scorer,
    records: &[KinesisEventRecord],
) -> BatchOutcome {
    let mut results: Vec<Option<RecordResult>> = vec![None; records.len()];
    let mut parsed: Vec<Option<TransactionRecord>> = Vec::with_capacity(records.len());
    let mut letters: Vec<(usize, DeadLetter)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match TransactionRecord::parse(&record.kinesis.data.0) {
            Ok(r) => parsed.push(Some(r)),
            Err(e) => {
                parsed.push(None);
                letters.push((i, DeadLetter::of(record, error_chain(&e))));
            }
        }
    }
    park(dead_letters, records, letters, &mut results).await;

    // Users in the order their first record comes, each user's records in stream order.
    let mut users: Vec<UserWork> = Vec::new();
    let mut index: HashMap<&UserId, usize> = HashMap::new();
    for (i, r) in parsed.iter().enumerate() {
        let Some(r) = r else { continue };
        let u = *index.entry(&r.user_id).or_insert_with(|| {
            users.push(UserWork {
                user: r.user_id.clone(),
                pending: Vec::new(),
                state: None,
                assessed_elsewhere: HashSet::new(),
                alone: false,
            });
            users.len() - 1
        });
        users[u].pending.push(i);
    }

    // (record index, assessment, newly assessed) to answer, and records to answer from the
    // store; each record lands in one of them once, when its user's round holds.
    let mut to_answer: Vec<(usize, Assessment, bool)> = Vec::new();
    let mut answer_again: Vec<usize> = Vec::new();
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && users.iter().any(|u| !u.pending.is_empty()) {
        rounds += 1;
        // Read the states not known, in one request per 100 users.
        let unknown: Vec<&UserId> = users
            .iter()
            .filter(|u| !u.pending.is_empty() && u.state.is_none())
            .map(|u| &u.user)
            .collect();
        if !unknown.is_empty() {
            match store.states(&unknown).await {
                Ok(mut states) => {
                    for u in users.iter_mut().filter(|u| u.state.is_none()) {
                        match states.remove(&u.user) {
                            Some(Ok(state)) => u.state = Some(state),
                            Some(Err(reason)) => fail_user(u, &reason, &mut results),
                            None => {}
                        }
                    }
                }
                Err(e) => {
                    let reason = error_chain(&e);
                    for u in users.iter_mut().filter(|u| u.state.is_none()) {
                        fail_user(u, &reason, &mut results);
                    }
                }
            }
        }

        // Score in memory.
        let mut plans: Vec<Plan> = Vec::new();
        for (ui, u) in users.iter_mut().enumerate() {
            if u.pending.is_empty() {
                continue;
            }
            let Some(read) = u.state.as_ref() else {
                continue;
            };
            let mut state = read.clone();
            let mut scored = Vec::new();
            let mut again = Vec::new();
            let mut taken = 0;
            for &i in &u.pending {
                if scored.len() == MAX_NEW_PER_USER_ROUND {
                    break;
                }
                taken += 1;
                let Some(r) = parsed[i].as_ref() else {
                    continue;
                };
                // Counted before, or by this round already (the same order twice in a batch).
                if state.has_seen(r.order_id.as_str()) || u.assessed_elsewhere.contains(&r.order_id)
                {
                    again.push(i);
                    continue;
                }
                scored.push((i, scorer.assess(&mut state, r, shared::time::now())));
            }
            if scored.is_empty() {
                // Nothing new: every record taken is answered from the store.
                u.pending.drain(..taken);
                answer_again.append(&mut again);
                continue;
            }
            state.version = read.version + 1;
            match writes(store, &u.user, &state, read.version, &scored, &parsed) {
                Ok(items) => plans.push(Plan {
                    user: ui,
                    read: read.clone(),
                    state,
                    scored,
                    again,
                    sent: items.len(),
                    items,
                    taken,
                }),
                Err(reason) => fail_user(u, &reason, &mut results),
            }
        }
        if plans.is_empty() {
            continue;
        }

        // Write: the users' items packed into transactions of up to 100 (a user that must
        // be alone in one of its own), all at once.
        let mut chunks: Vec<Vec<Plan>> = Vec::new();
        let mut shared_chunk: Option<usize> = None;
        let mut size = 0;
        for plan in plans {
            if users[plan.user].alone {
                chunks.push(vec![plan]);
                continue;
            }
            let fits = shared_chunk.is_some() && size + plan.items.len() <= MAX_TRANSACTION_ITEMS;
            if !fits {
                chunks.push(Vec::new());
                shared_chunk = Some(chunks.len() - 1);
                size = 0;
            }
            size += plan.items.len();
            if let Some(chunk) = shared_chunk.and_then(|c| chunks.get_mut(c)) {
                chunk.push(plan);
            }
        }
        let outcomes: Vec<(Vec<Plan>, Result<Transaction, String>)> =
            futures::future::join_all(chunks.into_iter().map(|mut chunk| async move {
                let items: Vec<TransactWriteItem> = chunk
                    .iter_mut()
                    .flat_map(|p| std::mem::take(&mut p.items))
                    .collect();
                let outcome = store.commit(items).await.map_err(|e| error_chain(&e));
                (chunk, outcome)
            }))
            .await;

        for (chunk, outcome) in outcomes {
            let together = chunk.len();
            match outcome {
                Ok(Transaction::Committed) => {
                    for mut plan in chunk {
                        let u = &mut users[plan.user];
                        u.pending.drain(..plan.taken);
                        u.state = Some(plan.state);
                        u.alone = false;
                        answer_again.append(&mut plan.again);
                        to_answer.extend(plan.scored.into_iter().map(|(i, a)| (i, a, true)));
                    }
                }
                Ok(Transaction::Cancelled(codes)) => {
                    // Each plan's codes, in the order its items were sent.
                    let mut at = 0;
                    for plan in chunk {
                        let mine = codes.get(at..at + plan.sent).unwrap_or_default();
                        at += plan.sent;
                        let u = &mut users[plan.user];
                        if mine.iter().all(Option::is_none) {
                            // Fine itself: written again next round from the same read.
                            u.state = Some(plan.read);
                            continue;
                        }
                        // The state moved, or an order was assessed elsewhere: read again,
                        // and write alone.
                        for (k, (i, _)) in plan.scored.iter().enumerate() {
                            let assessment_code = mine.get(1 + 2 * k).and_then(Option::as_deref);
                            if assessment_code == Some("ConditionalCheckFailed")
                                && let Some(r) = parsed[*i].as_ref()
                            {
                                u.assessed_elsewhere.insert(r.order_id.clone());
                            }
                        }
                        u.state = None;
                        u.alone = true;
                    }
                }
                Err(reason) if together > 1 => {
                    // Refused as a whole (throttled past its retries, or invalid): each user
                    // tries alone next round, so one user's trouble fails only that user.
                    tracing::warn!(%reason, users = together, "a transaction of several users failed; writing each alone");
                    for plan in chunk {
                        let u = &mut users[plan.user];
                        u.state = Some(plan.read);
                        u.alone = true;
                    }
                }
                Err(reason) => {
                    for plan in chunk {
                        fail_user(&mut users[plan.user], &reason, &mut results);
                    }
                }
            }
        }
    }
    for u in users.iter_mut().filter(|u| !u.pending.is_empty()) {
        let reason = format!("state still contended after {MAX_ROUNDS} rounds");
        fail_user(u, &reason, &mut results);
    }

    // Redeliveries: their stored assessments, in one read per 100 orders.
    if !answer_again.is_empty() {
        // Each order once: two records of one order (a retried saga step) share its read.
        let orders: Vec<&OrderId> = answer_again
            .iter()
            .filter_map(|&i| parsed[i].as_ref().map(|r| &r.order_id))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        match store.assessments(&orders).await {
            Ok(stored) => {
                for &i in &answer_again {
                    let Some(r) = parsed[i].as_ref() else {
                        continue;
                    };
                    match stored.get(&r.order_id) {
                        Some(a) => to_answer.push((i, a.clone(), false)),
                        None => {
                            results[i] = Some(RecordResult::Failed(format!(
                                "order {} counted but its assessment is not readable yet",
                                r.order_id
                            )));
                        }
                    }
                }
            }
            Err(e) => {
                let reason = error_chain(&e);
                for &i in &answer_again {
                    results[i] = Some(RecordResult::Failed(reason.clone()));
                }
            }
        }
    }

    // Answer the saga, for every record whose assessment is stored.
    let answered: Vec<(usize, Result<RecordResult, String>)> = futures::stream::iter(
        to_answer
            .into_iter()
            .filter_map(|(i, a, new)| parsed[i].as_ref().map(|r| (i, r, a, new))),
    )
    .map(|(i, r, a, new)| async move {
        let answer: Answer = answer::for_assessment(&a);
        let sent = saga.send(&r.task_token, &answer).await;
        (
            i,
            sent.map(|delivery| {
                tracing::info!(
                    order_id = %a.order_id,
                    correlation_id = %r.correlation(),
                    score = a.score,
                    decision = ?a.decision,
                    reasons = ?a.reasons,
                    model_version = %a.model_version,
                    newly_assessed = new,
                    delivery = ?delivery,
                    "fraud check answered"
                );
                if new {
                    RecordResult::Scored(a, delivery)
                } else {
                    RecordResult::AnsweredAgain(a, delivery)
                }
            })
            .map_err(|e| error_chain(&e)),
        )
    })
    .buffer_unordered(ANSWERS_AT_ONCE)
    .collect()
    .await;
    for (i, result) in answered {
        results[i] = Some(result.unwrap_or_else(RecordResult::Failed));
    }

    let results: Vec<RecordResult> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| RecordResult::Failed("not handled".into())))
        .collect();
    let mut response = KinesisEventResponse::default();
    for (record, result) in records.iter().zip(&results) {
        if let RecordResult::Failed(reason) = result {
            let sequence_number = &record.kinesis.sequence_number;
            tracing::error!(%sequence_number, %reason, "fraud check failed; Lambda retries from here");
            response.add_failure(sequence_number.clone());
        }
    }
    BatchOutcome {
        results,
        response,
        rounds,
    }
}

/// Fails every record of `u` still pending: Lambda retries them.
fn fail_user(u: &mut UserWork, reason: &str, results: &mut [Option<RecordResult>]) {
    for i in u.pending.drain(..) {
        results[i] = Some(RecordResult::Failed(format!("user {}: {reason}", u.user)));
    }
    u.state = None;
}

/// Parks `letters` in the failure queue; a letter that could not be parked is retried.
async fn park(
    dead_letters: &impl DeadLetters,
    records: &[KinesisEventRecord],
    letters: Vec<(usize, DeadLetter)>,
    results: &mut [Option<RecordResult>],
) {
    if letters.is_empty() {
        return;
    }
    let (indexes, letters): (Vec<usize>, Vec<DeadLetter>) = letters.into_iter().unzip();
    let parked = dead_letters.park(&letters).await;
    for ((i, letter), outcome) in indexes.into_iter().zip(letters).zip(parked) {
        let sequence_number = &records[i].kinesis.sequence_number;
        results[i] = Some(match outcome {
            Ok(()) => {
                tracing::warn!(%sequence_number, reason = %letter.reason, "record cannot be scored; parked in the failure queue");
                RecordResult::Parked(letter.reason)
            }
            Err(e) => RecordResult::Failed(format!(
                "cannot be scored ({}), and parking it failed: {e}",
                letter.reason
            )),
        });
    }
}

/// The items of one user's round: the new state (conditional on the version read), then
/// each new order's assessment (only if it has none) and its `FraudAssessed` event.
fn writes(
    store: &FraudStore,
    user: &UserId,
    state: &UserState,
    read_version: u64,
    scored: &[(usize, Assessment)],
    parsed: &[Option<TransactionRecord>],
) -> Result<Vec<TransactWriteItem>, String> {
    let mut items = Vec::with_capacity(1 + 2 * scored.len());
    items.push(
        store
            .state_put(user, state, read_version)
            .map_err(|e| error_chain(&e))?,
    );
    for (i, a) in scored {
        let correlation = parsed[*i]
            .as_ref()
            .map_or(a.order_id.as_str(), |r| r.correlation());
        let event = Envelope::new(
            FraudAssessed {
                order_id: a.order_id.clone(),
                score: a.score,
                decision: a.decision,
                reasons: a.reasons.clone(),
                model_version: a.model_version.clone(),
            },
            a.assessed_at,
            correlation,
            Some(a.order_id.as_str()),
        );
        items.push(store.assessment_put(a).map_err(|e| error_chain(&e))?);
        items.push(store.outbox().put(&event).map_err(|e| error_chain(&e))?);
    }
    Ok(items)
}
