//! Labelled traffic and the measurement of the model on it (`make fraud-eval`).
//!
//! The traffic is made from a seed, so a run can be repeated: legitimate users with habits
//! of their own (a home country and currency, one or two cards, a usual amount, a pace of
//! orders, a gift shipped abroad now and then, a forgotten item ordered again minutes
//! later), and five attacks injected among them:
//!
//! | pattern | what it looks like |
//! |---|---|
//! | `card_testing` | 5 to 15 small payments within minutes, each with another card |
//! | `account_takeover` | an established customer's account ships abroad, with a new card, 5 to 20 times the usual amount |
//! | `velocity_burst` | 6 to 12 orders within an hour on one card |
//! | `amount_outlier` | an established customer pays 15 to 50 times the usual amount |
//! | `reshipping` | 3 to 6 orders within hours, each to another country |
//!
//! Every transaction goes through the scorer's own path, in time order: the user's state
//! gives the features ([`crate::features`]), the model the score ([`crate::model`]). The
//! report gives, per pattern, the attacks caught (at least one of their transactions
//! flagged, review or deny, before the attack ended) and the transactions flagged, and on
//! legitimate traffic the false-positive rate (legitimate transactions flagged).
//!
//! [`fit`] finds the weights: a logistic regression by gradient descent with every weight
//! kept at 0 or above (so the model stays monotone), on traffic from one seed; the report
//! is then made on traffic from another.

use crate::features::{DAY_MS, HOUR_MS, MINUTE_MS, Txn, UserState};
use crate::model::{INPUTS, Model};
use shared::events::FraudDecision;
use std::collections::{BTreeMap, HashMap};

/// The patterns, in report order.
pub const PATTERNS: &[&str] = &[
    "card_testing",
    "account_takeover",
    "velocity_burst",
    "amount_outlier",
    "reshipping",
];

/// How much traffic to make.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// The generator's seed.
    pub seed: u64,
    /// Legitimate users.
    pub users: usize,
    /// Days of traffic.
    pub days: u32,
    /// Attacks of each pattern.
    pub attacks: usize,
}

/// One generated transaction, with its truth.
#[derive(Debug, Clone)]
pub struct Generated {
    user: u32,
    order: String,
    at_ms: i64,
    eur: f64,
    fingerprint: String,
    ship: &'static str,
    home: &'static str,
    created_ms: i64,
    /// `None` for a legitimate transaction; else the pattern and the attack's number.
    attack: Option<(usize, usize)>,
    /// Which transaction of its attack this is (0: the first).
    step: u32,
}

/// A transaction as scored: its inputs and truth.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The model's inputs.
    pub x: [f64; INPUTS.len()],
    /// The attack it belongs to, if any.
    pub attack: Option<(usize, usize)>,
    /// Which transaction of its attack this is (0: the first).
    pub step: u32,
}

/// splitmix64: small, fast and good enough for traffic; the same seed makes the same run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(f64::MIN_POSITIVE), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential with mean `mean`.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.int(0, items.len() as u64 - 1) as usize]
    }
}

/// Where customers live, roughly by how many there are.
const HOMES: &[&str] = &[
    "DE", "DE", "DE", "FR", "FR", "GB", "GB", "US", "US", "US", "NL", "ES", "IT", "PL", "JP", "KR",
    "KW", "SE", "AT", "BE",
];
/// Where a gift, or a reshipper's parcel, may go.
const ABROAD: &[&str] = &[
    "DE", "FR", "GB", "US", "NL", "ES", "IT", "PL", "JP", "NG", "RU", "BR", "CN", "TR", "UA", "VN",
];

const START_MS: i64 = 1_790_000_000_000;

fn order_id(n: u64) -> String {
    format!("{:026}", n)
}

