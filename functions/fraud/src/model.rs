//! The score: a logistic model over the features ([`crate::features`]), its coefficients
//! and thresholds in a versioned file (`functions/fraud/model/model.json`), mapped to
//! 0..=1000 as the managed fraud services do, with a decision and the reasons that
//! weighed most.
//!
//! Every input is a transform of one feature that grows with the risk it stands for, and
//! every weight is at least 0 (the file is refused otherwise), so more risk never lowers
//! the score. The weights are fitted by `make fraud-eval` on labelled traffic
//! (`fraud-eval --fit`), which writes the file; the same command measures them.

use crate::features::Features;
use serde::{Deserialize, Serialize};
use shared::events::FraudDecision;
use std::sync::LazyLock;

/// One input: its name and how it is read from the features.
pub type Input = (&'static str, fn(&Features) -> f64);

/// The inputs of the model, in the file's order: name (also the reason a decision gives)
/// and how it is read from the features.
pub const INPUTS: &[Input] = &[
    // The amount itself, in hundreds of euros, on a log scale.
    ("large_amount", |f| (f.eur / 100.0).ln_1p()),
    // How far above the user's usual amount (standard deviations of the log amount).
    ("amount_outlier", |f| f.amount_z.clamp(0.0, 10.0)),
    // Far above the usual: the standard deviations beyond three, which a customer's own
    // spread almost never reaches.
    ("amount_outlier_beyond_3sd", |f| {
        (f.amount_z - 3.0).clamp(0.0, 10.0)
    }),
    // Velocity: ln of the transactions in each window (0 for this one alone).
    ("velocity_1m", |f| f64::from(f.count_1m.max(1)).ln()),
    ("velocity_1h", |f| f64::from(f.count_1h.max(1)).ln()),
    ("velocity_24h", |f| f64::from(f.count_24h.max(1)).ln()),
    // Spend in the last day, in five hundreds of euros, on a log scale.
    ("spend_24h", |f| (f.sum_24h_eur / 500.0).ln_1p()),
    // Card testing: payment methods beyond the first in a day.
    ("many_cards_24h", |f| {
        f64::from(f.fingerprints_24h.saturating_sub(1))
    }),
    // Reshipping: shipping countries beyond the first in a day.
    ("many_ship_countries_24h", |f| {
        f64::from(f.ship_countries_24h.saturating_sub(1))
    }),
    // A repeat within minutes: 1 right after the previous, 0.5 a minute later.
    ("rapid_repeat", |f| {
        f.secs_since_prev.map_or(0.0, |s| 1.0 / (1.0 + s / 60.0))
    }),
    // A young account: 1 on its first day, 0.5 a day later (unknown age: 0).
    ("new_account", |f| {
        f.account_age_days.map_or(0.0, |d| 1.0 / (1.0 + d))
    }),
    // Shipping away from the profile's country.
    ("ships_abroad", |f| f64::from(u8::from(f.ships_abroad))),
    // Shipping abroad and paying far above the usual: an account taken over.
    ("abroad_and_outlier", |f| {
        f64::from(u8::from(f.ships_abroad)) * f.amount_z.clamp(0.0, 10.0)
    }),
    // The user's first transaction.
    ("first_transaction", |f| f64::from(u8::from(f.first))),
];

/// Highest score.
pub const MAX_SCORE: u32 = 1000;
/// A reason is named only when its input adds at least this much to the log-odds (it
/// multiplies the odds of fraud by e or more), so an ordinary order names none.
pub const REASON_MIN: f64 = 1.0;
/// Reasons named at most.
pub const MAX_REASONS: usize = 3;

/// The model as the file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Stored with every assessment and carried by `FraudAssessed`.
    pub version: String,
    /// How the weights were obtained (the fitting run: its seed and traffic).
    pub fitted: String,
    /// The log-odds with every input 0.
    pub intercept: f64,
    /// One weight per input, by name, in [`INPUTS`] order.
    pub weights: Vec<(String, f64)>,
    /// Scores from here up are reviewed by an administrator.
    pub review_from: u32,
    /// Scores from here up are denied.
    pub deny_from: u32,
}

/// What the model concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// 0..=1000.
    pub score: u32,
    /// What the score means at the model's thresholds.
    pub decision: FraudDecision,
    /// The inputs that weighed most, heaviest first (names of [`INPUTS`]).
    pub reasons: Vec<&'static str>,
}

