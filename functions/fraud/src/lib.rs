//! The fraud service: real-time scoring of the place-order saga's transactions, and
//! `GET /orders/{order_id}/risk`.
//!
//! The saga's payment step puts a transaction record ([`shared::transactions`]: order,
//! customer, amount, units, shipping and profile country, account age, payment
//! fingerprint, client address, task token) on the Kinesis stream `transactions`,
//! partitioned by user id, and waits on the token. `fraud-score` reads the stream in
//! batches ([`batch`]), scores each order once against its user's state, stores the
//! assessment with its `FraudAssessed` event and the user's new state, and answers the
//! token: `SendTaskSuccess` with `{"decision", "score", "order_id"}` for approve and
//! review, `SendTaskFailure` with error `FraudDenied` for deny.
//!
//! # Scoring (`logit-v2`)
//!
//! - [`features`]: per user, the last 24 hours of transactions (at most 32) and running
//!   statistics of amounts: counts and euro sums over 1 minute, 1 hour and 24 hours, the
//!   amount's z-score, distinct payment fingerprints and shipping countries in 24 hours,
//!   seconds since the previous transaction, account age, shipping abroad, first
//!   transaction.
//! - [`rates`]: amounts in euros from a versioned table (`model/rates.json`), never in raw
//!   major units.
//! - [`model`]: a logistic model over 14 monotone inputs with non-negative weights
//!   (`model/model.json`), mapped to 0..=1000, with thresholds for review and deny and the
//!   top three reasons. [`scoring`] puts the three together for one record.
//! - [`eval`] and `make fraud-eval`: labelled traffic, the fit, and the measured recall and
//!   false-positive rate (docs/benchmarks/fraud-eval.md).
//!
//! # Exactly one assessment per order
//!
//! A user's state remembers the orders it counted, and is written only if its version is
//! still the one read, in the same transaction as the order's assessment (written only if
//! the order has none) and its event. A redelivered or replayed record is recognised and
//! answered again from the stored assessment; two consumers scoring the same user at once
//! cannot both write, and the loser reads again ([`batch`]).

pub mod answer;
pub mod batch;
pub mod dead_letters;
pub mod domain;
pub mod eval;
pub mod features;
pub mod model;
pub mod rates;
pub mod scoring;
pub mod store;

/// `GET /orders/{order_id}/risk`: administrators only.
pub mod api {
    use crate::domain::AssessmentView;
    use crate::store::FraudStore;
    use http::StatusCode;
    use lambda_http::{Body, Request, RequestExt, Response};
    use shared::ApiError;
    use shared::identity::Caller;

    /// The fraud assessment of an order: 403 for a non-admin, 404 when there is none.
    pub async fn get_risk(store: &FraudStore, req: Request) -> Result<Response<Body>, ApiError> {
        let caller = Caller::from_context(req.request_context_ref())?;
        caller.require_admin()?;
        let order_id = shared::http::path_param(&req, "order_id")?;
        let not_found = || ApiError::NotFound(format!("No fraud assessment for order {order_id}"));
        if ulid::Ulid::from_string(&order_id).is_err() {
            return Err(not_found());
        }
        let assessment = store.assessment(&order_id).await?.ok_or_else(not_found)?;
        shared::http::json(StatusCode::OK, &AssessmentView::from(&assessment))
    }
}
