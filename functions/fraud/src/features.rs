//! What the scorer knows of a user, and the features it reads from that for one
//! transaction: counts and euro sums over sliding windows (1 minute, 1 hour, 24 hours), the
//! amount against the user's usual amounts (a z-score of the log amount, from a running
//! mean and variance), distinct payment fingerprints and shipping countries in 24 hours
//! (card testing, reshipping), the time since the previous transaction, the account's age,
//! shipping away from the profile's country, and whether this is the user's first.
//!
//! The state is bounded: the last [`RECENT`] transactions of the last 24 hours (older ones
//! leave it), and three numbers for the running statistics. A user with more than
//! [`RECENT`] transactions in a window is counted as having [`RECENT`]; every velocity
//! feature is at its strongest long before that. A transaction already in the state (a
//! redelivered or replayed record) is recognised by its order id and not counted twice.

use serde::{Deserialize, Serialize};

/// Transactions remembered per user (those of the last 24 hours, newest kept).
pub const RECENT: usize = 32;
/// The windows, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day: how long a transaction stays in the state.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Transactions of a user before the z-score of an amount means anything.
pub const Z_MIN_HISTORY: u64 = 3;

/// One transaction as the features see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn<'a> {
    /// The order; what makes a redelivery recognisable.
    pub order_id: &'a str,
    /// When the saga asked, epoch milliseconds.
    pub at_ms: i64,
    /// The amount in euros ([`crate::rates`]).
    pub eur: f64,
    /// The payment token's fingerprint (never the token).
    pub fingerprint: &'a str,
    /// Where the order ships (ISO 3166-1 alpha-2).
    pub ship_country: &'a str,
    /// The profile's country, when the user has a profile.
    pub profile_country: Option<&'a str>,
    /// When the account was created, epoch milliseconds, when known.
    pub account_created_ms: Option<i64>,
}

/// A transaction the state remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// Order id.
    pub o: String,
    /// Epoch milliseconds.
    pub t: i64,
    /// Euros.
    pub e: f64,
    /// Payment fingerprint.
    pub f: String,
    /// Shipping country.
    pub c: String,
}

/// Running mean and variance (Welford) of `ln(1 + euros)` over every transaction counted.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Running {
    /// Transactions counted.
    pub n: u64,
    /// Mean of the log amounts.
    pub mean: f64,
    /// Sum of squared differences from the mean.
    pub m2: f64,
}

impl Running {
    /// Adds one log amount.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The sample standard deviation, once there are two values.
    pub fn std_dev(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).sqrt())
    }

    /// How many standard deviations `x` lies above the mean; 0 without enough history,
    /// and a spread of at least 0.1 (amounts 10% apart) so a user who always paid the same
    /// is not infinitely surprised.
    pub fn z(&self, x: f64) -> f64 {
        if self.n < Z_MIN_HISTORY {
            return 0.0;
        }
        let sd = self.std_dev().unwrap_or(0.0).max(0.1);
        (x - self.mean) / sd
    }
}

/// Everything the scorer keeps of one user: the item the `fraud` table holds under
/// `user#<id>`, written back only if its version is still the one read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserState {
    /// Incremented by every write; the write's condition is the version read.
    pub version: u64,
    /// The last transactions of the last 24 hours, oldest first, at most [`RECENT`].
    pub recent: Vec<Seen>,
    /// Statistics of every amount counted.
    pub amounts: Running,
    /// When the user's latest transaction happened, epoch milliseconds.
    pub last_ms: Option<i64>,
}

/// The features of one transaction, read from the state before it is counted; the
/// windows include the transaction itself.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Features {
    /// The amount in euros.
    pub eur: f64,
    /// Transactions in the last minute, hour and day, this one included.
    pub count_1m: u32,
    /// See `count_1m`.
    pub count_1h: u32,
    /// See `count_1m`.
    pub count_24h: u32,
    /// Euros in the last hour and day, this one included.
    pub sum_1h_eur: f64,
    /// See `sum_1h_eur`.
    pub sum_24h_eur: f64,
    /// Standard deviations above the user's usual (log) amount; 0 without history.
    pub amount_z: f64,
    /// Payment fingerprints used in the last 24 hours, this one included.
    pub fingerprints_24h: u32,
    /// Shipping countries used in the last 24 hours, this one included.
    pub ship_countries_24h: u32,
    /// Seconds since the user's previous transaction; `None` for the first.
    pub secs_since_prev: Option<f64>,
    /// Days since the account was created, when known.
    pub account_age_days: Option<f64>,
    /// The order ships to another country than the profile's.
    pub ships_abroad: bool,
    /// The user's first transaction.
    pub first: bool,
}

impl UserState {
    /// Whether `order_id` was counted already (a redelivery, a replay).
    pub fn has_seen(&self, order_id: &str) -> bool {
        self.recent.iter().any(|s| s.o == order_id)
    }

