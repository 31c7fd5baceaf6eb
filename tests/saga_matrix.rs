//! The saga's fault matrix, in a test binary of its own: every Lambda task state of
//! `place-order` and `cancel-order` against every fault kind the emulator injects
//! (local/emulation/faults.py, `_take_injected_fault`):
//!
//! - `lost once`: the step ran, its answer was lost once (`Lambda.ServiceException`);
//! - `lost until the retries run out`: the step ran every time, no answer ever arrived;
//! - `error after the effect`: the step ran, then failed with an error no `Retry` names;
//! - `timeout`: the step ran, the caller saw Lambda's `Sandbox.Timedout`;
//! - `crash before the effect`: the process died before the step did anything
//!   (`Runtime.ExitError`).
//!
//! Each cell is one order with its own product, user and correlation id (the faults
//! strike only invocations carrying that correlation id), so all cells run at once. For
//! each, the order must reach a final status within the bound, and what a shop's
//! accountant checks must hold: `CONFIRMED` ⇔ payment `CAPTURED` and the units committed;
//! `REJECTED` ⇒ no money held and nothing reserved or committed; `CANCELLED` ⇒ payment
//! `REFUNDED` and the units back on hand. The test prints the matrix.
//!
//! A second test races 100 orders for one hot SKU through the real saga, now that the
//! emulator lets concurrent transactions conflict as DynamoDB does; a third fails an
//! execution for good and finishes its order with `commerce-ops compensate`, the
//! documented recovery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod saga_support;

use e2e::*;
use saga_support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a cell may take: the longest retry budget (7 attempts with capped, jittered
/// backoff, about a minute), a pause and a second round, under the load of every cell at once.
const MATRIX_WAIT: Duration = Duration::from_secs(420);

/// Cells in flight at once: the fraud scorer answers about two records a second on
/// the local stack, and a cell waiting longer than the local fraud timeout (60 s) would
/// be rejected `TIMED_OUT` for a reason that is not its fault.
const CELLS_AT_ONCE: usize = 12;

/// Orders a cancel-path cell may place before it gives up: CELLS_AT_ONCE keeps the fraud
/// check inside its timeout on an idle machine, not on every busy one.
const PLACEMENTS: u32 = 3;

/// The matrix and the race do not share the stack's capacity.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const STOCK: i64 = 5;
const QUANTITY: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    LostOnce,
    LostUntilRetriesRunOut,
    ErrorAfterEffect,
    Timeout,
    CrashBeforeEffect,
}

const KINDS: [Kind; 5] = [
    Kind::LostOnce,
    Kind::LostUntilRetriesRunOut,
    Kind::ErrorAfterEffect,
    Kind::Timeout,
    Kind::CrashBeforeEffect,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::LostOnce => "lost once",
            Kind::LostUntilRetriesRunOut => "lost until retries run out",
            Kind::ErrorAfterEffect => "error after effect",
            Kind::Timeout => "timeout",
            Kind::CrashBeforeEffect => "crash before effect",
        }
    }

    /// The emulator's rule for a state whose retrier allows `max_attempts` retries.
    fn rule(self, correlation_id: &str, max_attempts: u32) -> Value {
        let (kind, times) = match self {
            Kind::LostOnce => ("lost", 1),
            Kind::LostUntilRetriesRunOut => ("lost", max_attempts + 1),
            Kind::ErrorAfterEffect => ("error_after", 1),
            Kind::Timeout => ("timeout", 1),
            Kind::CrashBeforeEffect => ("crash", 1),
        };
        json!({"kind": kind, "times": times, "correlation_id": correlation_id})
    }
}

/// How a cell's order gets to the state under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// A good order: every forward state runs.
    Confirm,
    /// An order held for review, which the test approves.
    Review,
    /// A fraud denial after the stock is reserved and the payment authorized: the
    /// compensations before the capture run with something to give back.
    Deny,
    /// The commit fails after its effect: the compensations past the capture run.
    AfterCapture,
    /// A confirmed order, then cancelled: cancel-order's states run.
    Cancel,
}

/// A Lambda task state: its name, its function, how to reach it, its retries.
struct State {
    machine: &'static str,
    name: &'static str,
    function: &'static str,
    path: Path,
    max_attempts: u32,
}

