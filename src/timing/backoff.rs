//! When to reconnect: exponential backoff with full jitter, and which endings deserve a retry.
//! Pure: the random draw and the ending are passed in.

use crate::proto::close::CloseCode;
use std::time::Duration;

/// A reconnection schedule: attempt `n` (from 0) waits a uniformly random time between zero and
/// `min(max_delay, initial_delay × 2ⁿ)` — "full jitter", so clients cut off together do not come
/// back together.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The ceiling of the first wait. Defaults to 500 ms.
    pub initial_delay: Duration,
    /// The ceiling no wait exceeds. Defaults to 30 s.
    pub max_delay: Duration,
    /// Attempts in a row before giving up; `None` retries forever. Defaults to `None`.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// Waits starting below `initial_delay` and doubling up to `max_delay`, retrying forever.
    pub fn new(initial_delay: Duration, max_delay: Duration) -> Backoff {
        Backoff {
            initial_delay,
            max_delay,
            max_attempts: None,
        }
    }

    /// Gives up after `attempts` attempts in a row.
    pub fn max_attempts(mut self, attempts: u32) -> Backoff {
        self.max_attempts = Some(attempts);
        self
    }

    /// The wait before attempt `attempt` (0 is the first retry), given a uniform draw in [0, 1);
    /// `None` once `max_attempts` are used up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use syncws::Backoff;
    /// let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8)).max_attempts(10);
    /// // The ceiling doubles: 1 s, 2 s, 4 s, then stays at 8 s; the draw picks a point below it.
    /// assert_eq!(backoff.delay(2, 0.5), Some(Duration::from_secs(2)));
    /// assert_eq!(backoff.delay(9, 0.5), Some(Duration::from_secs(4)));
    /// assert_eq!(backoff.delay(10, 0.5), None);
    /// ```
    pub fn delay(&self, attempt: u32, draw: f64) -> Option<Duration> {
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            return None;
        }
        // `clamp` keeps NaN; and near `Duration::MAX`, f64 rounding can overshoot what a
        // `Duration` holds: both would make `mul_f64` panic.
        let draw = if draw.is_nan() {
            0.0
        } else {
            draw.clamp(0.0, 1.0)
        };
        let ceiling = self.ceiling(attempt);
        let wait = Duration::try_from_secs_f64(ceiling.as_secs_f64() * draw).unwrap_or(ceiling);
        Some(wait.min(ceiling))
    }

    /// The largest wait attempt `attempt` can draw.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// Which endings a reconnecting client retries after.
///
/// By default it retries after 1001 (going away), 1006 (the connection dropped), 1011, 1012, 1013
/// and 1014 (server trouble, restarts, overload, gateways) — and after any failure to connect —
/// and stops after 1000 (a deliberate close), 1002, 1003, 1007, 1008, 1009 and 1010 (retrying
/// would fail the same way). Other codes stop unless listed in `also_retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Codes to retry after beyond the defaults (e.g. 1008 if a policy failure is transient).
    pub also_retry: Vec<u16>,
    /// Codes never to retry after, overriding the defaults.
    pub never_retry: Vec<u16>,
}

impl RetryPolicy {
    /// Also retries after the close codes in `codes`.
    pub fn also_retry(mut self, codes: impl IntoIterator<Item = u16>) -> RetryPolicy {
        self.also_retry.extend(codes);
        self
    }

    /// Never retries after the close codes in `codes`, whatever the defaults say.
    pub fn never_retry(mut self, codes: impl IntoIterator<Item = u16>) -> RetryPolicy {
        self.never_retry.extend(codes);
        self
    }

    /// Whether a connection that ended with `code` should be reopened.
    ///
    /// ```
    /// use syncws::{CloseCode, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert!(policy.should_retry(CloseCode::ServiceRestart));
    /// assert!(!policy.should_retry(CloseCode::Policy));
    /// ```
    pub fn should_retry(&self, code: CloseCode) -> bool {
        let code = code.as_u16();
        if self.never_retry.contains(&code) {
            return false;
        }
        if self.also_retry.contains(&code) {
            return true;
        }
        matches!(code, 1001 | 1006 | 1011 | 1012 | 1013 | 1014)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let backoff = Backoff {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: None,
        };
        let ceilings: Vec<u128> = (0..6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, 0.0), Some(Duration::ZERO));
        assert_eq!(backoff.delay(3, 1.0), Some(backoff.ceiling(3)));
        assert_eq!(backoff.delay(3, 7.0), Some(backoff.ceiling(3)));
    }

    #[test]
    fn a_draw_that_is_not_a_number_waits_nothing_instead_of_panicking() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, f64::NAN), Some(Duration::ZERO));
        let huge = Backoff {
            initial_delay: Duration::MAX,
            max_delay: Duration::MAX,
            max_attempts: None,
        };
        assert!(huge.delay(40, 1.0).is_some());
    }

    #[test]
    fn attempts_run_out() {
        let backoff = Backoff {
            max_attempts: Some(2),
            ..Backoff::default()
        };
        assert!(backoff.delay(1, 0.5).is_some());
        assert_eq!(backoff.delay(2, 0.5), None);
    }

    #[test]
    fn codes_retried_and_not() {
        let policy = RetryPolicy::default();
        for code in [1001, 1006, 1011, 1012, 1013, 1014] {
            assert!(policy.should_retry(CloseCode::from(code)), "{code}");
        }
        for code in [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4000] {
            assert!(!policy.should_retry(CloseCode::from(code)), "{code}");
        }
        let custom = RetryPolicy {
            also_retry: vec![1008],
            never_retry: vec![1006],
        };
        assert!(custom.should_retry(CloseCode::Policy));
        assert!(!custom.should_retry(CloseCode::Abnormal));
    }
}
