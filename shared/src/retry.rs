//! One backoff formula for every loop in the codebase that waits before trying again:
//! a transaction that met only conflicts, a version race lost, keys or writes DynamoDB left
//! unprocessed under throttling, events the bus refused, an idempotency claim not completed.
//!
//! The pause before retry `n` (1 for the first retry) is `first × factorⁿ⁻¹`, at most `cap`,
//! and with full jitter a uniformly random duration between zero and that (AWS's advice
//! for clients that meet each other on the same item or the same throttled partition:
//! "Exponential Backoff And Jitter", AWS Architecture Blog). Each caller picks one of the
//! named policies below, so every pause of the codebase is read in one place.
//!
//! The saga's own retries are not here: Step Functions retries a failed step with the
//! definition's `Retry` (infra/state-machines/), and the queues and streams redeliver by
//! their visibility timeout and mapping settings.

use std::time::Duration;

/// How the pause is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// The computed pause itself: one caller retrying on its own (nothing to spread out).
    None,
    /// A random pause between zero and the computed one: callers that met on one item
    /// or partition do not meet again at the same instant.
    Full,
}

/// An exponential backoff policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The pause before the first retry (before jitter).
    pub first: Duration,
    /// What each further retry multiplies the pause by.
    pub factor: u32,
    /// The longest pause (before jitter).
    pub cap: Duration,
    /// How the pause is spread.
    pub jitter: Jitter,
}

/// A transaction cancelled only by conflicts with other transactions, or an optimistic
/// update that lost a race on an item's version: concurrent writers on a hot item spread
/// out (up to 50 ms, doubled per retry, at most 1 s; `shared::dynamo::transact`).
pub const CONFLICT: Backoff = Backoff {
    first: Duration::from_millis(50),
    factor: 2,
    cap: Duration::from_secs(1),
    jitter: Jitter::Full,
};

/// Keys or writes a batch request left unprocessed (DynamoDB's answer to throttling):
/// retried after up to 100 ms, doubled per retry, at most 2 s.
pub const UNPROCESSED: Backoff = Backoff {
    first: Duration::from_millis(100),
    factor: 2,
    cap: Duration::from_secs(2),
    jitter: Jitter::Full,
};

/// Entries the bus refused or a `PutEvents` that failed (the relay's resend within one
/// batch): 100 ms, then 400 ms, then 1.6 s; past that the stream mapping retries the batch.
pub const BUS_RESEND: Backoff = Backoff {
    first: Duration::from_millis(100),
    factor: 4,
    cap: Duration::from_secs(2),
    jitter: Jitter::None,
};

/// Completing an idempotency claim after the operation succeeded: 400 ms, then 1.6 s, so a
/// brief outage of the table does not leave a done operation looking unfinished.
pub const CLAIM_COMPLETION: Backoff = Backoff {
    first: Duration::from_millis(400),
    factor: 4,
    cap: Duration::from_secs(2),
    jitter: Jitter::None,
};

/// A request to the payment provider that timed out or was answered 429 or 5xx, sent again
/// with its idempotency key within the step (`functions/payments/src/stripe.rs`): up to
/// 400 ms, doubled, at most 1 s, so that the step's retries stay inside its timeout.
pub const PROVIDER_REQUEST: Backoff = Backoff {
    first: Duration::from_millis(400),
    factor: 2,
    cap: Duration::from_secs(1),
    jitter: Jitter::Full,
};

impl Backoff {
    /// The longest pause before retry `retry` (1 for the first): the formula without jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let mut pause = self.first;
        for _ in 1..retry {
            pause = pause.saturating_mul(self.factor);
            if pause >= self.cap {
                return self.cap;
            }
        }
        pause.min(self.cap)
    }

    /// The pause before retry `retry` (1 for the first), jittered as the policy says.
    pub fn pause(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => {
                let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
                Duration::from_micros(random_u64() % ceiling_us.saturating_add(1))
            }
        }
    }

    /// Waits the pause before retry `retry` (1 for the first).
    pub async fn wait(&self, retry: u32) {
        tokio::time::sleep(self.pause(retry)).await;
    }
}

/// 64 random bits from a ULID's randomness (the crate every function already carries).
fn random_u64() -> u64 {
    u64::try_from(ulid::Ulid::new().random() & u128::from(u64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_grows_by_the_factor_up_to_the_cap() {
        let ms = |d: Duration| d.as_millis();
        assert_eq!(
            (1..=7).map(|n| ms(CONFLICT.ceiling(n))).collect::<Vec<_>>(),
            [50, 100, 200, 400, 800, 1000, 1000]
        );
        assert_eq!(
            (1..=4)
                .map(|n| ms(BUS_RESEND.ceiling(n)))
                .collect::<Vec<_>>(),
            [100, 400, 1600, 2000]
        );
        assert_eq!(CLAIM_COMPLETION.ceiling(2), Duration::from_millis(1600));
        // A retry count far past the cap neither overflows nor grows.
        assert_eq!(UNPROCESSED.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn without_jitter_the_pause_is_the_ceiling() {
        for n in 1..6 {
            assert_eq!(BUS_RESEND.pause(n), BUS_RESEND.ceiling(n));
        }
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling_and_spreads() {
        let pauses: Vec<Duration> = (0..200).map(|_| CONFLICT.pause(3)).collect();
        assert!(pauses.iter().all(|p| *p <= CONFLICT.ceiling(3)));
        let distinct: std::collections::BTreeSet<_> = pauses.iter().collect();
        // 200 draws from 200,001 microsecond values: all alike would mean no jitter.
        assert!(distinct.len() > 100, "{} distinct pauses", distinct.len());
    }
}
