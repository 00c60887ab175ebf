//! Retries: which failures are retried, how long to back off, and whether the cluster still has
//! room for another concurrent retry.
//!
//! # Semantics and sources
//!
//! * **Number of retries** (Istio `HTTPRetry.attempts` → Envoy `num_retries`): the number of
//!   *retries* after the first try. Istio's default policy has `attempts: 2`, so a request is
//!   tried at most 3 times. A [`RetryState`] per request counts the retries used.
//! * **Retry conditions** (Envoy `RetryStateImpl::wouldRetryFromHeaders` /
//!   `wouldRetryFromReset`, router docs `x-envoy-retry-on`): `5xx` retries any 5xx and any
//!   attempt that got no response (reset, connect failure, refused stream, per-try timeout);
//!   `gateway-error` the same for 502/503/504; `reset` retries attempts without a response;
//!   `connect-failure` and `refused-stream` only those; `retriable-4xx` retries 409;
//!   `retriable-status-codes` the listed codes. A 503 the proxy generated itself because a
//!   circuit breaker overflowed (`x-envoy-overloaded`) is never retried. Istio's default
//!   (`connect-failure,refused-stream,unavailable,cancelled,503`) does *not* retry a 500.
//! * **Back-off** (Envoy `JitteredExponentialBackOffStrategy` in `backoff_strategy.cc`): retry
//!   *n* (1-based) waits a uniformly random time in `[0, min(base·2^(n−1), max))` — "full
//!   jitter" — with base 25 ms and max 10 × base = 250 ms by default: `[0,25)`, `[0,50)`,
//!   `[0,100)`, `[0,200)`, `[0,250)` ms … The router docs describe the range as
//!   `[0, (2^N − 1)·base)`, which was the earlier implementation (1, 3, 7 × base); we follow
//!   the current code. Envoy works in whole milliseconds; we use nanoseconds.
//! * **Retry budget** (Envoy `ResourceManagerImpl::RetryBudgetImpl`): a retry may start only if
//!   `active_retries < max(⌊budget% / 100 × (active + pending requests)⌋, min_retry_concurrency)`
//!   (20 % and 3 by default), computed in floating point and truncated exactly as Envoy does.
//!   A retry counts as active from the decision to retry until that retry finishes. Without a
//!   budget the classic circuit breaker applies: `active_retries < max_retries`. When the
//!   budget says no, Envoy returns the failed response to the caller (`upstream_rq_retry_overflow`).
//! * **Per-try timeout** is [`RetryPolicy::per_try_timeout`]; the caller arms it and reports
//!   [`AttemptOutcome::PerTryTimeout`] when it fires.

use crate::config::{RetryCondition as C, RetryLimit, RetryPolicy};
use crate::time::Nanos;

/// How one try of a request ended, as the retry policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered with this status code.
    Response(u16),
    /// The upstream reset or closed the stream without a response.
    Reset,
    /// The connection could not be established.
    ConnectFailure,
    /// The upstream refused the stream (HTTP/2 REFUSED_STREAM).
    RefusedStream,
    /// The per-try timeout fired.
    PerTryTimeout,
    /// The proxy itself refused the try because a circuit breaker overflowed (Envoy's local 503
    /// with `x-envoy-overloaded`); never retried.
    LocalOverflow,
}

/// Whether `outcome` matches one of the policy's retry conditions (ignoring how many retries
/// are left).
pub fn is_retriable(policy: &RetryPolicy, outcome: AttemptOutcome) -> bool {
    let on = &policy.retry_on;
    let no_response =
        on.contains(C::FiveXx) || on.contains(C::GatewayError) || on.contains(C::Reset);
    match outcome {
        AttemptOutcome::Response(code) => {
            (on.contains(C::FiveXx) && (500..=599).contains(&code))
                || (on.contains(C::GatewayError) && (502..=504).contains(&code))
                || (on.contains(C::Retriable4xx) && code == 409)
                || (on.contains(C::RetriableStatusCodes) && on.status_codes().contains(&code))
        }
        AttemptOutcome::Reset | AttemptOutcome::PerTryTimeout => no_response,
        AttemptOutcome::ConnectFailure => no_response || on.contains(C::ConnectFailure),
        AttemptOutcome::RefusedStream => no_response || on.contains(C::RefusedStream),
        AttemptOutcome::LocalOverflow => false,
    }
}

/// The back-off before retry number `retry` (1-based) for a uniform random `draw`:
/// `draw mod min(base·2^(retry−1), max)`. `retry = 0` is treated as 1.
pub fn backoff(policy: &RetryPolicy, retry: u32, draw: u64) -> Nanos {
    let base = policy.backoff_base_interval.max(1);
    let max = policy.max_interval().max(base);
    let doublings = retry.saturating_sub(1).min(63);
    let interval = base
        .checked_shl(doublings)
        .filter(|&i| i >> doublings == base)
        .unwrap_or(max);
    draw % interval.min(max)
}

/// Per-request retry progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    retries_used: u32,
}

impl RetryState {
    /// A request that has not been retried yet.
    pub fn new() -> Self {
        RetryState::default()
    }