/// The model compiled into this release, read once; `fraud-score` reads it at cold start,
/// so a broken file fails the init with its reason (and a unit test fails before that).
pub fn compiled() -> Result<&'static Model, String> {
    static MODEL: LazyLock<Result<Model, String>> = LazyLock::new(|| {
        Model::parse(include_str!("../model/model.json"))
            .map_err(|e| format!("functions/fraud/model/model.json: {e}"))
    });
    MODEL.as_ref().map_err(Clone::clone)
}

impl Model {
    /// Reads a model, refusing one whose inputs are not [`INPUTS`], with a negative or
    /// non-finite weight, or with thresholds out of order.
    pub fn parse(json: &str) -> Result<Self, String> {
        let model: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let names: Vec<&str> = model.weights.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<&str> = INPUTS.iter().map(|(n, _)| *n).collect();
        if names != expected {
            return Err(format!("inputs {names:?}, expected {expected:?}"));
        }
        if let Some((name, w)) = model
            .weights
            .iter()
            .find(|(_, w)| !(w.is_finite() && *w >= 0.0))
        {
            return Err(format!(
                "weight of {name} is {w}: every weight must be >= 0"
            ));
        }
        let ordered = 0 < model.review_from
            && model.review_from <= model.deny_from
            && model.deny_from <= MAX_SCORE;
        if !(model.intercept.is_finite() && ordered) {
            return Err("intercept or thresholds out of range".into());
        }
        Ok(model)
    }

    /// The inputs of `features`, in [`INPUTS`] order.
    pub fn inputs(features: &Features) -> [f64; INPUTS.len()] {
        let mut x = [0.0; INPUTS.len()];
        for (slot, (_, read)) in x.iter_mut().zip(INPUTS) {
            *slot = read(features);
        }
        x
    }

    /// The log-odds of fraud for inputs `x` ([`Model::inputs`]).
    pub fn logit(&self, x: &[f64; INPUTS.len()]) -> f64 {
        self.intercept
            + self
                .weights
                .iter()
                .zip(x)
                .map(|((_, w), xi)| w * xi)
                .sum::<f64>()
    }

    /// The score of `features`.
    pub fn score(&self, features: &Features) -> Score {
        let x = Self::inputs(features);
        // The heaviest parts, kept in place as they come: no sort, no allocation but the
        // reasons themselves.
        let mut top: [(f64, usize); MAX_REASONS] = [(f64::NEG_INFINITY, 0); MAX_REASONS];
        for (i, ((_, w), xi)) in self.weights.iter().zip(x).enumerate() {
            let part = w * xi;
            if part >= REASON_MIN && part > top[MAX_REASONS - 1].0 {
                let at = top
                    .iter()
                    .position(|(p, _)| part > *p)
                    .unwrap_or(MAX_REASONS - 1);
                top.copy_within(at..MAX_REASONS - 1, at + 1);
                top[at] = (part, i);
            }
        }
        let reasons = top
            .iter()
            .take_while(|(part, _)| part.is_finite())
            .map(|(_, i)| INPUTS[*i].0)
            .collect();
        let score = self.scale(self.logit(&x));
        Score {
            score,
            decision: self.decide(score),
            reasons,
        }
    }

    /// Log-odds to 0..=1000.
    pub fn scale(&self, logit: f64) -> u32 {
        let p = 1.0 / (1.0 + (-logit).exp());
        // p is in [0, 1], so the product is in [0, 1000].
        (p * f64::from(MAX_SCORE)).round() as u32
    }

