//! A small queue overflowing in a traffic peak puts a run of 503s on whichever pod's queue is
//! full at that instant: at 5-s telemetry it looks like one bad endpoint, and ejecting it
//! halves the capacity in the next peak.
//!
//! Found by the no-harm search (one fault a mesh, seed 121; `scenarios/known-harm/h121-…`):
//! two pods of two slots and a queue of one, 13 ms requests at 35 req/s swinging 64 % every
//! 39 s, doubled at 4 s. At 525 s one pod had 8 errors in one point's 256 requests, its peer none
//! in 280, and the outlier planner, reading the peer's rate as known (0, floored to the 0.1 %
//! budget), found 8 of 566 a chance of 1.5·10⁻⁷ and turned ejection on: 19 SLO minutes and 311
//! failed requests against Istio's defaults' 16 and 3. The planner now also weighs the
//! endpoint's errors against the cluster's at the same points (hypergeometric: all 8 among 256
//! of 536 requests, C(256, 8) / C(536, 8) = 2.6·10⁻³; `models/src/governor/outlier/peers.rs`).

mod support;

use support::{known_harm, left_alone};

/// Istio's defaults' run to the request, no action: the 8 errors were chance given the point's
/// total.
#[test]
fn a_queue_overflowing_in_a_peak_is_not_a_bad_pod() {
    left_alone(&known_harm(
        "h121-outlier-ejection-in-overflowing-bursts.yaml",
    ));
}