    /// Retries already started for this request.
    pub fn retries_used(&self) -> u32 {
        self.retries_used
    }

    /// Whether the policy wants to retry after this outcome: a retry is left and the outcome
    /// matches a retry condition. The caller must still ask the [`RetryBudget`].
    pub fn should_retry(&self, policy: &RetryPolicy, outcome: AttemptOutcome) -> bool {
        self.retries_used < policy.attempts && is_retriable(policy, outcome)
    }

    /// Records that a retry is starting and returns its back-off (see [`backoff`]).
    pub fn start_retry(&mut self, policy: &RetryPolicy, draw: u64) -> Nanos {
        self.retries_used += 1;
        backoff(policy, self.retries_used, draw)
    }
}

/// The cluster-wide limit on concurrent retries (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryBudget {
    limit: RetryLimit,
}

impl RetryBudget {
    /// A budget enforcing `limit`.
    pub fn new(limit: RetryLimit) -> Self {
        RetryBudget { limit }
    }

    /// The limit in force.
    pub fn limit(&self) -> &RetryLimit {
        &self.limit
    }

    /// Replaces the limit (CDS update).
    pub fn set_limit(&mut self, limit: RetryLimit) {
        self.limit = limit;
    }

    /// The most retries that may be in flight with `active_requests` active + pending requests.
    pub fn max_active_retries(&self, active_requests: u64) -> u64 {
        match &self.limit.budget {
            Some(b) => {
                // Envoy: std::max<uint64_t>(budget_percent / 100.0 * active, min) — truncating.
                let share = (b.budget_percent / 100.0 * active_requests as f64) as u64;
                share.max(u64::from(b.min_retry_concurrency))
            }
            None => u64::from(self.limit.max_retries),
        }
    }