/// Makes the traffic of `t`, in time order.
pub fn generate(t: &Traffic) -> Vec<Generated> {
    let mut rng = Rng::new(t.seed);
    let end_ms = START_MS + i64::from(t.days) * DAY_MS;
    let mut out = Vec::new();
    let mut next_order = 0u64;
    let mut order = || {
        next_order += 1;
        order_id(next_order)
    };
    struct Habit {
        home: &'static str,
        created_ms: i64,
        cards: Vec<String>,
        median_eur: f64,
    }
    let mut habits = Vec::with_capacity(t.users);
    for user in 0..t.users {
        let home = rng.pick(HOMES);
        // One account in ten is opened during the traffic, the others up to four years before.
        let created_ms = if rng.unit() < 0.1 {
            START_MS + (rng.unit() * (end_ms - START_MS) as f64) as i64
        } else {
            START_MS - (rng.range(30.0, 1500.0) * DAY_MS as f64) as i64
        };
        let cards = (0..rng.int(1, 2))
            .map(|c| format!("u{user}-card{c}"))
            .collect::<Vec<_>>();
        let median_eur = rng.range(15.0_f64.ln(), 300.0_f64.ln()).exp();
        let per_week = rng.range(0.3, 5.0);
        let mut at = created_ms.max(START_MS) + (rng.exp(7.0 / per_week) * DAY_MS as f64) as i64;
        while at < end_ms {
            let eur = (median_eur.ln() + 0.5 * rng.normal()).exp();
            let ship = if rng.unit() < 0.08 {
                rng.pick(ABROAD)
            } else {
                home
            };
            let card = cards[rng.int(0, cards.len() as u64 - 1) as usize].clone();
            let placed = Generated {
                user: user as u32,
                order: order(),
                at_ms: at,
                eur,
                fingerprint: card,
                ship,
                home,
                created_ms,
                attack: None,
                step: 0,
            };
            // A forgotten item, ordered again a few minutes later.
            if rng.unit() < 0.05 {
                out.push(Generated {
                    order: order(),
                    at_ms: at + (rng.range(1.0, 10.0) * MINUTE_MS as f64) as i64,
                    eur: (median_eur.ln() - 1.0 + 0.5 * rng.normal()).exp(),
                    ..placed.clone()
                });
            }
            out.push(placed);
            at += (rng.exp(7.0 / per_week) * DAY_MS as f64) as i64 + MINUTE_MS;
        }
        habits.push(Habit {
            home,
            created_ms,
            cards,
            median_eur,
        });
    }
    // Orders of each customer by time, to pick victims with a history before the attack.
    let mut placed_at: Vec<Vec<i64>> = vec![Vec::new(); t.users];
    for g in &out {
        placed_at[g.user as usize].push(g.at_ms);
    }
    for times in &mut placed_at {
        times.sort_unstable();
    }
    let mut fraudsters = t.users as u32;
    for (pattern, name) in PATTERNS.iter().enumerate() {
        for attack in 0..t.attacks {
            let tag = Some((pattern, attack));
            // Attacks fall in the second half, when the victims have a history.
            let at = START_MS + ((0.5 + 0.5 * rng.unit()) * (end_ms - START_MS) as f64) as i64;
            match *name {
                "card_testing" | "velocity_burst" | "reshipping" => {
                    fraudsters += 1;
                    let home = rng.pick(HOMES);
                    let created_ms = at - (rng.range(0.0, 30.0) * DAY_MS as f64) as i64;
                    let (n, span_ms) = match *name {
                        "card_testing" => (rng.int(5, 15), 5 * MINUTE_MS),
                        "velocity_burst" => (rng.int(6, 12), HOUR_MS),
                        _ => (rng.int(3, 6), 6 * HOUR_MS),
                    };
                    let card = format!("f{fraudsters}-card");
                    let mut when = at;
                    for i in 0..n {
                        let (eur, fingerprint, ship) = match *name {
                            "card_testing" => {
                                (rng.range(1.0, 10.0), format!("f{fraudsters}-card{i}"), home)
                            }
                            "velocity_burst" => (rng.range(20.0, 200.0), card.clone(), home),
                            _ => (rng.range(50.0, 400.0), card.clone(), rng.pick(ABROAD)),
                        };
                        out.push(Generated {
                            user: fraudsters,
                            order: order(),
                            at_ms: when,
                            eur,
                            fingerprint,
                            ship,
                            home,
                            created_ms,
                            attack: tag,
                            step: i as u32,
                        });
                        when += (span_ms as f64 / n as f64 * rng.range(0.5, 1.5)) as i64;
                    }
                }
                _ => {
                    // An established customer: four orders or more before the attack.
                    let victims: Vec<usize> = (0..t.users)
                        .filter(|u| placed_at[*u].partition_point(|a| *a < at) >= 4)
                        .collect();
                    if victims.is_empty() {
                        continue;
                    }
                    let victim = rng.pick(&victims);
                    let h = &habits[victim];
                    let takeover = *name == "account_takeover";
                    let times = if takeover {
                        rng.range(5.0, 20.0)
                    } else {
                        rng.range(15.0, 50.0)
                    };
                    let ship = if takeover {
                        loop {
                            let c = rng.pick(ABROAD);
                            if c != h.home {
                                break c;
                            }
                        }
                    } else {
                        h.home
                    };
                    out.push(Generated {
                        user: victim as u32,
                        order: order(),
                        at_ms: at,
                        eur: h.median_eur * times,
                        fingerprint: if takeover {
                            format!("stolen-{pattern}-{attack}")
                        } else {
                            h.cards[0].clone()
                        },
                        ship,
                        home: h.home,
                        created_ms: h.created_ms,
                        attack: tag,
                        step: 0,
                    });
                }
            }
        }
    }
    out.sort_by_key(|g| g.at_ms);
    out
}

