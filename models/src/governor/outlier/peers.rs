//! One endpoint beside its peers at the same moments: the comparison behind "fails
//! significantly more than the rest of its cluster" (`survey`).
//!
//! `compared` lines the endpoint's recent points up with its peers' (the rest of its cluster)
//! and yields two measures of surprise, both judged at `ALPHA_OUTLIER` by the survey:
//!
//! * against a known rate — the endpoint's errors under a binomial at p₀ = max(the peers'
//!   rate, the error budget); the budget floor keeps an endpoint inside the objective from
//!   being an outlier however clean its peers are;
//! * against the peers' own counts (`Compared::tail_given_totals`) — the peers' rate is
//!   measured, not known: beside one peer it comes from about as few requests as the
//!   endpoint's own, and a peer's "0 errors in 600 requests" (p₀ floored to a 0.1 % budget)
//!   is as consistent with 0.3 %. Given each point's requests and errors in all (the
//!   endpoint's and its peers'), were they all failing alike the endpoint's errors at the
//!   point are its requests' draw from that pool: hypergeometric, Fisher's exact test. The
//!   points are summed (the exact conditional test of no difference across strata, as in
//!   Cochran–Mantel–Haenszel's exact form) rather than pooled, for the reason `compared` is.
//!
//! Why both: errors of a small queue overflowing in a traffic peak are not independent
//! draws — they come in a run at whichever pod's queue is full at that instant. Worked example
//! (`h121-outlier-ejection-in-overflowing-bursts`, 525 s): pod `v0-1` of two, 8 errors in 256
//! requests at the newest 5-s point and none at the three before (566 requests in all), its peer
//! none in the same four points (602). Against the 0.1 % floor, P(X ≥ 8 | 566, 0.001) =
//! 1.5·10⁻⁷: an outlier, and it was ejected, halving the capacity in the next peak (311 failed
//! requests against 3 left alone). Given the point's 8 errors in 536 requests, all 8 among
//! `v0-1`'s 256 has probability C(256, 8) / C(536, 8) = 2.6·10⁻³: chance. A pod that is broken
//! is not held back: failing 5 % of 150 requests a point beside a clean peer of the same
//! traffic gives 8, 7, 8 and 7 errors, (C(150, 8) / C(300, 8))² · (C(150, 7) / C(300, 7))² =
//! 6.7·10⁻¹⁰. Among two equal pods of 300 requests a point the test needs at least 20 errors
//! with none on the peer (C(300, 20) / C(600, 20) = 6.9·10⁻⁷ ≤ 10⁻⁶); among five, 9
//! (C(120, 9) / C(600, 9) = 4.0·10⁻⁷).

use statrs::distribution::{ContinuousCDF, Discrete, Hypergeometric, Normal};

/// An endpoint's recent errors beside its peers' at the same moments.
#[derive(Debug, PartialEq)]
pub(super) struct Compared {
    pub(super) errors: f64,
    pub(super) requests: f64,
    /// The peers' error rate, each point weighted by the endpoint's own requests there: the
    /// rate the endpoint would show had it failed as its peers did when it served.
    pub(super) peer_rate: f64,
    /// The peers' requests over those points (how well their rate is known).
    pub(super) peer_requests: f64,
    /// Per compared point: the endpoint's errors and requests, and the cluster's (its own
    /// included), as whole counts that fit together (`Stratum::new`).
    strata: Vec<Stratum>,
}

/// The endpoint's errors and requests (`own`, per point) over the points at which its peers
/// (the cluster's `totals` per point, the endpoint's own included) served too, with the
/// peers' rate at those points weighted by the endpoint's requests; `None` without such a
/// point. Compared point by point because load, and with it errors, changes over the window
/// and pods come and go: pooled over the window, two `v0` pods that had served through a
/// surge's worst 30 s (42 req/s each, 10 % refused) were outliers at 4.4 % against two pods
/// started after it, at 1.0 % and 0 %, and were ejected onto them
/// (`h112-two-faults-ejected-in-a-surge`, `--seed 2`). Where the pods serve alike over the
/// window the weighted rate is the pooled one: with the endpoint's requests `nₜ` a fixed share
/// of the peers' `Nₜ`, Σ nₜ·(Eₜ/Nₜ) / Σ nₜ = Σ Eₜ / Σ Nₜ.
pub(super) fn compared(own: &[Option<(f64, f64)>], totals: &[(f64, f64)]) -> Option<Compared> {
    let mut c = Compared {
        errors: 0.0,
        requests: 0.0,
        peer_rate: 0.0,
        peer_requests: 0.0,
        strata: Vec::new(),
    };
    let mut expected = 0.0;
    for (point, (tot_e, tot_n)) in own.iter().zip(totals) {
        let Some((e, n)) = *point else { continue };
        let (peer_e, peer_n) = (tot_e - e, tot_n - n);
        if peer_n <= 0.0 || n <= 0.0 {
            continue;
        }
        c.errors += e;
        c.requests += n;
        c.peer_requests += peer_n;
        expected += n * (peer_e / peer_n).clamp(0.0, 1.0);
        c.strata.push(Stratum::new(e, n, *tot_e, *tot_n));
    }
    (c.requests > 0.0).then(|| Compared {
        peer_rate: expected / c.requests,
        ..c
    })
}

