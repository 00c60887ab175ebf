//! The data-plane state machines (balancing, outlier ejection, retry budget) shared by the
//! bundled proxy and the simulator, so the simulator runs the exact algorithms the proxy runs.
//!
//! # Layout
//! (filled as the modules arrive)
#![forbid(unsafe_code)]
