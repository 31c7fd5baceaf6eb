//! One record scored against its user's state: the amount in euros ([`crate::rates`]), the
//! features ([`crate::features`]), the score and reasons ([`crate::model`]), and the state
//! updated with the record. No I/O: the batch path ([`crate::batch`]) reads and writes the
//! states around it.

use crate::domain::Assessment;
use crate::features::{Txn, UserState};
use crate::model::Model;
use crate::rates::Rates;
use shared::events::FraudDecision;
use shared::time::Timestamp;
use shared::transactions::TransactionRecord;

/// The reason given when an order's currency has no rate: it is held for review, since
/// its amount cannot be compared with anything.
pub const NO_RATE_REASON: &str = "no_rate_for_currency";

/// The model and the rates table of this release.
#[derive(Debug, Clone, Copy)]
pub struct Scorer {
    /// The model (`functions/fraud/model/model.json`).
    pub model: &'static Model,
    /// The rates (`functions/fraud/model/rates.json`).
    pub rates: &'static Rates,
}

impl Scorer {
    /// The model and rates compiled into this release; fails with the file's problem.
    pub fn compiled() -> Result<Self, String> {
        Ok(Self {
            model: crate::model::compiled()?,
            rates: crate::rates::compiled()?,
        })
    }

    /// The version an assessment names: the model's and the rates table's.
    pub fn version(&self) -> String {
        format!("{}/{}", self.model.version, self.rates.version)
    }

    /// Scores `record` against `state` and counts it into `state` (the caller has checked
    /// that the state has not counted this order yet). An order in a currency without a
    /// rate is held for review and remembered without its amount, which means nothing next
    /// to the others.
    pub fn assess(
        &self,
        state: &mut UserState,
        record: &TransactionRecord,
        now: Timestamp,
    ) -> Assessment {
        let base = |score, decision, reasons: Vec<String>, features| Assessment {
            order_id: record.order_id.clone(),
            user_id: record.user_id.clone(),
            score,
            decision,
            reasons,
            model_version: self.version(),
            features,
            assessed_at: now,
        };
        let rate = self.rates.to_reference(&record.amount);
        let txn = Txn {
            order_id: record.order_id.as_str(),
            at_ms: record.requested_at.timestamp_millis(),
            eur: rate.as_ref().copied().unwrap_or(0.0),
            fingerprint: &record.payment_fingerprint,
            ship_country: record.shipping_country.as_str(),
            profile_country: record.profile_country.as_ref().map(|c| c.as_str()),
            account_created_ms: record.account_created_at.map(|t| t.timestamp_millis()),
        };
        let features = state.features(&txn);
        if rate.is_err() {
            state.remember(&txn);
            return base(
                self.model.review_from,
                FraudDecision::Review,
                vec![NO_RATE_REASON.to_owned()],
                features,
            );
        }
        let scored = self.model.score(&features);
        state.count(&txn);
        base(
            scored.score,
            scored.decision,
            scored.reasons.iter().map(|r| (*r).to_owned()).collect(),
            features,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(order: &str, amount: &str, currency: &str, at: &str) -> TransactionRecord {
        serde_json::from_value(serde_json::json!({
            "order_id": order, "user_id": "u-1",
            "amount": {"amount": amount, "currency": currency}, "item_count": 1,
            "shipping_country": "DE", "profile_country": "DE",
            "account_created_at": "2024-01-01T00:00:00Z", "source_ip": null,
            "payment_fingerprint": shared::transactions::fingerprint("tok"),
            "task_token": "t", "requested_at": at
        }))
        .unwrap()
    }

    #[test]
    fn a_record_is_scored_then_counted() {
        let scorer = Scorer::compiled().unwrap();
        let mut state = UserState::default();
        let r = record(
            "01JDZ8F3Q4K5M6N7P8R9S0T1V2",
            "40.00",
            "EUR",
            "2026-11-21T19:30:00Z",
        );
        let a = scorer.assess(&mut state, &r, shared::time::now());
        assert_eq!(a.model_version, "logit-v2/rates-2025-01");
        assert_eq!(a.decision, FraudDecision::Approve);
        assert!(a.features.first);
        assert_eq!(a.features.count_1h, 1);
        assert!(state.has_seen(r.order_id.as_str()));
        let next = record(
            "01JDZ8F3Q4K5M6N7P8R9S0T1V3",
            "40.00",
            "EUR",
            "2026-11-21T19:31:00Z",
        );
        let b = scorer.assess(&mut state, &next, shared::time::now());
        assert_eq!(b.features.count_1h, 2);
        assert!(!b.features.first);
    }

    #[test]
    fn the_same_value_in_another_currency_scores_the_same() {
        // 5,000 euros in euros, in yen (no minor unit: 810000) and in Kuwaiti dinars (three:
        // 1600.000), whose major units differ by a factor of 500.
        let scorer = Scorer::compiled().unwrap();
        let euros_per = |currency: &str| {
            scorer
                .rates
                .to_reference(&shared::money::Money::parse("1", currency).unwrap())
                .unwrap()
        };
        let jpy = format!("{:.0}", 5000.0 / euros_per("JPY"));
        let kwd = format!("{:.3}", 5000.0 / euros_per("KWD"));
        let at = "2026-11-21T19:30:00Z";
        let score = |amount: &str, currency: &str| {
            scorer.assess(
                &mut UserState::default(),
                &record("01JDZ8F3Q4K5M6N7P8R9S0T1V2", amount, currency, at),
                shared::time::now(),
            )
        };
        let in_eur = score("5000.00", "EUR");
        for (amount, currency) in [(jpy.as_str(), "JPY"), (kwd.as_str(), "KWD")] {
            let other = score(amount, currency);
            assert!(
                (i64::from(in_eur.score) - i64::from(other.score)).abs() <= 1,
                "{amount} {currency}: {other:?} against {in_eur:?}"
            );
            assert_eq!(in_eur.decision, other.decision, "{amount} {currency}");
            assert_eq!(in_eur.reasons, other.reasons, "{amount} {currency}");
        }
    }
}