    /// Whether one more retry may start now.
    #[inline]
    pub fn try_acquire(&self, active_requests: u64, active_retries: u64) -> bool {
        active_retries < self.max_active_retries(active_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RetryBudgetConfig, RetryOn};
    use crate::time::MILLISECOND;
    use proptest::prelude::*;

    fn policy(retry_on: &str) -> RetryPolicy {
        RetryPolicy {
            retry_on: RetryOn::parse(retry_on).expect("valid retryOn"),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn istio_default_retries_503_and_connect_failures_but_not_500() {
        let p = RetryPolicy::default();
        assert!(is_retriable(&p, AttemptOutcome::Response(503)));
        assert!(is_retriable(&p, AttemptOutcome::ConnectFailure));
        assert!(is_retriable(&p, AttemptOutcome::RefusedStream));
        assert!(!is_retriable(&p, AttemptOutcome::Response(500)));
        assert!(!is_retriable(&p, AttemptOutcome::Response(502)));
        assert!(!is_retriable(&p, AttemptOutcome::Response(200)));
        assert!(!is_retriable(&p, AttemptOutcome::Reset));
        assert!(!is_retriable(&p, AttemptOutcome::PerTryTimeout));
        assert!(!is_retriable(&p, AttemptOutcome::LocalOverflow));
    }

    #[test]
    fn retry_conditions_follow_envoy() {
        let p = policy("5xx");
        for code in [500, 502, 503, 504, 599] {
            assert!(is_retriable(&p, AttemptOutcome::Response(code)), "{code}");
        }
        assert!(!is_retriable(&p, AttemptOutcome::Response(429)));
        assert!(is_retriable(&p, AttemptOutcome::Reset));
        assert!(is_retriable(&p, AttemptOutcome::PerTryTimeout));
        assert!(is_retriable(&p, AttemptOutcome::ConnectFailure));
        assert!(!is_retriable(&p, AttemptOutcome::LocalOverflow));

        let p = policy("gateway-error");
        assert!(is_retriable(&p, AttemptOutcome::Response(504)));
        assert!(!is_retriable(&p, AttemptOutcome::Response(500)));

        let p = policy("connect-failure");
        assert!(is_retriable(&p, AttemptOutcome::ConnectFailure));
        assert!(!is_retriable(&p, AttemptOutcome::Reset));

        let p = policy("retriable-4xx,429");
        assert!(is_retriable(&p, AttemptOutcome::Response(409)));
        assert!(is_retriable(&p, AttemptOutcome::Response(429)));
        assert!(!is_retriable(&p, AttemptOutcome::Response(404)));
    }

    #[test]
    fn attempts_two_means_three_tries() {
        let p = RetryPolicy::default();
        let mut s = RetryState::new();
        // Try 1 fails with 503 → retry 1; try 2 fails → retry 2; try 3 fails → give up.
        assert!(s.should_retry(&p, AttemptOutcome::Response(503)));
        s.start_retry(&p, 0);
        assert!(s.should_retry(&p, AttemptOutcome::Response(503)));
        s.start_retry(&p, 0);
        assert!(!s.should_retry(&p, AttemptOutcome::Response(503)));
        assert_eq!(s.retries_used(), 2);
    }

    #[test]
    fn backoff_is_full_jitter_on_a_doubling_capped_interval() {
        let p = RetryPolicy::default(); // base 25 ms, max 250 ms
        // Intervals: retry 1 → 25 ms, 2 → 50, 3 → 100, 4 → 200, 5+ → 250 (capped).
        let top = u64::MAX;
        assert_eq!(backoff(&p, 1, 25 * MILLISECOND - 1), 25 * MILLISECOND - 1);
        assert_eq!(backoff(&p, 1, 25 * MILLISECOND), 0);
        // 37 ms mod 25 ms = 12 ms; mod 50 ms = 37 ms.
        assert_eq!(backoff(&p, 1, 37 * MILLISECOND), 12 * MILLISECOND);
        assert_eq!(backoff(&p, 2, 37 * MILLISECOND), 37 * MILLISECOND);
        // 260 ms mod 100 = 60; mod 200 = 60; mod 250 = 10.
        assert_eq!(backoff(&p, 3, 260 * MILLISECOND), 60 * MILLISECOND);
        assert_eq!(backoff(&p, 4, 260 * MILLISECOND), 60 * MILLISECOND);
        assert_eq!(backoff(&p, 5, 260 * MILLISECOND), 10 * MILLISECOND);
        assert_eq!(backoff(&p, 60, 260 * MILLISECOND), 10 * MILLISECOND);
        assert!(backoff(&p, 1000, top) < 250 * MILLISECOND);
        let mut s = RetryState::new();
        assert_eq!(s.start_retry(&p, 37 * MILLISECOND), 12 * MILLISECOND);
        assert_eq!(s.start_retry(&p, 37 * MILLISECOND), 37 * MILLISECOND);
    }

    #[test]
    fn istio_default_limit_is_unbounded_and_envoy_default_is_three() {
        // Istio: no budget, maxRetries 2^32 − 1, so even 10^6 concurrent retries with 1 request
        // in flight are allowed.
        let istio = RetryBudget::new(RetryLimit::default());
        assert!(istio.try_acquire(1, 1_000_000));
        // Plain Envoy: max_retries 3 whatever the load — retries 0, 1, 2 may add one, 3 may not.
        let envoy = RetryBudget::new(RetryLimit::envoy());
        assert!(envoy.try_acquire(1000, 2));
        assert!(!envoy.try_acquire(1000, 3));
    }

    #[test]
    fn retry_budget_allows_min_three_then_twenty_percent() {
        let b = RetryBudget::new(RetryLimit::envoy_budget());
        // 10 active: ⌊0.2·10⌋ = 2 < 3 → limit 3: retries 0, 1, 2 in flight may add one; 3 may not.
        assert_eq!(b.max_active_retries(10), 3);
        assert!(b.try_acquire(10, 2));
        assert!(!b.try_acquire(10, 3));
        // 0 active still allows 3 (the floor).
        assert!(b.try_acquire(0, 2));
        // 14 active: ⌊2.8⌋ = 2 → 3. 20 active: 4. 100 active: 20.
        assert_eq!(b.max_active_retries(14), 3);
        assert_eq!(b.max_active_retries(20), 4);
        assert_eq!(b.max_active_retries(100), 20);
        assert!(b.try_acquire(100, 19));
        assert!(!b.try_acquire(100, 20));

        let tight = RetryBudget::new(RetryLimit {
            budget: Some(RetryBudgetConfig {
                budget_percent: 5.0,
                min_retry_concurrency: 1,
            }),
            max_retries: 1000,
        });
        // 5 % of 100 = 5; the budget wins over maxRetries when present.
        assert_eq!(tight.max_active_retries(100), 5);

        let classic = RetryBudget::new(RetryLimit {
            budget: None,
            max_retries: 3,
        });
        // Circuit breaker: a flat 3 whatever the load.
        assert_eq!(classic.max_active_retries(1_000_000), 3);
        assert!(!classic.try_acquire(1_000_000, 3));
    }

    proptest! {
        #[test]
        fn backoff_stays_below_the_interval(retry in 0u32..200, draw in any::<u64>(),
                                            base_ms in 1u64..100, factor in 1u64..20) {
            let p = RetryPolicy {
                backoff_base_interval: base_ms * MILLISECOND,
                backoff_max_interval: Some(base_ms * factor * MILLISECOND),
                ..RetryPolicy::default()
            };
            let b = backoff(&p, retry, draw);
            let n = retry.max(1);
            let interval = if n > 30 { p.max_interval() } else {
                (p.backoff_base_interval << (n - 1)).min(p.max_interval())
            };
            prop_assert!(b < interval);
        }

        #[test]
        fn budget_never_below_the_floor(active in 0u64..1_000_000, pct in 0.0f64..100.0, min in 0u32..50) {
            let b = RetryBudget::new(RetryLimit {
                budget: Some(RetryBudgetConfig { budget_percent: pct, min_retry_concurrency: min }),
                max_retries: 0,
            });
            let m = b.max_active_retries(active);
            prop_assert!(m >= u64::from(min));
            prop_assert!(m as f64 <= (pct / 100.0 * active as f64).max(f64::from(min)) + 1e-9);
        }
    }
}