/// One point of the comparison as whole counts: the endpoint's errors `x` of its requests `n`,
/// the cluster's errors `k` of its requests `total`.
#[derive(Debug, PartialEq, Clone, Copy)]
struct Stratum {
    x: u64,
    n: u64,
    k: u64,
    total: u64,
}

impl Stratum {
    /// Counts arrive as rates × step seconds (8 errors as 7.9999999) and from separate series
    /// (the endpoint's and the cluster's), so they are rounded and made to fit: no more errors
    /// than requests on either side, the cluster at least the endpoint.
    fn new(errors: f64, requests: f64, all_errors: f64, all_requests: f64) -> Self {
        let n = count(requests);
        let total = count(all_requests).max(n);
        let x = count(errors).min(n);
        let k = count(all_errors).max(x).min(x + (total - n));
        Self { x, n, k, total }
    }

    /// The endpoint's possible error counts given the point's: from what the peers' requests
    /// cannot hold to what its own can.
    fn support(&self) -> (u64, u64) {
        (
            self.k.saturating_sub(self.total - self.n),
            self.k.min(self.n),
        )
    }
}

/// A non-negative whole count from a reconstructed one (NaN and negatives are 0; `as`
/// saturates).
fn count(x: f64) -> u64 {
    x.max(0.0).round() as u64
}

/// Beyond this many errors in all the tail comes from the normal approximation. A bound on
/// cost, not a statistical choice: the exact convolution costs about the square of the count
/// (4·10⁶ multiply-adds here), and it runs only for an endpoint the binomial test has already
/// flagged. The approximation is poorest where the variance is small (an endpoint with a tiny
/// share of its cluster's requests); with thousands of errors the decision is rarely near
/// 10⁻⁶ (`thousands_of_errors_take_the_normal_approximation`: 100 errors over the mean is 4.3
/// standard deviations).
const MAX_EXACT: u64 = 2_000;

impl Compared {
    /// P(the endpoint has at least its errors | each point's requests and errors in all),
    /// were the endpoint and its peers failing alike (see the module docs): 1 without an
    /// error.
    pub(super) fn tail_given_totals(&self) -> f64 {
        // Saturating: a wild rate (1e300 req/s) rounds to u64::MAX, and two of them must not
        // overflow the sum.
        let sum = |f: fn(&Stratum) -> u64| self.strata.iter().map(f).fold(0, u64::saturating_add);
        let (mine, all) = (sum(|s| s.x), sum(|s| s.k));
        if mine == 0 {
            return 1.0;
        }
        if all > MAX_EXACT {
            return normal_tail(&self.strata, mine);
        }
        // The distribution of the endpoint's count, one point's hypergeometric convolved at a
        // time; `pmf[i]` is the probability of `offset + i` errors.
        let (mut pmf, mut offset) = (vec![1.0], 0_u64);
        for s in &self.strata {
            let Ok(h) = Hypergeometric::new(s.total, s.k, s.n) else {
                continue;
            };
            let (lo, hi) = s.support();
            // From logarithms: C(N, n) overflows an f64 past N ≈ 1,030.
            let terms: Vec<f64> = (lo..=hi).map(|j| h.ln_pmf(j).exp()).collect();
            let mut next = vec![0.0; pmf.len() + terms.len() - 1];
            for (i, p) in pmf.iter().enumerate() {
                for (j, q) in terms.iter().enumerate() {
                    next[i + j] += p * q;
                }
            }
            (pmf, offset) = (next, offset + lo);
        }
        let from = usize::try_from(mine.saturating_sub(offset)).unwrap_or(usize::MAX);
        // Summed from the far end so that a tail of 10⁻⁹ is not lost beside terms near 1.
        pmf.iter().skip(from).rev().sum::<f64>().min(1.0)
    }
}