    /// The features of `txn`, before it is counted.
    pub fn features(&self, txn: &Txn<'_>) -> Features {
        // One pass over the day, without allocating: this runs once per record.
        let (mut count_1m, mut count_1h, mut count_24h) = (1usize, 1usize, 1usize);
        let (mut sum_1h, mut sum_24h) = (txn.eur, txn.eur);
        let mut fingerprints = Distinct::default();
        let mut countries = Distinct::default();
        fingerprints.add(txn.fingerprint);
        countries.add(txn.ship_country);
        for seen in &self.recent {
            let age = txn.at_ms - seen.t;
            if !(0..DAY_MS).contains(&age) {
                continue;
            }
            count_24h += 1;
            sum_24h += seen.e;
            fingerprints.add(&seen.f);
            countries.add(&seen.c);
            if age < HOUR_MS {
                count_1h += 1;
                sum_1h += seen.e;
                if age < MINUTE_MS {
                    count_1m += 1;
                }
            }
        }
        Features {
            eur: txn.eur,
            count_1m: saturate(count_1m),
            count_1h: saturate(count_1h),
            count_24h: saturate(count_24h),
            sum_1h_eur: sum_1h,
            sum_24h_eur: sum_24h,
            amount_z: self.amounts.z(txn.eur.ln_1p()),
            fingerprints_24h: saturate(fingerprints.len),
            ship_countries_24h: saturate(countries.len),
            secs_since_prev: self
                .last_ms
                .map(|last| (txn.at_ms - last).max(0) as f64 / 1000.0),
            account_age_days: txn
                .account_created_ms
                .map(|created| (txn.at_ms - created).max(0) as f64 / DAY_MS as f64),
            ships_abroad: txn
                .profile_country
                .is_some_and(|home| home != txn.ship_country),
            first: self.amounts.n == 0,
        }
    }

    /// Counts `txn`: remembered (the oldest leave past 24 hours or past [`RECENT`]), its
    /// amount in the statistics. A transaction already seen changes nothing.
    pub fn count(&mut self, txn: &Txn<'_>) {
        if self.remember(txn) {
            self.amounts.push(txn.eur.ln_1p());
        }
    }

    /// Remembers `txn` in the windows without counting its amount in the statistics (an
    /// amount that cannot be compared, in a currency without a rate): later deliveries of it
    /// are recognised. False when it was seen already.
    pub fn remember(&mut self, txn: &Txn<'_>) -> bool {
        if self.has_seen(txn.order_id) {
            return false;
        }
        let at = txn.at_ms;
        let position = self.recent.partition_point(|s| s.t <= at);
        self.recent.insert(
            position,
            Seen {
                o: txn.order_id.to_owned(),
                t: at,
                e: txn.eur,
                f: txn.fingerprint.to_owned(),
                c: txn.ship_country.to_owned(),
            },
        );
        let newest = self.recent.last().map_or(at, |s| s.t);
        self.recent.retain(|s| s.t > newest - DAY_MS);
        if self.recent.len() > RECENT {
            let excess = self.recent.len() - RECENT;
            self.recent.drain(..excess);
        }
        self.last_ms = Some(self.last_ms.map_or(at, |last| last.max(at)));
        true
    }
}

/// Distinct values among at most [`RECENT`] + 1, counted without allocating.
struct Distinct<'a> {
    seen: [&'a str; RECENT + 1],
    len: usize,
}

impl Default for Distinct<'_> {
    fn default() -> Self {
        Self {
            seen: [""; RECENT + 1],
            len: 0,
        }
    }
}

