//! Reconnect policy: exponential backoff with full jitter, capped, with a bounded attempt budget.
//!
//! Attempt `n` (0-based) waits a uniformly random delay in `[0, min(max, initial · 2ⁿ)]`,
//! never less than `floor`. The random source is a seeded [`StdRng`], so a fixed seed gives a
//! reproducible schedule.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Parameters of the reconnect schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first attempt's delay.
    pub initial: Duration,
    /// Largest ceiling any attempt may have.
    pub max: Duration,
    /// Smallest delay ever returned (avoids hot loops when the jitter draws near zero).
    pub floor: Duration,
    /// How many attempts are allowed before giving up.
    pub max_attempts: u32,
}

impl Default for BackoffPolicy {
    /// 250 ms initial ceiling, doubling to at most 10 s, 50 ms floor, 10 attempts.
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
            floor: Duration::from_millis(50),
            max_attempts: 10,
        }
    }
}

impl BackoffPolicy {
    /// The ceiling for attempt `attempt` (0-based): `min(max, initial · 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// A running backoff schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// A schedule drawing jitter from an RNG seeded with `seed` (deterministic).
    pub fn with_seed(policy: BackoffPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A schedule with an entropy-seeded RNG.
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: StdRng::from_entropy(),
        }
    }

    /// The delay before the next attempt, or `None` when the budget is spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempt >= self.policy.max_attempts {
            return None;
        }
        let ceiling = self.policy.ceiling(self.attempt);
        self.attempt += 1;
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let drawn = Duration::from_nanos(self.rng.gen_range(0..=nanos));
        Some(drawn.max(self.policy.floor.min(ceiling)))
    }

    /// Attempts used so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The policy in force.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            floor: Duration::from_millis(10),
            max_attempts: 6,
        }
    }

    #[test]
    fn ceilings_double_and_cap() {
        let p = policy();
        let ms: Vec<u128> = (0..6).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(200), Duration::from_millis(1000));
    }

    #[test]
    fn delays_stay_within_jitter_bounds_and_budget() {
        let p = policy();
        let mut b = Backoff::with_seed(p, 7);
        for attempt in 0..6 {
            let d = b.next_delay().unwrap();
            assert!(d <= p.ceiling(attempt), "attempt {attempt}: {d:?}");
            assert!(d >= p.floor, "attempt {attempt}: {d:?}");
        }
        assert_eq!(b.attempts(), 6);
        assert_eq!(b.next_delay(), None);
        assert_eq!(b.next_delay(), None);
    }

    #[test]
    fn same_seed_same_schedule_different_seed_differs() {
        let run = |seed| {
            let mut b = Backoff::with_seed(policy(), seed);
            std::iter::from_fn(|| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_eq!(run(42).len(), 6);
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn reset_restores_budget() {
        let mut b = Backoff::with_seed(policy(), 1);
        while b.next_delay().is_some() {}
        b.reset();
        assert_eq!(b.attempts(), 0);
        let d = b.next_delay().unwrap();
        assert!(d <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_is_spread_not_constant() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let mut b = Backoff::with_seed(policy(), seed);
            seen.insert(b.next_delay().unwrap());
        }
        assert!(seen.len() > 10, "{seen:?}");
    }

    #[test]
    fn zero_budget_gives_up_at_once() {
        let mut b = Backoff::with_seed(
            BackoffPolicy {
                max_attempts: 0,
                ..policy()
            },
            0,
        );
        assert_eq!(b.next_delay(), None);
    }
}
