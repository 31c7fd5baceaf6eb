//! The binary every deployed function runs: each function's `main`, compiled in unchanged
//! from `functions/<service>/src/bin/<function>.rs`, chosen at cold start by Lambda's
//! `_HANDLER`, which Terraform sets to the function's name (infra/modules/regional/functions.tf).
//!
//! Why one binary: the release profile links with fat LTO and one codegen unit, which is what
//! makes a cold start cheap, and on two cores that link is most of a build. Linking it once
//! instead of once per function takes a cold `make build` from 31 minutes to 7 (docs/decisions.md,
//! "One binary for every function"). Locally nothing changes: cargo lambda watch runs each
//! function's own binary, built from the same `main`.
//!
//! Each function's `main` is `pub` so that this crate can call it; nothing else does.

use std::process::ExitCode;

#[path = "../../analytics/src/bin/analytics-get-sales.rs"]
mod analytics_get_sales;
#[path = "../../analytics/src/bin/analytics-project-sales.rs"]
mod analytics_project_sales;
#[path = "../../fraud/src/bin/fraud-get-risk.rs"]
mod fraud_get_risk;
#[path = "../../fraud/src/bin/fraud-score.rs"]
mod fraud_score;
#[path = "../../health/src/bin/health-check.rs"]
mod health_check;
#[path = "../../inventory/src/bin/inventory-adjust-stock.rs"]
mod inventory_adjust_stock;
#[path = "../../inventory/src/bin/inventory-commit.rs"]
mod inventory_commit;
#[path = "../../inventory/src/bin/inventory-get-product.rs"]
mod inventory_get_product;
#[path = "../../inventory/src/bin/inventory-list-products.rs"]
mod inventory_list_products;
#[path = "../../inventory/src/bin/inventory-put-product.rs"]
mod inventory_put_product;
#[path = "../../inventory/src/bin/inventory-release.rs"]
mod inventory_release;
#[path = "../../inventory/src/bin/inventory-reserve.rs"]
mod inventory_reserve;
#[path = "../../inventory/src/bin/inventory-restock.rs"]
mod inventory_restock;
#[path = "../../notifications/src/bin/notifications-send.rs"]
mod notifications_send;
#[path = "../../orders/src/bin/orders-cancel.rs"]
mod orders_cancel;
#[path = "../../orders/src/bin/orders-confirm.rs"]
mod orders_confirm;
#[path = "../../orders/src/bin/orders-create.rs"]
mod orders_create;
#[path = "../../orders/src/bin/orders-finish-cancel.rs"]
mod orders_finish_cancel;
#[path = "../../orders/src/bin/orders-get.rs"]
mod orders_get;
#[path = "../../orders/src/bin/orders-hold-for-review.rs"]
mod orders_hold_for_review;
#[path = "../../orders/src/bin/orders-list.rs"]
mod orders_list;
#[path = "../../orders/src/bin/orders-reject.rs"]
mod orders_reject;
#[path = "../../orders/src/bin/orders-review.rs"]
mod orders_review;
#[path = "../../orders/src/bin/orders-start-saga.rs"]
mod orders_start_saga;
#[path = "../../outbox/src/bin/outbox-relay.rs"]
mod outbox_relay;
#[path = "../../payments/src/bin/payments-authorize.rs"]
mod payments_authorize;
#[path = "../../payments/src/bin/payments-capture.rs"]
mod payments_capture;
#[path = "../../payments/src/bin/payments-get.rs"]
mod payments_get;
#[path = "../../payments/src/bin/payments-refund.rs"]
mod payments_refund;
#[path = "../../payments/src/bin/payments-request-fraud-check.rs"]
mod payments_request_fraud_check;
#[path = "../../payments/src/bin/payments-void.rs"]
mod payments_void;
#[path = "../../users/src/bin/users-create.rs"]
mod users_create;
#[path = "../../users/src/bin/users-delete.rs"]
mod users_delete;
#[path = "../../users/src/bin/users-get.rs"]
mod users_get;
#[path = "../../users/src/bin/users-update.rs"]
mod users_update;

/// A function's `main`: `#[tokio::main]` makes it a blocking function that builds its own
/// runtime, as the function's own binary would.
type Main = fn() -> Result<(), lambda_runtime::Error>;

/// Every function, by the name the declaration gives it (infra/declaration.json).
pub const FUNCTIONS: [(&str, Main); 35] = [
    ("analytics-get-sales", analytics_get_sales::main),
    ("analytics-project-sales", analytics_project_sales::main),
    ("fraud-get-risk", fraud_get_risk::main),
    ("fraud-score", fraud_score::main),
    ("health-check", health_check::main),
    ("inventory-adjust-stock", inventory_adjust_stock::main),
    ("inventory-commit", inventory_commit::main),
    ("inventory-get-product", inventory_get_product::main),
    ("inventory-list-products", inventory_list_products::main),
    ("inventory-put-product", inventory_put_product::main),
    ("inventory-release", inventory_release::main),
    ("inventory-reserve", inventory_reserve::main),
    ("inventory-restock", inventory_restock::main),
    ("notifications-send", notifications_send::main),
    ("orders-cancel", orders_cancel::main),
    ("orders-confirm", orders_confirm::main),
    ("orders-create", orders_create::main),
    ("orders-finish-cancel", orders_finish_cancel::main),
    ("orders-get", orders_get::main),
    ("orders-hold-for-review", orders_hold_for_review::main),
    ("orders-list", orders_list::main),
    ("orders-reject", orders_reject::main),
    ("orders-review", orders_review::main),
    ("orders-start-saga", orders_start_saga::main),
    ("outbox-relay", outbox_relay::main),
    ("payments-authorize", payments_authorize::main),
    ("payments-capture", payments_capture::main),
    ("payments-get", payments_get::main),
    ("payments-refund", payments_refund::main),
    (
        "payments-request-fraud-check",
        payments_request_fraud_check::main,
    ),
    ("payments-void", payments_void::main),
    ("users-create", users_create::main),
    ("users-delete", users_delete::main),
    ("users-get", users_get::main),
    ("users-update", users_update::main),
];

/// The function named `handler`, if this binary has it.
fn lookup(handler: &str) -> Option<Main> {
    FUNCTIONS
        .iter()
        .find(|(name, _)| *name == handler)
        .map(|(_, main)| *main)
}

fn main() -> ExitCode {
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    let Some(main) = lookup(&handler) else {
        // Lambda reports this as the init's error (Runtime.ExitError) with these lines.
        let known: Vec<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
        eprintln!("bootstrap: _HANDLER is {handler:?}, not a function of this binary: {known:?}");
        return ExitCode::from(2);
    };
    match main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bootstrap: {handler}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FUNCTIONS, lookup};
    use std::collections::BTreeSet;

    #[test]
    fn every_declared_function_is_in_the_binary_once() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/declaration.json");
        let text = std::fs::read_to_string(path).unwrap();
        let declaration: serde_json::Value = serde_json::from_str(&text).unwrap();
        let declared: BTreeSet<&str> = declaration["functions"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let here: Vec<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
        let distinct: BTreeSet<&str> = here.iter().copied().collect();
        assert_eq!(distinct.len(), here.len(), "a function twice: {here:?}");
        assert_eq!(distinct, declared);
    }

    #[test]
    fn a_handler_names_one_function_exactly() {
        assert!(lookup("orders-create").is_some());
        assert!(lookup("bootstrap").is_none());
        assert!(lookup("").is_none());
        assert!(lookup("commerce-orders-create").is_none());
    }
}
