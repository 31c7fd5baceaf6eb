//! The rules of `rules-v1`, pure so that every threshold is pinned by a unit test.
//! The table they implement is in the crate documentation.

use shared::events::FraudDecision;
use shared::money::Money;

/// The rule set's name, stored with every assessment and carried by `FraudAssessed`, so an
/// assessment can always be traced to the rules that made it.
pub const MODEL_VERSION: &str = "rules-v1";
/// Highest score; the sum of the rules is capped here.
pub const MAX_SCORE: u32 = 1000;
/// Scores from here up are held for an administrator's review.
pub const REVIEW_FROM: u32 = 400;
/// Scores from here up are denied.
pub const DENY_FROM: u32 = 700;
/// Orders by one user in one hour that add nothing to the score.
pub const FREE_ORDERS_PER_HOUR: u64 = 5;
/// Points for each order in the hour beyond [`FREE_ORDERS_PER_HOUR`].
pub const POINTS_PER_EXTRA_ORDER: u32 = 100;

/// Amount bands, highest first: (lower bound in major units, points, reason).
const AMOUNT_BANDS: &[(i64, u32, &str)] = &[
    (10_000, 800, "amount_over_10000"),
    (2_000, 500, "amount_over_2000"),
    (500, 250, "amount_over_500"),
];

/// What the rules look at for one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// The order's amount (compared in major units, whatever the currency).
    pub amount: Money,
    /// Orders by the same user in the order's hour, this one included.
    pub orders_this_hour: u64,
}

/// What the rules concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// 0..=1000.
    pub score: u32,
    /// What the score means.
    pub decision: FraudDecision,
    /// The rules that added points, in the order of the table.
    pub reasons: Vec<String>,
}

/// Scores one order by the table in the crate documentation.
pub fn score(signals: &Signals) -> Score {
    let mut total: u32 = 0;
    let mut reasons = Vec::new();

    let scale = 10_i64.pow(u32::from(signals.amount.currency().minor_units()));
    if let Some((_, points, reason)) = AMOUNT_BANDS
        .iter()
        .find(|(bound, _, _)| signals.amount.minor() >= bound.saturating_mul(scale))
    {
        total += points;
        reasons.push((*reason).to_owned());
    }

    let extra = signals
        .orders_this_hour
        .saturating_sub(FREE_ORDERS_PER_HOUR);
    if extra > 0 {
        let points = u32::try_from(extra)
            .unwrap_or(u32::MAX)
            .saturating_mul(POINTS_PER_EXTRA_ORDER);
        total = total.saturating_add(points);
        reasons.push(format!(
            "velocity_{}_orders_last_hour",
            signals.orders_this_hour
        ));
    }

    let score = total.min(MAX_SCORE);
    Score {
        score,
        decision: decide(score),
        reasons,
    }
}

/// The decision a score means: below 400 approve, below 700 review, else deny.
pub fn decide(score: u32) -> FraudDecision {
    if score >= DENY_FROM {
        FraudDecision::Deny
    } else if score >= REVIEW_FROM {
        FraudDecision::Review
    } else {
        FraudDecision::Approve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(amount: &str, currency: &str, orders: u64) -> Score {
        score(&Signals {
            amount: Money::parse(amount, currency).unwrap(),
            orders_this_hour: orders,
        })
    }

    #[test]
    fn amount_bands_take_their_lower_bound_in_major_units() {
        for (amount, points, reason) in [
            ("0.00", 0, None),
            ("499.99", 0, None),
            ("500.00", 250, Some("amount_over_500")),
            ("1999.99", 250, Some("amount_over_500")),
            ("2000", 500, Some("amount_over_2000")),
            ("9999.99", 500, Some("amount_over_2000")),
            ("10000", 800, Some("amount_over_10000")),
            ("2500000", 800, Some("amount_over_10000")),
        ] {
            let s = at(amount, "EUR", 1);
            assert_eq!(s.score, points, "{amount}");
            assert_eq!(
                s.reasons,
                reason.map(str::to_owned).into_iter().collect::<Vec<_>>(),
                "{amount}"
            );
        }
    }

    #[test]
    fn amounts_compare_in_major_units_whatever_the_currency() {
        assert_eq!(at("499", "JPY", 1).score, 0);
        assert_eq!(at("500", "JPY", 1).score, 250);
        assert_eq!(at("1999.999", "KWD", 1).score, 250);
        assert_eq!(at("2000.000", "KWD", 1).score, 500);
        assert_eq!(at("10000", "USD", 1).score, 800);
    }

    #[test]
    fn each_order_beyond_five_in_the_hour_adds_a_hundred() {
        for (orders, points) in [(1, 0), (5, 0), (6, 100), (7, 200), (9, 400)] {
            let s = at("10.00", "EUR", orders);
            assert_eq!(s.score, points, "{orders} orders");
        }
        assert_eq!(
            at("10.00", "EUR", 7).reasons,
            ["velocity_7_orders_last_hour"]
        );
        assert!(at("10.00", "EUR", 5).reasons.is_empty());
    }

    #[test]
    fn reasons_follow_the_table_and_the_score_is_capped_at_1000() {
        let s = at("2000", "EUR", 8);
        assert_eq!(s.score, 800);
        assert_eq!(
            s.reasons,
            ["amount_over_2000", "velocity_8_orders_last_hour"]
        );
        let s = at("10000", "EUR", 9);
        assert_eq!((s.score, s.decision), (1000, FraudDecision::Deny));
        assert_eq!(at("1", "EUR", u64::MAX).score, MAX_SCORE);
    }

    #[test]
    fn decisions_switch_at_400_and_700() {
        assert_eq!(decide(0), FraudDecision::Approve);
        assert_eq!(decide(399), FraudDecision::Approve);
        assert_eq!(decide(400), FraudDecision::Review);
        assert_eq!(decide(699), FraudDecision::Review);
        assert_eq!(decide(700), FraudDecision::Deny);
        assert_eq!(decide(1000), FraudDecision::Deny);
        // The table's own combinations.
        assert_eq!(at("600", "EUR", 1).decision, FraudDecision::Approve);
        assert_eq!(at("600", "EUR", 7).decision, FraudDecision::Review);
        assert_eq!(at("2000", "EUR", 1).decision, FraudDecision::Review);
        assert_eq!(at("2000", "EUR", 7).decision, FraudDecision::Deny);
        assert_eq!(at("10000", "EUR", 1).decision, FraudDecision::Deny);
    }
}