const STATES: &[State] = &[
    State {
        machine: "place-order",
        name: "ReserveStock",
        function: "inventory-reserve",
        path: Path::Confirm,
        max_attempts: 3,
    },
    State {
        machine: "place-order",
        name: "AuthorizePayment",
        function: "payments-authorize",
        path: Path::Confirm,
        max_attempts: 3,
    },
    State {
        machine: "place-order",
        name: "RequestFraudDecision",
        function: "payments-request-fraud-check",
        path: Path::Confirm,
        max_attempts: 3,
    },
    State {
        machine: "place-order",
        name: "HoldForReview",
        function: "orders-hold-for-review",
        path: Path::Review,
        max_attempts: 3,
    },
    State {
        machine: "place-order",
        name: "CapturePayment",
        function: "payments-capture",
        path: Path::Confirm,
        max_attempts: 3,
    },
    State {
        machine: "place-order",
        name: "CommitStock",
        function: "inventory-commit",
        path: Path::Confirm,
        max_attempts: 6,
    },
    State {
        machine: "place-order",
        name: "ConfirmOrder",
        function: "orders-confirm",
        path: Path::Confirm,
        max_attempts: 6,
    },
    State {
        machine: "place-order",
        name: "VoidPayment",
        function: "payments-void",
        path: Path::Deny,
        max_attempts: 6,
    },
    State {
        machine: "place-order",
        name: "ReleaseStock",
        function: "inventory-release",
        path: Path::Deny,
        max_attempts: 6,
    },
    State {
        machine: "place-order",
        name: "RejectOrder",
        function: "orders-reject",
        path: Path::Deny,
        max_attempts: 6,
    },
    State {
        machine: "place-order",
        name: "RejectAfterCapture",
        function: "orders-reject",
        path: Path::AfterCapture,
        max_attempts: 6,
    },
    State {
        machine: "place-order",
        name: "RefundAfterCapture",
        function: "payments-refund",
        path: Path::AfterCapture,
        max_attempts: 6,
    },
    State {
        machine: "cancel-order",
        name: "RefundPayment",
        function: "payments-refund",
        path: Path::Cancel,
        max_attempts: 6,
    },
    State {
        machine: "cancel-order",
        name: "RestockStock",
        function: "inventory-restock",
        path: Path::Cancel,
        max_attempts: 6,
    },
    State {
        machine: "cancel-order",
        name: "FinishCancel",
        function: "orders-finish-cancel",
        path: Path::Cancel,
        max_attempts: 6,
    },
];

/// One cell's result.
#[derive(Debug, Clone)]
struct Outcome {
    status: String,
    reason: Option<String>,
    payment: String,
    stock: Value,
    execution: String,
    cancel_requests: u32,
    /// Orders placed for the cell (more than one when the first was rejected before it
    /// could be cancelled).
    placements: u32,
    seconds: u64,
    violations: Vec<String>,
}

fn faults_path() -> String {
    std::env::var("LOCAL_FAULTS_FILE").expect("LOCAL_FAULTS_FILE is set by local/stack.py")
}

fn cell_id(state: &State, kind: Kind) -> String {
    format!(
        "matrix-{}-{}-{:?}-{}",
        state.machine,
        state.name,
        kind,
        ulid::Ulid::new()
    )
}

