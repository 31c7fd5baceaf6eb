//! `compensate`: finishes an order whose saga execution failed for good (README: Failed
//! executions). It starts the compensating execution the order's status calls for
//! (`place-order`'s compensations give back whatever money and stock it holds and reject
//! it unless it is confirmed; `cancel-order` finishes an order left `CANCELLING`) and
//! follows it. Every step is idempotent, so running it on an order that holds nothing
//! changes nothing; a saga still running is not the operator's to end without `--force`.

use crate::cli::{Error, fail};
use aws_sdk_sfn::types::ExecutionStatus;
use orders::domain::OrderStatus;
use shared::ids::OrderId;
use std::fmt::Write as _;
use std::time::Duration;

/// What `compensate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompensateReport {
    /// The order.
    pub order_id: OrderId,
    /// Its status before.
    pub before: String,
    /// The execution started (name) and how it ended, if one was needed.
    pub execution: Option<(String, ExecutionStatus)>,
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
pub fn compensation_for(status: OrderStatus) -> Option<&'static str> {
    match status {
        OrderStatus::Pending | OrderStatus::UnderReview | OrderStatus::Rejected => {
            Some("place-order")
        }
        OrderStatus::Cancelling => Some("cancel-order"),
        OrderStatus::Confirmed | OrderStatus::Cancelled => None,
    }
}

/// An order's `status` attribute as the orders service's [`OrderStatus`] (its serde form,
/// `PENDING`, `UNDER_REVIEW`, ...); `None` for a value that is none of them, which has no
/// compensation either.
fn typed_status(status: &str) -> Option<OrderStatus> {
    serde_json::from_value(serde_json::Value::from(status)).ok()
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
pub fn may_compensate(saga_status: Option<&ExecutionStatus>) -> Result<(), String> {
    match saga_status {
        Some(ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted) => {
            Ok(())
        }
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
    order_id: &OrderId,
    timeout: Duration,
    force: bool,
) -> Result<CompensateReport, Error> {
    let table = format!("{prefix}-orders");
    let (before, payer) = order_item(ddb, &table, order_id).await?;
    let Some(machine) = typed_status(&before).and_then(compensation_for) else {
        return Ok(CompensateReport {
            order_id: order_id.clone(),
            after: before.clone(),
            before,
            execution: None,
        });
    };
    let arn = state_machine_arn(sfn, &format!("{prefix}-{machine}")).await?;
    if machine == "place-order" && !force {
        let saga = shared::aws::execution_arn(&arn, order_id);
        let status = match sfn.describe_execution().execution_arn(saga).send().await {
            Ok(d) => Some(d.status().clone()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        may_compensate(status.as_ref())
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
        if *d.status() != ExecutionStatus::Running || std::time::Instant::now() > deadline {
            break d.status().clone();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(CompensateReport {
        order_id: order_id.clone(),
        before,
        execution: Some((name, status)),
        after: order_status(ddb, &table, order_id).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_saga_that_ended_unfinished_is_compensated_without_force() {
        for s in ["FAILED", "TIMED_OUT", "ABORTED"] {
            assert!(
                may_compensate(Some(&ExecutionStatus::from(s))).is_ok(),
                "{s}"
            );
        }
        for s in ["RUNNING", "SUCCEEDED", "PENDING_REDRIVE", "SOMETHING_NEW"] {
            let why = may_compensate(Some(&ExecutionStatus::from(s))).unwrap_err();
            assert!(why.contains(&format!("execution is {s};")), "{why}");
        }
        assert!(may_compensate(None).is_err());
    }

    #[test]
    fn each_unfinished_status_has_its_compensation() {
        use OrderStatus::*;
        for s in [Pending, UnderReview, Rejected] {
            assert_eq!(compensation_for(s), Some("place-order"), "{s:?}");
        }
        assert_eq!(compensation_for(Cancelling), Some("cancel-order"));
        for s in [Confirmed, Cancelled] {
            assert_eq!(compensation_for(s), None, "{s:?}");
        }
    }

    #[test]
    fn a_stored_status_is_read_as_the_orders_service_writes_it() {
        for (stored, status) in [
            ("PENDING", OrderStatus::Pending),
            ("UNDER_REVIEW", OrderStatus::UnderReview),
            ("CONFIRMED", OrderStatus::Confirmed),
            ("REJECTED", OrderStatus::Rejected),
            ("CANCELLING", OrderStatus::Cancelling),
            ("CANCELLED", OrderStatus::Cancelled),
        ] {
            assert_eq!(typed_status(stored), Some(status), "{stored}");
        }
        // Not a status: nothing to compensate, as before.
        for stored in ["", "pending", "Pending", "SHIPPED"] {
            assert_eq!(typed_status(stored), None, "{stored}");
        }
    }

    #[test]
    fn the_report_names_the_execution_and_how_it_ended() {
        let report = CompensateReport {
            order_id: "01JDZ0000000000000000000AB".parse().unwrap(),
            before: "PENDING".into(),
            execution: Some(("o1-compensate-x".into(), ExecutionStatus::Succeeded)),
            after: "REJECTED".into(),
        };
        assert_eq!(
            report.render(),
            "compensate 01JDZ0000000000000000000AB: PENDING -> execution o1-compensate-x SUCCEEDED -> REJECTED"
        );
        let nothing = CompensateReport {
            execution: None,
            after: "CONFIRMED".into(),
            before: "CONFIRMED".into(),
            ..report
        };
        assert_eq!(
            nothing.render(),
            "compensate 01JDZ0000000000000000000AB: CONFIRMED: nothing to compensate"
        );
    }
}