/// Every transaction's inputs, as the scorer computes them in time order.
pub fn features(traffic: &[Generated]) -> Vec<Scored> {
    let mut states: HashMap<u32, UserState> = HashMap::new();
    traffic
        .iter()
        .map(|g| {
            let state = states.entry(g.user).or_default();
            let txn = Txn {
                order_id: &g.order,
                at_ms: g.at_ms,
                eur: g.eur,
                fingerprint: &g.fingerprint,
                ship_country: g.ship,
                profile_country: Some(g.home),
                account_created_ms: Some(g.created_ms),
            };
            let x = Model::inputs(&state.features(&txn));
            state.count(&txn);
            Scored {
                x,
                attack: g.attack,
                step: g.step,
            }
        })
        .collect()
}

/// The ridge penalty of the fit: keeps one input from growing a weight that only a
/// handful of transactions asked for.
pub const RIDGE: f64 = 0.002;

/// Fits the weights on `data`: projected gradient descent on the mean log loss, attacks
/// and legitimate transactions weighing half each, every weight kept at 0 or above. The
/// version and thresholds are `base`'s until [`calibrate`] sets the thresholds.
pub fn fit(data: &[Scored], epochs: usize, base: &Model) -> Model {
    let n = INPUTS.len();
    // Legitimate traffic weighs half; the other half is shared by the patterns, within a
    // pattern by its attacks, within an attack by its transactions. The first transaction of
    // an attack of several is left out: alone it is an ordinary order, and no input can tell.
    let mut per_attack: HashMap<(usize, usize), usize> = HashMap::new();
    let mut per_pattern: HashMap<usize, std::collections::HashSet<usize>> = HashMap::new();
    for s in data {
        if let Some((p, a)) = s.attack {
            *per_attack.entry((p, a)).or_default() += 1;
            per_pattern.entry(p).or_default().insert(a);
        }
    }
    let legit = data.iter().filter(|s| s.attack.is_none()).count().max(1) as f64;
    let patterns = per_pattern.len().max(1) as f64;
    let weight_of = |s: &Scored| match s.attack {
        None => 0.5 / legit,
        Some((p, a)) => {
            let txns = per_attack.get(&(p, a)).copied().unwrap_or(1);
            let attacks = per_pattern.get(&p).map_or(1, |set| set.len());
            if txns > 1 && s.step == 0 {
                0.0
            } else {
                let counted = if txns > 1 { txns - 1 } else { 1 };
                0.5 / patterns / attacks as f64 / counted as f64
            }
        }
    };
    let mut w = vec![0.0; n];
    let mut b = -3.0;
    // Inputs differ in scale; a step per input from its mean square keeps descent stable.
    let scale: Vec<f64> = (0..n)
        .map(|i| {
            let ms = data.iter().map(|s| s.x[i] * s.x[i]).sum::<f64>() / data.len() as f64;
            1.0 / ms.max(1e-3)
        })
        .collect();
    let rate = 0.5;
    // Each transaction's weight, once: the epochs below read it for every transaction.
    let weights: Vec<f64> = data.iter().map(weight_of).collect();
    for _ in 0..epochs {
        let mut gw = vec![0.0; n];
        let mut gb = 0.0;
        for (s, weight) in data.iter().zip(&weights) {
            let z = b + w.iter().zip(&s.x).map(|(w, x)| w * x).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = if s.attack.is_some() { 1.0 } else { 0.0 };
            let err = weight * (p - y);
            gb += err;
            for (g, x) in gw.iter_mut().zip(&s.x) {
                *g += err * x;
            }
        }
        b -= rate * gb;
        for i in 0..n {
            w[i] = (w[i] - rate * scale[i] * (gw[i] + RIDGE * w[i])).max(0.0);
        }
    }
    Model {
        weights: INPUTS
            .iter()
            .zip(&w)
            .map(|((name, _), w)| ((*name).to_owned(), (w * 1e4).round() / 1e4))
            .collect(),
        intercept: (b * 1e4).round() / 1e4,
        ..base.clone()
    }
}

