//! Durations in scenario files are the AdaptivePolicy's own Go-style durations ("250ms", "15s",
//! "1h30m"), so one parser serves the CRD and the simulator; the engine works in integer
//! nanoseconds.

pub use homeostat_models::policy::Duration;

/// Integer nanoseconds of simulated time.
pub trait Nanos {
    fn nanos(&self) -> u64;
}

impl Nanos for Duration {
    #[inline]
    fn nanos(&self) -> u64 {
        u64::try_from(self.as_std().as_nanos()).unwrap_or(u64::MAX)
    }
}