impl<'a> Distinct<'a> {
    fn add(&mut self, value: &'a str) {
        if self.len < self.seen.len() && !self.seen[..self.len].contains(&value) {
            self.seen[self.len] = value;
            self.len += 1;
        }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n.min(RECENT)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_000_000_000;

    fn txn(order: &'static str, at_ms: i64, eur: f64) -> Txn<'static> {
        Txn {
            order_id: order,
            at_ms,
            eur,
            fingerprint: "fp-1",
            ship_country: "DE",
            profile_country: Some("DE"),
            account_created_ms: Some(T0 - 400 * DAY_MS),
        }
    }

    fn orders(n: usize) -> Vec<&'static str> {
        (0..n)
            .map(|i| &*Box::leak(format!("o{i}").into_boxed_str()))
            .collect()
    }

    #[test]
    fn windows_roll_over_at_their_edges() {
        let mut s = UserState::default();
        s.count(&txn("a", T0, 10.0));
        // 59.999 s later the first is in the minute; at 60 s it has left it.
        let f = s.features(&txn("b", T0 + MINUTE_MS - 1, 20.0));
        assert_eq!((f.count_1m, f.count_1h, f.count_24h), (2, 2, 2));
        let f = s.features(&txn("b", T0 + MINUTE_MS, 20.0));
        assert_eq!((f.count_1m, f.count_1h, f.count_24h), (1, 2, 2));
        assert!((f.sum_1h_eur - 30.0).abs() < 1e-9);
        let f = s.features(&txn("b", T0 + HOUR_MS, 20.0));
        assert_eq!((f.count_1m, f.count_1h, f.count_24h), (1, 1, 2));
        assert!((f.sum_1h_eur - 20.0).abs() < 1e-9 && (f.sum_24h_eur - 30.0).abs() < 1e-9);
        let f = s.features(&txn("b", T0 + DAY_MS, 20.0));
        assert_eq!((f.count_1m, f.count_1h, f.count_24h), (1, 1, 1));
    }

    #[test]
    fn the_state_keeps_one_day_and_at_most_recent_transactions() {
        let mut s = UserState::default();
        let ids = orders(RECENT + 10);
        for (i, id) in ids.iter().enumerate() {
            s.count(&txn(id, T0 + i as i64 * 1000, 5.0));
        }
        assert_eq!(s.recent.len(), RECENT);
        assert_eq!(s.recent[0].o, ids[10], "the oldest left");
        assert_eq!(
            s.amounts.n,
            (RECENT + 10) as u64,
            "the statistics count every one"
        );
        let f = s.features(&txn("next", T0 + 100_000, 5.0));
        assert_eq!(f.count_24h, RECENT as u32, "counts saturate at RECENT");
        s.count(&txn("tomorrow", T0 + DAY_MS + 100_000, 5.0));
        assert_eq!(s.recent.len(), 1, "a day later only the new one is left");
    }

    #[test]
    fn a_transaction_seen_before_is_not_counted_again() {
        let mut s = UserState::default();
        s.count(&txn("a", T0, 10.0));
        let before = s.clone();
        s.count(&txn("a", T0, 10.0));
        assert_eq!(s, before);
        assert!(s.has_seen("a") && !s.has_seen("b"));
    }

    #[test]
    fn the_z_score_measures_the_amount_against_the_users_history() {
        let mut s = UserState::default();
        assert_eq!(
            s.features(&txn("x", T0, 5000.0)).amount_z,
            0.0,
            "no history"
        );
        for (i, eur) in [20.0, 25.0, 30.0, 22.0, 28.0].iter().enumerate() {
            s.count(&txn(orders(5)[i], T0 + i as i64, *eur));
        }
        let usual = s.features(&txn("u", T0 + 10, 25.0)).amount_z;
        let outlier = s.features(&txn("x", T0 + 10, 2500.0)).amount_z;
        assert!(usual.abs() < 0.5, "{usual}");
        assert!(outlier > 10.0, "{outlier}");
        // Welford agrees with the two-pass formula.
        let logs: Vec<f64> = [20.0f64, 25.0, 30.0, 22.0, 28.0]
            .iter()
            .map(|e| e.ln_1p())
            .collect();
        let mean = logs.iter().sum::<f64>() / 5.0;
        let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!((s.amounts.mean - mean).abs() < 1e-12);
        assert!((s.amounts.std_dev().unwrap() - var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn distinct_fingerprints_and_countries_count_each_once() {
        let mut s = UserState::default();
        for (i, (fp, c)) in [("f1", "DE"), ("f2", "DE"), ("f2", "FR"), ("f3", "PL")]
            .iter()
            .enumerate()
        {
            s.count(&Txn {
                fingerprint: fp,
                ship_country: c,
                ..txn(orders(4)[i], T0 + i as i64 * 1000, 1.0)
            });
        }
        let f = s.features(&Txn {
            fingerprint: "f1",
            ship_country: "DE",
            ..txn("n", T0 + 10_000, 1.0)
        });
        assert_eq!((f.fingerprints_24h, f.ship_countries_24h), (3, 3));
        let f = s.features(&Txn {
            fingerprint: "f9",
            ship_country: "US",
            ..txn("n", T0 + 3000 + DAY_MS, 1.0)
        });
        assert_eq!(
            (f.fingerprints_24h, f.ship_countries_24h),
            (1, 1),
            "a day later"
        );
    }

    #[test]
    fn account_age_time_since_previous_country_and_first() {
        let mut s = UserState::default();
        let first = txn("a", T0, 10.0);
        let f = s.features(&first);
        assert!(f.first && f.secs_since_prev.is_none() && !f.ships_abroad);
        assert!((f.account_age_days.unwrap() - 400.0).abs() < 1e-9);
        s.count(&first);
        let f = s.features(&Txn {
            ship_country: "NG",
            ..txn("b", T0 + 90_000, 10.0)
        });
        assert!(!f.first && f.ships_abroad);
        assert_eq!(f.secs_since_prev, Some(90.0));
        let f = s.features(&Txn {
            profile_country: None,
            account_created_ms: None,
            ..txn("b", T0 + 90_000, 10.0)
        });
        assert!(
            !f.ships_abroad && f.account_age_days.is_none(),
            "unknown is not risk"
        );
    }

    #[test]
    fn records_out_of_order_keep_the_state_sorted() {
        let mut s = UserState::default();
        s.count(&txn("b", T0 + 2000, 1.0));
        s.count(&txn("a", T0 + 1000, 1.0));
        assert_eq!(
            s.recent.iter().map(|r| r.o.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(s.last_ms, Some(T0 + 2000));
    }
}