/// Sets the thresholds so that at most `review_fpr` of the legitimate transactions of
/// `data` are reviewed and at most `deny_fpr` denied.
pub fn calibrate(mut model: Model, data: &[Scored], review_fpr: f64, deny_fpr: f64) -> Model {
    let mut legit: Vec<u32> = data
        .iter()
        .filter(|s| s.attack.is_none())
        .map(|s| model.scale(model.logit(&s.x)))
        .collect();
    legit.sort_unstable();
    let above = |fpr: f64| {
        let keep = ((1.0 - fpr) * legit.len() as f64).ceil() as usize;
        legit
            .get(keep.saturating_sub(1))
            .map_or(crate::model::MAX_SCORE, |s| s + 1)
            .min(crate::model::MAX_SCORE)
    };
    model.review_from = above(review_fpr).max(1);
    model.deny_from = above(deny_fpr).max(model.review_from);
    model
}

/// One pattern's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternReport {
    /// The pattern.
    pub pattern: &'static str,
    /// Attacks made.
    pub attacks: usize,
    /// Attacks with at least one transaction flagged.
    pub caught: usize,
    /// Transactions of the attacks.
    pub transactions: usize,
    /// Of those, flagged.
    pub flagged: usize,
    /// Of those, denied.
    pub denied: usize,
}

impl PatternReport {
    /// Attacks caught / attacks.
    pub fn recall(&self) -> f64 {
        self.caught as f64 / self.attacks.max(1) as f64
    }

    /// Transactions flagged / transactions.
    pub fn transaction_recall(&self) -> f64 {
        self.flagged as f64 / self.transactions.max(1) as f64
    }
}

/// What the model does on one traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Per pattern.
    pub patterns: Vec<PatternReport>,
    /// Legitimate transactions.
    pub legitimate: usize,
    /// Of those, flagged (review or deny).
    pub false_positives: usize,
    /// Of those, denied.
    pub false_denials: usize,
    /// Flagged transactions that belong to an attack / flagged transactions.
    pub precision: f64,
}

impl Report {
    /// Legitimate transactions flagged / legitimate transactions.
    pub fn false_positive_rate(&self) -> f64 {
        self.false_positives as f64 / self.legitimate.max(1) as f64
    }