async fn post_order(user: &str, sku: &str, correlation: &str) -> String {
    let res = http()
        .post(format!("{}/orders", api_url()))
        .bearer_auth(token(user, false))
        .header("idempotency-key", ulid::Ulid::new().to_string())
        .header("x-correlation-id", correlation)
        .json(&order_body(&[(sku, QUANTITY)], "tok_visa"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "placing an order");
    let order: Value = res.json().await.unwrap();
    order["order_id"].as_str().unwrap().to_owned()
}

async fn post_cancel(user: &str, order_id: &str, correlation: &str) -> u16 {
    http()
        .post(format!("{}/orders/{order_id}/cancel", api_url()))
        .bearer_auth(token(user, false))
        .header("x-correlation-id", correlation)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn approve(order_id: &str) -> u16 {
    http()
        .post(format!("{}/orders/{order_id}/review", api_url()))
        .bearer_auth(token(&fresh_admin_id(), true))
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The status of the latest execution of `machine` whose name starts with `prefix`.
async fn execution_status(machine: &str, prefix: &str) -> String {
    executions(machine, prefix)
        .await
        .pop()
        .map_or_else(|| "none".into(), |(_, _, status)| status)
}

/// Drives one cell's order to a final status and checks the accountant's invariants.
async fn run_cell(state: &State, sku: String, correlation: String) -> Outcome {
    let started = Instant::now();
    let user = fresh_user_id();
    // The order's own saga carries the cell's correlation id, except on the cancel path,
    // where only the cancellation does.
    let place_correlation = if state.path == Path::Cancel {
        format!("{correlation}-place")
    } else {
        correlation.clone()
    };
    let mut order_id = post_order(&user, &sku, &place_correlation).await;
    let mut placements = 1;
    let mut cancel_requests = 0;
    let finals: &[&str] = if state.path == Path::Cancel {
        &["CANCELLED", "REJECTED"]
    } else {
        &["CONFIRMED", "REJECTED"]
    };
    let mut last_cancel = Instant::now() - Duration::from_secs(3600);
    let machine = state.machine;
    let execution_prefix = |order_id: &str| {
        if machine == "cancel-order" {
            format!("cancel-{order_id}")
        } else {
            order_id.to_owned()
        }
    };
    let (status, reason) = loop {
        let o = order(&user, &order_id).await;
        let status = o["status"].as_str().unwrap().to_owned();
        let reason = o["status_reason"].as_str().map(str::to_owned);
        // The cancel path needs a confirmed order to cancel. Its placing carries no fault,
        // but on a busy machine the fraud check can outlast its timeout and the saga rejects
        // the order (TIMED_OUT) before any cancel was asked: the cell has not run yet, so
        // place another (the rejection gave the units back; the fault rule waits on the
        // cancellation's correlation id).
        if state.path == Path::Cancel
            && cancel_requests == 0
            && status == "REJECTED"
            && placements < PLACEMENTS
            && execution_status("place-order", &order_id).await != "RUNNING"
        {
            eprintln!(
                "{correlation}: order {order_id} was {status} {} before it could be cancelled; placing another",
                reason.as_deref().unwrap_or("")
            );
            order_id = post_order(&user, &sku, &place_correlation).await;
            placements += 1;
            continue;
        }
        // Final, and its saga done (past the capture an order is rejected before its
        // money and units are given back).
        if finals.contains(&status.as_str())
            && execution_status(machine, &execution_prefix(&order_id)).await != "RUNNING"
        {
            break (status, reason);
        }
        if started.elapsed() > MATRIX_WAIT {
            break (status, reason);
        }
        match (state.path, status.as_str()) {
            (Path::Review, "UNDER_REVIEW") => {
                // 409 while the hold is being retried with a new token: ask again.
                approve(&order_id).await;
            }
            (Path::Cancel, "CONFIRMED") => {
                assert_eq!(post_cancel(&user, &order_id, &correlation).await, 202);
                cancel_requests += 1;
                last_cancel = Instant::now();
            }
            // A cancellation that failed after its retries leaves the order CANCELLING;
            // asking again (as the customer or support would) starts one that finishes it.
            (Path::Cancel, "CANCELLING")
                if last_cancel.elapsed() > Duration::from_secs(20)
                    && execution_status("cancel-order", &format!("cancel-{order_id}")).await
                        != "RUNNING" =>
            {
                assert_eq!(post_cancel(&user, &order_id, &correlation).await, 202);
                cancel_requests += 1;
                last_cancel = Instant::now();
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let pay = payment(&user, &order_id).await;
    let pay_status = pay.as_ref().map_or("none".to_owned(), |p| {
        p["status"].as_str().unwrap().to_owned()
    });
    let stock = stock(&sku).await;
    let (on_hand, reserved, available) = (
        stock["on_hand"].as_i64().unwrap(),
        stock["reserved"].as_i64().unwrap(),
        stock["available"].as_i64().unwrap(),
    );
    let q = i64::from(QUANTITY);
    let mut violations = Vec::new();
    if reserved != 0 {
        violations.push(format!("{reserved} unit(s) left reserved"));
    }
    if available != on_hand - reserved {
        violations.push(format!("available {available} != on hand - reserved"));
    }
    match status.as_str() {
        "CONFIRMED" => {
            if pay_status != "CAPTURED" {
                violations.push(format!("CONFIRMED with payment {pay_status}"));
            }
            if on_hand != STOCK - q {
                violations.push(format!(
                    "CONFIRMED with {on_hand} on hand (units not committed once)"
                ));
            }
        }
        "REJECTED" => {
            if ["AUTHORIZED", "CAPTURED"].contains(&pay_status.as_str()) {
                violations.push(format!("REJECTED with money held ({pay_status})"));
            }
            if on_hand != STOCK {
                violations.push(format!("REJECTED with {on_hand} of {STOCK} on hand"));
            }
        }
        "CANCELLED" => {
            if pay_status != "REFUNDED" {
                violations.push(format!("CANCELLED with payment {pay_status}"));
            }
            if on_hand != STOCK {
                violations.push(format!("CANCELLED with {on_hand} of {STOCK} on hand"));
            }
        }
        other => violations.push(format!("left {other} past the bound")),
    }
    // The provider's books agree: no money held or kept for an order not confirmed.
    if let Some(why) = provider_disagrees(&status, provider_intent_of(&order_id).await.as_ref()) {
        violations.push(why);
    }
    let execution = execution_status(machine, &execution_prefix(&order_id)).await;
    Outcome {
        status,
        reason,
        payment: pay_status,
        stock,
        execution,
        cancel_requests,
        placements,
        seconds: started.elapsed().as_secs(),
        violations,
    }
}

/// What each cell must end in, besides the invariants: a fault the retries absorb leaves
/// the order as if nothing happened; one that reaches a `Catch` before the capture
/// rejects it; past the capture, a lost confirmation keeps the order confirmed.
fn expected_status(state: &State, kind: Kind) -> &'static str {
    let absorbed = matches!(
        kind,
        Kind::LostOnce | Kind::Timeout | Kind::CrashBeforeEffect
    );
    match state.path {
        Path::Cancel => "CANCELLED",
        Path::Deny | Path::AfterCapture => "REJECTED",
        Path::Confirm | Path::Review if absorbed => "CONFIRMED",
        // The confirm happened; RejectAfterCapture finds the order CONFIRMED and keeps it.
        _ if state.name == "ConfirmOrder" => "CONFIRMED",
        _ => "REJECTED",
    }
}

#[tokio::test]
async fn every_task_state_under_every_fault_ends_consistent() {
    let _exclusive = EXCLUSIVE.lock().await;
    // Products first (a deny needs a price the scorer denies, a review one it holds).
    let mut cells = Vec::new();
    let mut rules: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for state in STATES {
        for kind in KINDS {
            let price = match state.path {
                Path::Deny => "30000.00",
                Path::Review => "5000.00",
                _ => "20.00",
            };
            let sku = fresh_sku("MTX");
            create_product(&sku, price, "EUR", STOCK).await;
            let correlation = cell_id(state, kind);
            if state.path == Path::AfterCapture {
                rules
                    .entry("inventory-commit".into())
                    .or_default()
                    .push(Kind::ErrorAfterEffect.rule(&correlation, 0));
            }
            rules
                .entry(state.function.into())
                .or_default()
                .push(kind.rule(&correlation, state.max_attempts));
            cells.push((state, kind, sku, correlation));
        }
    }
    write_faults(&serde_json::to_string(&rules).unwrap());

    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(CELLS_AT_ONCE));
    let mut handles = Vec::new();
    for (state, kind, sku, correlation) in cells {
        let slots = slots.clone();
        let id = correlation.clone();
        handles.push((
            state,
            kind,
            correlation,
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
                run_cell(state, sku, id).await
            }),
        ));
    }
    let mut results = Vec::new();
    for (state, kind, correlation, handle) in handles {
        results.push((state, kind, correlation, handle.await.unwrap()));
    }

    // Which rules were not taken: a cell whose fault never struck tested nothing.
    let left: BTreeMap<String, Vec<Value>> =
        serde_json::from_str(&std::fs::read_to_string(faults_path()).unwrap()).unwrap();
    let untaken: Vec<String> = left
        .values()
        .flatten()
        .filter(|r| r["times"].as_u64() != Some(0))
        .map(|r| r["correlation_id"].as_str().unwrap().to_owned())
        .collect();
    write_faults("{}");

    let mut table = vec![
        format!(
            "saga fault matrix: final status / payment / on hand of {STOCK} / execution (seconds from placing)"
        ),
        format!(
            "| state | {} |",
            KINDS
                .iter()
                .map(|k| k.label())
                .collect::<Vec<_>>()
                .join(" | ")
        ),
        format!("|---|{}", "---|".repeat(KINDS.len())),
    ];
    let mut failures = Vec::new();
    for state in STATES {
        let mut row = format!("| {} `{}` |", state.machine, state.name);
        for kind in KINDS {
            let (_, _, correlation, o) = results
                .iter()
                .find(|(s, k, _, _)| {
                    s.name == state.name && s.machine == state.machine && *k == kind
                })
                .unwrap();
            let status = match &o.reason {
                Some(r) => format!("{} {r}", o.status),
                None => o.status.clone(),
            };
            let mut cell = format!(
                " {status} / {} / {} / {} ({}s)",
                o.payment, o.stock["on_hand"], o.execution, o.seconds
            );
            if o.cancel_requests > 1 {
                cell.push_str(&format!(", cancel asked {}x", o.cancel_requests));
            }
            if o.placements > 1 {
                cell.push_str(&format!(", placed {}x", o.placements));
            }
            let expected = expected_status(state, kind);
            let mut problems = o.violations.clone();
            if o.status != expected {
                problems.push(format!("expected {expected}"));
            }
            if untaken.contains(correlation) {
                problems.push("the fault never struck".into());
            }
            if !problems.is_empty() {
                cell.push_str(&format!(" **{}**", problems.join("; ")));
                failures.push(format!(
                    "{} {} / {}: {}",
                    state.machine,
                    state.name,
                    kind.label(),
                    problems.join("; ")
                ));
            }
            row.push_str(&cell);
            row.push_str(" |");
        }
        table.push(row);
    }
    // Printed, and kept where `make test` shows it after the tests (their output is
    // captured when they pass).
    let table = table.join("\n");
    println!("\n{table}");
    std::fs::write(target_dir().join("saga-matrix.md"), format!("{table}\n")).unwrap();
    assert!(
        failures.is_empty(),
        "cells that broke an invariant:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_hundred_orders_racing_for_a_hot_sku_never_oversell_nor_time_out() {
    let _exclusive = EXCLUSIVE.lock().await;
    const ORDERS: usize = 100;
    const UNITS: i64 = 60;
    let sku = fresh_sku("HOT");
    create_product(&sku, "12.00", "EUR", UNITS).await;
    let mut handles = Vec::new();
    for _ in 0..ORDERS {
        let sku = sku.clone();
        handles.push(tokio::spawn(async move {
            let user = fresh_user_id();
            let id = place_for(&user, &sku, 1, "tok_visa").await;
            (user, id)
        }));
    }
    let mut placed = Vec::new();
    for h in handles {
        placed.push(h.await.unwrap());
    }
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (user, id) in &placed {
        let o = loop {
            let o = order(user, id).await;
            let s = o["status"].as_str().unwrap();
            if ["CONFIRMED", "REJECTED"].contains(&s) || started.elapsed() > MATRIX_WAIT {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let key = match o["status_reason"].as_str() {
            Some(reason) => format!("{} {reason}", o["status"].as_str().unwrap()),
            None => o["status"].as_str().unwrap().to_owned(),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let s = stock(&sku).await;
    println!(
        "\nhot SKU race: {ORDERS} orders for {UNITS} units: {outcomes:?}; stock {s}; all final after {}s",
        started.elapsed().as_secs()
    );
    let confirmed = outcomes.get("CONFIRMED").copied().unwrap_or(0);
    let out_of_stock = outcomes.get("REJECTED OUT_OF_STOCK").copied().unwrap_or(0);
    assert_eq!(
        confirmed + out_of_stock,
        ORDERS,
        "every order confirmed or rejected out of stock, none timed out or left open: {outcomes:?}"
    );
    assert_eq!(
        confirmed as i64, UNITS,
        "every unit sold once, none oversold: {outcomes:?}"
    );
    assert_eq!(s, json!({"on_hand": 0, "reserved": 0, "available": 0}));
}

#[tokio::test]
async fn a_failed_execution_is_finished_by_commerce_ops_compensate() {
    let _exclusive = EXCLUSIVE.lock().await;
    // A denied order whose rejection crashes on every attempt: the payment is voided and
    // the stock released, but the order stays PENDING and the execution fails.
    let sku = fresh_sku("STUCK");
    create_product(&sku, "30000.00", "EUR", STOCK).await;
    let correlation = format!("stuck-{}", ulid::Ulid::new());
    write_faults(
        &json!({"orders-reject": [{"kind": "crash", "times": 7, "correlation_id": correlation}]})
            .to_string(),
    );
    let user = fresh_user_id();
    let order_id = post_order(&user, &sku, &correlation).await;
    let started = Instant::now();
    while execution_status("place-order", &order_id).await != "FAILED" {
        assert!(
            started.elapsed() < MATRIX_WAIT,
            "the execution of {order_id} did not fail: {}",
            execution_status("place-order", &order_id).await
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    write_faults("{}");
    assert_eq!(order(&user, &order_id).await["status"], "PENDING");
    assert_eq!(payment(&user, &order_id).await.unwrap()["status"], "VOIDED");
    assert_eq!(stock(&sku).await["on_hand"], STOCK);

    // The documented recovery.
    let (ok, text) = commerce_ops(&[
        "compensate",
        "--order",
        &order_id,
        "--timeout-seconds",
        "300",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("PENDING -> execution"), "{text}");
    assert!(text.contains("SUCCEEDED -> REJECTED"), "{text}");
    let o = order(&user, &order_id).await;
    assert_eq!(
        (o["status"].as_str(), o["status_reason"].as_str()),
        (Some("REJECTED"), Some("TIMED_OUT"))
    );
    assert_eq!(payment(&user, &order_id).await.unwrap()["status"], "VOIDED");
    assert_eq!(
        stock(&sku).await,
        json!({"on_hand": STOCK, "reserved": 0, "available": STOCK})
    );
    // Once more: nothing left to compensate changes nothing.
    let (ok, text) = commerce_ops(&["compensate", "--order", &order_id]);
    assert!(ok, "{text}");
    assert!(
        text.contains("REJECTED -> REJECTED") || text.contains("-> REJECTED"),
        "{text}"
    );
    assert_eq!(payment(&user, &order_id).await.unwrap()["status"], "VOIDED");
}

/// A fault of the payment provider (local/payment_provider.py), as the adapter meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProviderFault {
    TimeoutBefore,
    TimeoutAfter,
    ServerError,
    RateLimited,
    Dropped,
}

const PROVIDER_FAULTS: [ProviderFault; 5] = [
    ProviderFault::TimeoutBefore,
    ProviderFault::TimeoutAfter,
    ProviderFault::ServerError,
    ProviderFault::RateLimited,
    ProviderFault::Dropped,
];

impl ProviderFault {
    fn kind(self) -> &'static str {
        match self {
            ProviderFault::TimeoutBefore => "timeout_before",
            ProviderFault::TimeoutAfter => "timeout_after",
            ProviderFault::ServerError => "server_error",
            ProviderFault::RateLimited => "rate_limited",
            ProviderFault::Dropped => "dropped",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ProviderFault::TimeoutBefore => "timeout before the effect",
            ProviderFault::TimeoutAfter => "timeout after the effect",
            ProviderFault::ServerError => "500",
            ProviderFault::RateLimited => "429",
            ProviderFault::Dropped => "connection dropped",
        }
    }
}

/// A provider operation under fault, the path that reaches it, how many times the fault
/// strikes (`None`: every time, past every retry), and what the order must end in.
struct ProviderRow {
    operation: &'static str,
    path: Path,
    times: Option<u32>,
    /// The final status (and reasons accepted) for each fault.
    expected: fn(ProviderFault) -> (&'static str, &'static [&'static str]),
}

const PROVIDER_ROWS: &[ProviderRow] = &[
    // The hold: never answered, the saga gives up and the void lets go of whatever the
    // provider did; a rate limit is the provider refusing to work: rejected at once. An
    // instance whose breaker the failures opened answers PAYMENT_UNAVAILABLE too.
    ProviderRow {
        operation: "authorize",
        path: Path::Confirm,
        times: None,
        expected: |f| match f {
            ProviderFault::RateLimited => ("REJECTED", &["PAYMENT_UNAVAILABLE"]),
            _ => ("REJECTED", &["TIMED_OUT", "PAYMENT_UNAVAILABLE"]),
        },
    },
    // The capture: never answered, the order is rejected and the money given back (voided,
    // or refunded where the capture happened unheard).
    ProviderRow {
        operation: "capture",
        path: Path::Confirm,
        times: None,
        expected: |_| ("REJECTED", &["TIMED_OUT"]),
    },
    // The void of a denied order: failing twice, it is retried until the hold is let go.
    ProviderRow {
        operation: "void",
        path: Path::Deny,
        times: Some(2),
        expected: |_| ("REJECTED", &["FRAUD_SUSPECTED"]),
    },
];

/// Waits out the circuit breaker's pause (breaker.rs, `Policy::default`, 30 s) so that the
/// next call of every instance whose breaker the faults opened is a probe, which succeeds.
async fn let_the_breakers_close() {
    tokio::time::sleep(Duration::from_secs(35)).await;
}

/// The payment provider's faults against the accountant's invariants, checked at the
/// provider itself: each cell is one order with a total no other order has (the faults match
/// the provider's requests by amount: the order's id is not known before its saga may reach
/// the provider); the order must end as expected with its stock, its payment and the
/// provider's intent agreeing. The test prints the matrix.
#[tokio::test]
async fn every_provider_fault_ends_consistent_at_the_provider() {
    let _exclusive = EXCLUSIVE.lock().await;
    let mut table = vec![
        format!(
            "payment provider fault matrix: final status / payment / on hand of {STOCK} (seconds from placing)"
        ),
        format!(
            "| operation | {} |",
            PROVIDER_FAULTS
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(" | ")
        ),
        format!("|---|{}", "---|".repeat(PROVIDER_FAULTS.len())),
    ];
    let mut failures = Vec::new();
    // A row at a time: the failures of one row may open the breaker of the instances that
    // met them (as they should), which the next row waits out.
    for (r, row) in PROVIDER_ROWS.iter().enumerate() {
        let state = STATES
            .iter()
            .find(|s| s.path == row.path)
            .expect("a state on the row's path");
        let mut handles = Vec::new();
        for (f, fault) in PROVIDER_FAULTS.iter().enumerate() {
            // A total per cell: 20.xx for a good order, 30000.xx for one the scorer denies.
            let cents = 11 + r * 10 + f;
            let price = match row.path {
                Path::Deny => format!("30000.{cents:02}"),
                _ => format!("20.{cents:02}"),
            };
            let minor: i64 = price.replace('.', "").parse().unwrap();
            let sku = fresh_sku("PMX");
            create_product(&sku, &price, "EUR", STOCK).await;
            let name = format!(
                "provider-matrix-{}-{}-{}",
                row.operation,
                fault.kind(),
                ulid::Ulid::new()
            );
            write_provider_faults(
                &name,
                &json!([{"operation": row.operation, "amount": minor, "kind": fault.kind(), "times": row.times.unwrap_or(1000)}]),
            );
            let correlation = name.clone();
            handles.push((
                *fault,
                name,
                tokio::spawn(async move { run_cell(state, sku, correlation).await }),
            ));
        }
        let mut line = format!("| `{}` |", row.operation);
        for (fault, name, handle) in handles {
            let o = handle.await.unwrap();
            let dir = std::env::var("LOCAL_PROVIDER_FAULTS_DIR").unwrap();
            let path = std::path::Path::new(&dir).join(format!("{name}.json"));
            let left: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let struck =
                left["rules"][0]["times"].as_u64() != Some(u64::from(row.times.unwrap_or(1000)));
            std::fs::remove_file(&path).unwrap();
            let (status, reasons) = (row.expected)(fault);
            let mut problems = o.violations.clone();
            if o.status != status || !reasons.contains(&o.reason.as_deref().unwrap_or("")) {
                problems.push(format!("expected {status} {reasons:?}"));
            }
            // An authorize that met an open breaker never reached the provider.
            if !struck && o.reason.as_deref() != Some("PAYMENT_UNAVAILABLE") {
                problems.push("the fault never struck".into());
            }
            let mut cell = format!(
                " {} {} / {} / {} ({}s)",
                o.status,
                o.reason.as_deref().unwrap_or(""),
                o.payment,
                o.stock["on_hand"],
                o.seconds
            );
            if !problems.is_empty() {
                cell.push_str(&format!(" **{}**", problems.join("; ")));
                failures.push(format!(
                    "{} / {}: {}",
                    row.operation,
                    fault.label(),
                    problems.join("; ")
                ));
            }
            line.push_str(&format!("{cell} |"));
        }
        table.push(line);
        let_the_breakers_close().await;
    }
    let table = table.join("\n");
    println!("\n{table}");
    std::fs::write(
        target_dir().join("provider-matrix.md"),
        format!("{table}\n"),
    )
    .unwrap();
    assert!(
        failures.is_empty(),
        "cells that broke an invariant:\n{}",
        failures.join("\n")
    );
}

/// The circuit breaker: a provider that rate-limits every call opens the breaker of the
/// instances that meet it, orders are then rejected PAYMENT_UNAVAILABLE without a call to
/// the provider, nothing is held for any of them; once the provider is back and the pause
/// is over, an order is confirmed again.
#[tokio::test]
async fn an_open_breaker_rejects_orders_without_calling_the_provider_then_closes() {
    let _exclusive = EXCLUSIVE.lock().await;
    const ORDERS: u32 = 48;
    const RULE: u64 = 100_000;
    let sku = fresh_sku("BRK");
    create_product(&sku, "20.99", "EUR", i64::from(ORDERS) + 5).await;
    let name = format!("breaker-{}", ulid::Ulid::new());
    // Every call for this total is refused, from the intent on.
    write_provider_faults(
        &name,
        &json!([{"amount": 2099, "kind": "rate_limited", "times": RULE}]),
    );
    let mut placed = Vec::new();
    for _ in 0..ORDERS {
        let user = fresh_user_id();
        let id = place_for(&user, &sku, 1, "tok_visa").await;
        placed.push((user, id));
    }
    let mut reasons: BTreeMap<String, u32> = BTreeMap::new();
    for (user, id) in &placed {
        let o = wait_for(user, id, &["CONFIRMED", "REJECTED"]).await;
        let key = format!(
            "{} {}",
            o["status"].as_str().unwrap(),
            o["status_reason"].as_str().unwrap_or("")
        );
        *reasons.entry(key).or_default() += 1;
        if let Some(why) = provider_disagrees(
            o["status"].as_str().unwrap(),
            provider_intent_of(id).await.as_ref(),
        ) {
            panic!("order {id}: {why}");
        }
    }
    let dir = std::env::var("LOCAL_PROVIDER_FAULTS_DIR").unwrap();
    let path = std::path::Path::new(&dir).join(format!("{name}.json"));
    let left: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    let calls = RULE - left["rules"][0]["times"].as_u64().unwrap();
    println!(
        "\nbreaker: {ORDERS} orders against a provider refusing every call: {reasons:?}; {calls} calls reached it"
    );
    assert_eq!(
        reasons.get("REJECTED PAYMENT_UNAVAILABLE").copied(),
        Some(ORDERS),
        "every order rejected cleanly: {reasons:?}"
    );
    assert!(
        calls < u64::from(ORDERS),
        "the breaker opened: fewer calls reached the provider ({calls}) than orders were rejected ({ORDERS})"
    );
    // The provider is back: after the pause, the next call of each instance is a probe.
    let_the_breakers_close().await;
    let user = fresh_user_id();
    let id = place_for(&user, &sku, 1, "tok_visa").await;
    let o = wait_for(&user, &id, &["CONFIRMED", "REJECTED"]).await;
    assert_eq!(o["status"], "CONFIRMED", "the breaker closed again: {o}");
}
