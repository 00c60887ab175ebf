//! Route-level traffic split across subsets (versions): Istio `VirtualService.http[].route[]`
//! weights, which Istio compiles to Envoy RDS `weighted_clusters`.
//!
//! Semantics (Envoy `RouteEntryImplBase::pickWeightedCluster`): draw a uniform integer, take it
//! modulo the total weight, and walk the clusters in order until the running sum exceeds it. A
//! subset with weight 0 receives nothing. Istio asks for weights summing to 100; Envoy only
//! needs a positive total, and so do we ([`WeightedSplit::percent`] reports the normalised
//! share).

/// Why a split cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// No subsets at all.
    #[error("route weights: at least one destination is required")]
    Empty,
    /// Every weight is 0, so no request could be routed.
    #[error("route weights: all {0} weights are 0; at least one must be positive")]
    AllZero(usize),
}

/// A weighted choice among subsets (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedSplit {
    weights: Vec<u32>,
    cumulative: Vec<u64>,
}

impl WeightedSplit {
    /// A split with the given per-subset weights, in route order.
    pub fn new(weights: &[u32]) -> Result<Self, SplitError> {
        if weights.is_empty() {
            return Err(SplitError::Empty);
        }
        let mut sum = 0u64;
        let cumulative: Vec<u64> = weights
            .iter()
            .map(|&w| {
                sum += u64::from(w);
                sum
            })
            .collect();
        if sum == 0 {
            return Err(SplitError::AllZero(weights.len()));
        }
        Ok(WeightedSplit {
            weights: weights.to_vec(),
            cumulative,
        })
    }

    /// The weights, in route order.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// Sum of the weights (100 for an Istio-valid route).
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The share of subset `i` in percent of the total (0 if out of range).
    pub fn percent(&self, i: usize) -> f64 {
        self.weights
            .get(i)
            .map_or(0.0, |&w| 100.0 * f64::from(w) / self.total() as f64)
    }

    /// The subset for a uniformly drawn `draw` (e.g. `rng.next_u64()`).
    #[inline]
    pub fn pick(&self, draw: u64) -> usize {
        let r = draw % self.total();
        self.cumulative.partition_point(|&c| c <= r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn walks_cumulative_weights() {
        let s = WeightedSplit::new(&[90, 10]).expect("valid split");
        // r = draw mod 100: 0..=89 → subset 0, 90..=99 → subset 1.
        assert_eq!(s.pick(0), 0);
        assert_eq!(s.pick(89), 0);
        assert_eq!(s.pick(90), 1);
        assert_eq!(s.pick(99), 1);
        assert_eq!(s.pick(100), 0);
        assert_eq!(s.percent(1), 10.0);
        // Every residue once: exactly 90 / 10.
        let to_1 = (0..100).filter(|&d| s.pick(d) == 1).count();
        assert_eq!(to_1, 10);
    }

    #[test]
    fn zero_weight_subsets_get_nothing_and_bad_splits_are_rejected() {
        let s = WeightedSplit::new(&[0, 100, 0]).expect("valid split");
        assert!((0..1000).all(|d| s.pick(d) == 1));
        assert_eq!(WeightedSplit::new(&[]), Err(SplitError::Empty));
        assert_eq!(WeightedSplit::new(&[0, 0]), Err(SplitError::AllZero(2)));
    }

    proptest! {
        #[test]
        fn pick_is_in_range_and_never_a_zero_weight(
            weights in prop::collection::vec(0u32..50, 1..8),
            draw in any::<u64>(),
        ) {
            prop_assume!(weights.iter().any(|&w| w > 0));
            let s = WeightedSplit::new(&weights).expect("positive total");
            let i = s.pick(draw);
            prop_assert!(i < weights.len());
            prop_assert!(weights[i] > 0);
        }
    }
}