/// The same tail under the normal approximation, continuity-corrected: each point's
/// hypergeometric has mean k·n/N and variance k·(n/N)·(1 − n/N)·(N − k)/(N − 1).
fn normal_tail(strata: &[Stratum], mine: u64) -> f64 {
    let (mean, var) = strata.iter().fold((0.0, 0.0), |(m, v), s| {
        let (k, n, total) = (s.k as f64, s.n as f64, s.total as f64);
        if s.total < 2 {
            return (m + k * n / total.max(1.0), v);
        }
        let share = n / total;
        (
            m + k * share,
            v + k * share * (1.0 - share) * (total - k) / (total - 1.0),
        )
    });
    let k = mine as f64 - 0.5;
    match Normal::new(mean, var.sqrt()) {
        Ok(n) if var > 0.0 => n.sf(k),
        _ => f64::from(u8::from(k <= mean)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_compared_at_the_same_moments() {
        // Serving a fixed share of the cluster, the weighted rate is the pooled one: the
        // endpoint serves 100 then 300 requests, its peers 300 (3 errors) then 900 (18):
        // (100 · 1 % + 300 · 2 %) / 400 = 1.75 % = 21 / 1,200.
        let own = [Some((1.0, 100.0)), Some((6.0, 300.0))];
        let totals = [(4.0, 400.0), (24.0, 1200.0)];
        let c = compared(&own, &totals).expect("compared");
        assert_eq!(
            (c.errors, c.requests, c.peer_requests),
            (7.0, 400.0, 1200.0)
        );
        assert!((c.peer_rate - 21.0 / 1200.0).abs() < 1e-12);
        // A point where the endpoint served alone (no peer yet) and one where it had no data
        // compare nothing; the peers' 10 % at the first point is what it is judged by there.
        let own = [Some((10.0, 100.0)), Some((50.0, 100.0)), None];
        let totals = [(20.0, 200.0), (50.0, 100.0), (0.0, 500.0)];
        let c = compared(&own, &totals).expect("compared");
        assert_eq!(
            (c.errors, c.requests, c.peer_requests),
            (10.0, 100.0, 100.0)
        );
        assert!((c.peer_rate - 0.1).abs() < 1e-12);
        // No point with both: nothing to compare.
        assert_eq!(
            compared(&[Some((5.0, 10.0)), None], &[(5.0, 10.0), (1.0, 9.0)]),
            None
        );
    }

    #[test]
    fn a_run_of_errors_at_one_point_is_weighed_against_the_peers_counts() {
        // The worked example of the module docs: `v0-1`'s four points (8 errors at the last,
        // 7.9999999 as reconstructed from a rate) beside a peer with none in 50 + 90 + 182 +
        // 280 = 602 requests. All 8 of the last point's errors among `v0-1`'s 256 of 536
        // requests: C(256, 8) / C(536, 8) = (256 · 255 ⋯ 249) / (536 · 535 ⋯ 529) = 2.56·10⁻³.
        let own = [
            Some((0.0, 54.0)),
            Some((0.0, 85.0)),
            Some((0.0, 171.0)),
            Some((7.999_999_9, 256.0)),
        ];
        let totals = [
            (0.0, 104.0),
            (0.0, 175.0),
            (0.0, 353.0),
            (7.999_999_9, 536.0),
        ];
        let c = compared(&own, &totals).expect("compared");
        let expected: f64 = (0..8)
            .map(|i| f64::from(256 - i) / f64::from(536 - i))
            .product();
        assert!((expected - 2.555e-3).abs() < 0.001e-3, "{expected}");
        assert!((c.tail_given_totals() - expected).abs() < 1e-12);
        // Two points with errors on both sides. The first, 3 of the 4 errors of 200 requests
        // among the endpoint's 100: P(X₁ = 4) = C(100, 4) / C(200, 4) = 3,921,225 / 64,684,950
        // = 0.060620, P(X₁ = 3) = C(100, 3) · 100 / C(200, 4) = 0.249981. The second, both
        // errors of 200 among its 50: P(X₂ = 2) = C(50, 2) / C(200, 2) = 1,225 / 19,900 =
        // 0.061558, P(X₂ ≥ 1) = 1 − C(150, 2) / C(200, 2) = 8,725 / 19,900 = 0.438442.
        // P(X ≥ 5) = 0.060620 · 0.438442 + 0.249981 · 0.061558 = 0.041967.
        let own = [Some((3.0, 100.0)), Some((2.0, 50.0))];
        let totals = [(4.0, 200.0), (2.0, 200.0)];
        let c = compared(&own, &totals).expect("compared");
        assert!((c.tail_given_totals() - 0.041967).abs() < 1e-6);
    }

    #[test]
    fn a_broken_pod_is_far_beyond_its_peers_chance() {
        // 5 % of 150 requests at each of four points beside one clean peer of the same
        // traffic: 8, 7, 8 and 7 errors, each point's all among the endpoint's half:
        // (C(150, 8) / C(300, 8))² · (C(150, 7) / C(300, 7))² = 6.66·10⁻¹⁰.
        let own = [
            Some((8.0, 150.0)),
            Some((7.0, 150.0)),
            Some((8.0, 150.0)),
            Some((7.0, 150.0)),
        ];
        let totals = [(8.0, 300.0), (7.0, 300.0), (8.0, 300.0), (7.0, 300.0)];
        let tail = compared(&own, &totals)
            .expect("compared")
            .tail_given_totals();
        let all_among = |k: u32| -> f64 {
            (0..k)
                .map(|i| f64::from(150 - i) / f64::from(300 - i))
                .product()
        };
        let expected = (all_among(8) * all_among(7)).powi(2);
        assert!((expected - 6.66e-10).abs() < 0.01e-10, "{expected}");
        assert!((tail - expected).abs() < 1e-18, "{tail}");
        // No error on the endpoint: nothing surprising.
        let own = [Some((0.0, 150.0))];
        let c = compared(&own, &[(9.0, 300.0)]).expect("compared");
        assert_eq!(c.tail_given_totals(), 1.0);
    }

    #[test]
    fn thousands_of_errors_take_the_normal_approximation() {
        // 2,400 errors in 20,000 requests, 1,300 of them among the endpoint's 10,000: mean
        // 1,200, variance 2,400 · ½ · ½ · 17,600 / 19,999 = 528.0 (sd 22.98);
        // z = (1,299.5 − 1,200) / 22.98 = 4.330, a tail of 7.45·10⁻⁶.
        let own = [Some((1300.0, 10_000.0))];
        let c = compared(&own, &[(2400.0, 20_000.0)]).expect("compared");
        let tail = c.tail_given_totals();
        assert!((tail - 7.45e-6).abs() < 0.01e-6, "{tail}");
        // Exactly half of them: z = −0.5 / 22.98, a tail of 0.5087.
        let c = compared(&[Some((1200.0, 10_000.0))], &[(2400.0, 20_000.0)]).expect("compared");
        assert!((c.tail_given_totals() - 0.5087).abs() < 1e-4);
    }

    #[test]
    fn counts_that_do_not_fit_together_are_made_to() {
        // Each reaches the test (the peers served at the point) with counts that cannot all be
        // true; they are made to fit and the tail stays a probability (overflow checks are on
        // in the tests).
        for (own, totals) in [
            // More errors than requests on the endpoint: 10 of its 10, 50 of the cluster's.
            (vec![Some((50.0, 10.0))], vec![(50.0, 110.0)]),
            // The cluster's errors fewer than the endpoint's own.
            (vec![Some((5.0, 100.0))], vec![(1.0, 200.0)]),
            // More cluster errors than the peers' requests can hold.
            (vec![Some((0.0, 100.0))], vec![(500.0, 200.0)]),
            (vec![Some((f64::NAN, 100.0))], vec![(3.0, 200.0)]),
            // Wild rates at two points: their counts saturate, and so does their sum.
            (
                vec![Some((1e300, 1e300)); 2],
                vec![(f64::INFINITY, f64::INFINITY); 2],
            ),
        ] {
            let c = compared(&own, &totals).expect("the peers served");
            let tail = c.tail_given_totals();
            assert!((0.0..=1.0).contains(&tail), "{own:?} {totals:?}: {tail}");
        }
        // The first: all 10 of the endpoint's requests failing, given 50 errors in 110
        // requests: C(50, 10) / C(110, 10) = (50 ⋯ 41) / (110 ⋯ 101) = 2.19·10⁻⁴.
        let c = compared(&[Some((50.0, 10.0))], &[(50.0, 110.0)]).expect("compared");
        let expected: f64 = (0..10)
            .map(|i| f64::from(50 - i) / f64::from(110 - i))
            .product();
        assert!((expected - 2.19e-4).abs() < 0.01e-4, "{expected}");
        assert!((c.tail_given_totals() - expected).abs() < 1e-15);
        // The endpoint alone at a point (peers' requests ≤ 0) is no comparison.
        assert_eq!(compared(&[Some((5.0, 100.0))], &[(1.0, 50.0)]), None);
        assert_eq!(compared(&[Some((50.0, 10.0))], &[(50.0, 10.0)]), None);
    }
}