    /// The decision for a score.
    pub fn decide(&self, score: u32) -> FraudDecision {
        if score >= self.deny_from {
            FraudDecision::Deny
        } else if score >= self.review_from {
            FraudDecision::Review
        } else {
            FraudDecision::Approve
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The compiled model.
    pub(crate) static MODEL: LazyLock<&'static Model> = LazyLock::new(|| compiled().unwrap());

    fn usual() -> Features {
        Features {
            eur: 40.0,
            count_1m: 1,
            count_1h: 1,
            count_24h: 1,
            sum_1h_eur: 40.0,
            sum_24h_eur: 40.0,
            amount_z: 0.0,
            fingerprints_24h: 1,
            ship_countries_24h: 1,
            secs_since_prev: Some(7.0 * 86_400.0),
            account_age_days: Some(400.0),
            ships_abroad: false,
            first: false,
        }
    }

    /// Each feature made riskier, one at a time, by steps.
    fn riskier(f: &Features, step: u32) -> Vec<Features> {
        let k = f64::from(step);
        vec![
            Features {
                eur: f.eur * (1.0 + k),
                ..*f
            },
            Features {
                amount_z: f.amount_z + k,
                ..*f
            },
            Features {
                count_1m: f.count_1m + step,
                ..*f
            },
            Features {
                count_1h: f.count_1h + step,
                ..*f
            },
            Features {
                count_24h: f.count_24h + step,
                ..*f
            },
            Features {
                sum_24h_eur: f.sum_24h_eur * (1.0 + k),
                ..*f
            },
            Features {
                fingerprints_24h: f.fingerprints_24h + step,
                ..*f
            },
            Features {
                ship_countries_24h: f.ship_countries_24h + step,
                ..*f
            },
            Features {
                secs_since_prev: f.secs_since_prev.map(|s| s / (1.0 + k)),
                ..*f
            },
            Features {
                account_age_days: f.account_age_days.map(|d| d / (1.0 + k)),
                ..*f
            },
            Features {
                ships_abroad: true,
                ..*f
            },
            Features { first: true, ..*f },
        ]
    }

    #[test]
    fn the_compiled_model_is_valid() {
        assert!(MODEL.version.starts_with("logit-"));
        assert_eq!(MODEL.weights.len(), INPUTS.len());
    }

    #[test]
    fn more_risk_never_lowers_the_score() {
        let model = *MODEL;
        let mut frontier = vec![usual()];
        // From the usual transaction, walk up each feature and every pair of features.
        for _ in 0..2 {
            let mut next = Vec::new();
            for f in &frontier {
                let base = model.score(f).score;
                for step in [1, 3, 10] {
                    for g in riskier(f, step) {
                        let s = model.score(&g).score;
                        assert!(s >= base, "{base} -> {s}: {f:?} -> {g:?}");
                        next.push(g);
                    }
                }
            }
            frontier = next;
        }
    }

    #[test]
    fn the_score_maps_to_the_decision_at_the_thresholds() {
        let m = *MODEL;
        assert_eq!(m.decide(m.review_from - 1), FraudDecision::Approve);
        assert_eq!(m.decide(m.review_from), FraudDecision::Review);
        assert_eq!(m.decide(m.deny_from - 1), FraudDecision::Review);
        assert_eq!(m.decide(m.deny_from), FraudDecision::Deny);
        assert_eq!(m.scale(-50.0), 0);
        assert_eq!(m.scale(50.0), MAX_SCORE);
        assert_eq!(m.scale(0.0), 500);
    }

    #[test]
    fn reasons_name_the_heaviest_inputs() {
        let testing = Features {
            count_1m: 6,
            count_1h: 6,
            count_24h: 6,
            fingerprints_24h: 6,
            secs_since_prev: Some(5.0),
            ..usual()
        };
        let model = *MODEL;
        let s = model.score(&testing);
        // The expected reasons, worked out apart: each input's share of the log-odds.
        let x = Model::inputs(&testing);
        let mut parts: Vec<(f64, &str)> = model
            .weights
            .iter()
            .zip(x)
            .map(|((name, w), xi)| (w * xi, name.as_str()))
            .filter(|(part, _)| *part >= REASON_MIN)
            .collect();
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let expected: Vec<&str> = parts.iter().take(MAX_REASONS).map(|(_, n)| *n).collect();
        assert!(!expected.is_empty());
        assert_eq!(s.reasons, expected, "{s:?}");
        assert!(
            s.reasons.iter().any(|r| r.starts_with("velocity_")),
            "{s:?}"
        );
        assert!(
            model.score(&usual()).reasons.is_empty(),
            "nothing unusual, no reason"
        );
    }

    #[test]
    fn a_model_with_a_negative_weight_or_other_inputs_is_refused() {
        let mut m = (*MODEL).clone();
        m.weights[0].1 = -0.1;
        assert!(Model::parse(&serde_json::to_string(&m).unwrap()).is_err());
        let mut m = (*MODEL).clone();
        m.weights.pop();
        assert!(Model::parse(&serde_json::to_string(&m).unwrap()).is_err());
        let mut m = (*MODEL).clone();
        m.review_from = m.deny_from + 1;
        assert!(Model::parse(&serde_json::to_string(&m).unwrap()).is_err());
        assert!(Model::parse(&serde_json::to_string(*MODEL).unwrap()).is_ok());
    }
}
