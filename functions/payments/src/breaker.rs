//! The circuit breaker in front of the payment provider, one per function instance.
//!
//! Closed, it counts each call's outcome over a sliding window; when at least
//! [`Policy::min_failures`] calls failed (no answer in time, 5xx, 429, no connection) and
//! they are at least [`Policy::failure_ratio`] of the window's calls, it opens: for
//! [`Policy::open_for`] every call fails at once with
//! [`ProviderError::Unavailable`], which authorize answers as `PaymentUnavailable` (the
//! saga rejects the order cleanly and lets nothing wait on a provider that is down). Then
//! one call is let through (half open): its success closes the breaker, its failure opens
//! it again. A decline or a refusal is an answer, so it counts as a success: the provider
//! is up.
//!
//! Every change of state is a log line (`payment provider circuit ...`) and a metrics line
//! (`PaymentProviderCircuitOpened` / `...Closed`, namespace `Commerce`), so an alarm can
//! follow it. The state is per instance, as each Lambda instance sees the provider on its
//! own; an instance that opened fails fast while the others still probe.

use crate::provider::ProviderError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The window outcomes are counted over.
    pub window: Duration,
    /// Failures in the window before it may open.
    pub min_failures: u32,
    /// Share of the window's calls that failed before it opens.
    pub failure_ratio: f64,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

impl Default for Policy {
    /// Ten failures that are half the calls of 30 seconds open it for 30 seconds: a
    /// provider outage trips it within seconds at any traffic, while one customer's slow
    /// card (a few timeouts among other calls) does not.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            min_failures: 10,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// Where the breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// One probe is out.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: State,
    opened_at: Option<Instant>,
    /// Outcomes in the window: (when, failed).
    outcomes: std::collections::VecDeque<(Instant, bool)>,
}

/// The breaker. Cheap to share (`&Breaker` in every call).
#[derive(Debug)]
pub struct Breaker {
    policy: Policy,
    inner: Mutex<Inner>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(Policy::default())
    }
}

/// A call the breaker let through; [`Permit::record`] its outcome.
#[must_use]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Permit<'_> {
    /// Counts the call: `ok` when the provider answered (success, decline or refusal).
    pub fn record(self, ok: bool) {
        self.breaker.record(ok, self.probe, Instant::now());
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            inner: Mutex::new(Inner {
                state: State::Closed,
                opened_at: None,
                outcomes: std::collections::VecDeque::new(),
            }),
        }
    }

    /// Where it is now.
    pub fn state(&self) -> State {
        self.lock().state
    }

    /// A permit for one call, or [`ProviderError::Unavailable`] while open.
    pub fn permit(&self) -> Result<Permit<'_>, ProviderError> {
        self.permit_at(Instant::now())
    }

    fn permit_at(&self, now: Instant) -> Result<Permit<'_>, ProviderError> {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Ok(Permit {
                breaker: self,
                probe: false,
            }),
            State::Open
                if inner
                    .opened_at
                    .is_some_and(|at| now.duration_since(at) >= self.policy.open_for) =>
            {
                inner.state = State::HalfOpen;
                transition("half-open", "PaymentProviderCircuitHalfOpen");
                Ok(Permit {
                    breaker: self,
                    probe: true,
                })
            }
            State::Open | State::HalfOpen => Err(ProviderError::Unavailable(
                "the circuit breaker is open: the provider failed repeatedly".into(),
            )),
        }
    }

    fn record(&self, ok: bool, probe: bool, now: Instant) {
        let mut inner = self.lock();
        if probe {
            inner.outcomes.clear();
            if ok {
                inner.state = State::Closed;
                inner.opened_at = None;
                transition("closed", "PaymentProviderCircuitClosed");
            } else {
                inner.state = State::Open;
                inner.opened_at = Some(now);
                transition("open again", "PaymentProviderCircuitOpened");
            }
            return;
        }
        inner.outcomes.push_back((now, !ok));
        while inner
            .outcomes
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.policy.window)
        {
            inner.outcomes.pop_front();
        }
        let failures = inner.outcomes.iter().filter(|(_, failed)| *failed).count();
        let calls = inner.outcomes.len();
        #[allow(clippy::cast_precision_loss)]
        let ratio = failures as f64 / calls.max(1) as f64;
        if inner.state == State::Closed
            && u32::try_from(failures).unwrap_or(u32::MAX) >= self.policy.min_failures
            && ratio >= self.policy.failure_ratio
        {
            inner.state = State::Open;
            inner.opened_at = Some(now);
            inner.outcomes.clear();
            tracing::warn!(failures, calls, "payment provider circuit open");
            transition("open", "PaymentProviderCircuitOpened");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The log line and the metrics line of a change of state.
fn transition(to: &str, metric: &str) {
    tracing::warn!(state = to, "payment provider circuit {to}");
    println!(
        "{}",
        shared::metrics::count_emf_line(metric, shared::time::now().timestamp_millis())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            window: Duration::from_secs(30),
            min_failures: 3,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(10),
        }
    }

    fn call(b: &Breaker, now: Instant, ok: bool) -> bool {
        match b.permit_at(now) {
            Ok(p) => {
                b.record(ok, p.probe, now);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn it_opens_on_repeated_failures_fails_fast_then_probes_once() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        assert!(call(&b, t0, false));
        assert!(call(&b, t0, false));
        assert_eq!(b.state(), State::Closed);
        assert!(call(&b, t0, false));
        assert_eq!(b.state(), State::Open);
        // Open: nothing goes through until the pause is over.
        assert!(matches!(
            b.permit_at(t0 + Duration::from_secs(5)),
            Err(ProviderError::Unavailable(_))
        ));
        // Half open: one probe, and only one.
        let probe = b
            .permit_at(t0 + Duration::from_secs(11))
            .map(|p| p.probe)
            .ok();
        assert_eq!(probe, Some(true));
        assert_eq!(b.state(), State::HalfOpen);
        assert!(b.permit_at(t0 + Duration::from_secs(11)).is_err());
        // The probe failed: open again, for another pause.
        b.record(false, true, t0 + Duration::from_secs(11));
        assert_eq!(b.state(), State::Open);
        assert!(b.permit_at(t0 + Duration::from_secs(15)).is_err());
        // The next probe succeeds: closed, calls go through.
        assert!(call(&b, t0 + Duration::from_secs(22), true));
        assert_eq!(b.state(), State::Closed);
        assert!(call(&b, t0 + Duration::from_secs(22), true));
    }

    #[test]
    fn failures_among_many_answers_do_not_open_it() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        for i in 0..40 {
            // One call in four fails: above min_failures, below the ratio.
            assert!(call(&b, t0 + Duration::from_millis(i * 100), i % 4 != 0));
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        call(&b, t0, false);
        call(&b, t0, false);
        call(&b, t0 + Duration::from_secs(40), false);
        assert_eq!(
            b.state(),
            State::Closed,
            "two of the three failures are older than the window"
        );
    }
}
