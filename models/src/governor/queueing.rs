//! Queueing formulas for capacity planning: Erlang C (M/M/c) and the waiting-time quantile.
//!
//! With `c` servers each serving at rate μ and arrivals at rate λ (offered load a = λ/μ < c),
//! the chance an arrival waits is Erlang C, and the wait of one that does is exponential with
//! rate cμ − λ: P(W > t) = C(c, a)·e^{−(cμ−λ)t}.

/// Erlang C: probability that an arrival waits, for `servers` servers and offered load `a`
/// (erlangs). 1 when the system is unstable (a ≥ c).
///
/// Uses the Erlang B recursion B(k) = a·B(k−1) / (k + a·B(k−1)), which never overflows, then
/// C = c·B / (c − a·(1 − B)).
pub fn erlang_c(servers: u64, a: f64) -> f64 {
    if servers == 0 || !(a.is_finite()) || a >= servers as f64 {
        return 1.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    let mut b = 1.0;
    for k in 1..=servers {
        b = a * b / (k as f64 + a * b);
        // Once B has underflowed to 0 the recursion keeps it there, and C = c·0/(c − a) = 0: an
        // arrival never waits. Stopping here bounds the loop by the offered load (B underflows a
        // few hundred servers past a) instead of by `servers`, which an HPA's maxReplicas can
        // make billions (Kubernetes takes any int32), and the model runs at every loop.
        if b == 0.0 {
            return 0.0;
        }
    }
    let c = servers as f64;
    (c * b / (c - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// The `q`-quantile of the waiting time in an M/M/c queue (seconds), for arrival rate `lambda`
/// and per-server rate `mu` (both per second). Infinite when unstable.
pub fn wait_quantile(servers: u64, lambda: f64, mu: f64, q: f64) -> f64 {
    let Some((p_wait, drain)) = waiting(servers, lambda, mu) else {
        return f64::INFINITY;
    };
    let tail = 1.0 - q;
    // P(W > t) = p_wait·e^{−drain·t} = tail  ⇒  t = ln(p_wait / tail) / drain, or 0 if even
    // the chance of waiting at all is below the tail.
    if p_wait <= tail {
        0.0
    } else {
        (p_wait / tail).ln() / drain
    }
}

/// P(W > t) in an M/M/c queue: the share of arrivals that wait longer than `t` seconds, for
/// arrival rate `lambda` and per-server rate `mu`. 1 when unstable.
pub fn wait_tail(servers: u64, lambda: f64, mu: f64, t: f64) -> f64 {
    let Some((p_wait, drain)) = waiting(servers, lambda, mu) else {
        return 1.0;
    };
    (p_wait * (-drain * t.max(0.0)).exp()).clamp(0.0, 1.0)
}

/// The two factors of P(W > t) = C(c, a)·e^{−(cμ−λ)t}: the chance of waiting and the drain
/// rate cμ − λ; `None` where the queue is unstable or has no server.
fn waiting(servers: u64, lambda: f64, mu: f64) -> Option<(f64, f64)> {
    let drain = servers as f64 * mu - lambda;
    // Written positively so that a NaN rate is unstable too.
    (mu > 0.0 && servers > 0 && drain > 0.0).then(|| (erlang_c(servers, lambda / mu), drain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_hand_worked_values() {
        // One server: C = ρ. a = 0.5 ⇒ 0.5.
        assert!((erlang_c(1, 0.5) - 0.5).abs() < 1e-12);
        // Two servers, a = 1: B(1) = 1/2, B(2) = (1·½)/(2 + ½) = 0.2,
        // C = 2·0.2 / (2 − 1·0.8) = 0.4/1.2 = 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(erlang_c(3, 3.0), 1.0);
        assert_eq!(erlang_c(3, 0.0), 0.0);
    }

    #[test]
    fn far_more_servers_than_load_never_wait_and_answer_at_once() {
        // a = 5 erlangs: B(k) = a^k/k! / Σ_{i≤k} a^i/i! is below 1e-308 by k ≈ 250, so the
        // recursion stops there instead of running 2^40 steps.
        assert_eq!(erlang_c(1 << 40, 5.0), 0.0);
        assert_eq!(wait_quantile(1 << 40, 5.0, 1.0, 0.99), 0.0);
        // Where B has not underflowed the early exit changes nothing: 2 servers, a = 1 → 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn wait_quantile_of_mm1() {
        // M/M/1, λ = 0.5, μ = 1: P(wait) = 0.5, drain = 0.5; p99 wait = ln(0.5/0.01)/0.5
        // = ln 50 / 0.5 = 7.824 s.
        let t = wait_quantile(1, 0.5, 1.0, 0.99);
        assert!((t - 50f64.ln() / 0.5).abs() < 1e-9);
        assert!(wait_quantile(1, 1.0, 1.0, 0.99).is_infinite());
        // Lightly loaded: 10 servers at a = 1 rarely wait (C ≈ 1e-7 < 0.01) ⇒ 0.
        assert_eq!(wait_quantile(10, 1.0, 1.0, 0.99), 0.0);
    }

    #[test]
    fn wait_tail_of_mm1() {
        // M/M/1, λ = 0.5, μ = 1: P(W > t) = 0.5·e^{−0.5 t}; at the p99 wait ln 50 / 0.5 it is
        // 0.5 / 50 = 1 %, and at t = 0 the chance of waiting at all, 0.5.
        assert!((wait_tail(1, 0.5, 1.0, 50f64.ln() / 0.5) - 0.01).abs() < 1e-12);
        assert!((wait_tail(1, 0.5, 1.0, 0.0) - 0.5).abs() < 1e-12);
        assert_eq!(wait_tail(1, 1.0, 1.0, 5.0), 1.0);
        assert_eq!(wait_tail(0, 0.5, 1.0, 5.0), 1.0);
    }
}
