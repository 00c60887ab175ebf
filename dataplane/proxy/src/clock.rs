//! The proxy's clock: tokio's, read as the dataplane's [`Nanos`] since proxy start. Using
//! `tokio::time::Instant` (not `std::time`) lets tests pause and advance time, and feeding the
//! state machines `Nanos` is what lets the simulator drive the same code on virtual time.

use homeostat_dataplane::time::Nanos;
use tokio::time::Instant;

/// Nanoseconds since the proxy started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// Now, in nanoseconds since [`Clock::start`].
    pub fn now(&self) -> Nanos {
        // u64 nanoseconds last 584 years; saturate rather than wrap.
        Nanos::try_from(self.origin.elapsed().as_nanos()).unwrap_or(Nanos::MAX)
    }
}

/// A `Nanos` span as a `Duration`.
pub fn duration(n: Nanos) -> std::time::Duration {
    std::time::Duration::from_nanos(n)
}