    /// The report as a Markdown table.
    pub fn render(&self, model: &Model, traffic: &Traffic) -> String {
        let mut out = format!(
            "model {} (review from {}, deny from {}); traffic: seed {}, {} users, {} days, {} attacks per pattern\n\n",
            model.version,
            model.review_from,
            model.deny_from,
            traffic.seed,
            traffic.users,
            traffic.days,
            traffic.attacks
        );
        out.push_str("| pattern | attacks | caught (recall) | transactions flagged | denied |\n|---|---:|---:|---:|---:|\n");
        for p in &self.patterns {
            out.push_str(&format!(
                "| {} | {} | {} ({:.3}) | {}/{} ({:.3}) | {} |\n",
                p.pattern,
                p.attacks,
                p.caught,
                p.recall(),
                p.flagged,
                p.transactions,
                p.transaction_recall(),
                p.denied
            ));
        }
        out.push_str(&format!(
            "\nlegitimate transactions: {}; flagged {} (false-positive rate {:.4}), denied {}; precision of the flags {:.3}\n",
            self.legitimate,
            self.false_positives,
            self.false_positive_rate(),
            self.false_denials,
            self.precision
        ));
        out
    }
}

/// Measures `model` on `data`.
pub fn evaluate(model: &Model, data: &[Scored]) -> Report {
    let mut per: BTreeMap<(usize, usize), (usize, usize, usize)> = BTreeMap::new();
    let (mut legitimate, mut fp, mut fd, mut true_flags) = (0, 0, 0, 0);
    for s in data {
        let decision = model.decide(model.scale(model.logit(&s.x)));
        let flagged = decision != FraudDecision::Approve;
        let denied = decision == FraudDecision::Deny;
        match s.attack {
            None => {
                legitimate += 1;
                fp += usize::from(flagged);
                fd += usize::from(denied);
            }
            Some(key) => {
                let e = per.entry(key).or_default();
                e.0 += 1;
                e.1 += usize::from(flagged);
                e.2 += usize::from(denied);
                true_flags += usize::from(flagged);
            }
        }
    }
    let patterns = PATTERNS
        .iter()
        .enumerate()
        .map(|(i, pattern)| {
            let attacks: Vec<_> = per.iter().filter(|((p, _), _)| *p == i).collect();
            PatternReport {
                pattern,
                attacks: attacks.len(),
                caught: attacks.iter().filter(|(_, v)| v.1 > 0).count(),
                transactions: attacks.iter().map(|(_, v)| v.0).sum(),
                flagged: attacks.iter().map(|(_, v)| v.1).sum(),
                denied: attacks.iter().map(|(_, v)| v.2).sum(),
            }
        })
        .collect();
    Report {
        patterns,
        legitimate,
        false_positives: fp,
        false_denials: fd,
        precision: true_flags as f64 / (true_flags + fp).max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::MODEL;

    const SMALL: Traffic = Traffic {
        seed: 7,
        users: 300,
        days: 14,
        attacks: 20,
    };

    #[test]
    fn the_same_seed_makes_the_same_traffic() {
        let (a, b) = (generate(&SMALL), generate(&SMALL));
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.order == y.order && x.eur == y.eur)
        );
        assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "time order");
        for (i, _) in PATTERNS.iter().enumerate() {
            let attacks = a
                .iter()
                .filter_map(|g| g.attack)
                .filter(|(p, _)| *p == i)
                .map(|(_, n)| n)
                .collect::<std::collections::BTreeSet<_>>();
            assert_eq!(attacks.len(), SMALL.attacks, "{}", PATTERNS[i]);
        }
    }

    #[test]
    fn a_fitted_model_is_monotone_and_measured_on_other_traffic() {
        let train = features(&generate(&SMALL));
        let model = calibrate(fit(&train, 200, &MODEL), &train, 0.008, 0.001);
        assert!(model.weights.iter().all(|(_, w)| *w >= 0.0));
        assert!(Model::parse(&serde_json::to_string(&model).unwrap()).is_ok());
        let test = features(&generate(&Traffic { seed: 8, ..SMALL }));
        let report = evaluate(&model, &test);
        assert_eq!(report.patterns.len(), PATTERNS.len());
        assert!(
            report.legitimate > 0 && report.patterns.iter().all(|p| p.attacks == SMALL.attacks)
        );
        // The figures are the report's, not this test's: it checks they add up.
        for p in &report.patterns {
            assert!(p.caught <= p.attacks && p.flagged <= p.transactions && p.denied <= p.flagged);
        }
    }
}
