//! The client-side proxy as the engine drives it: `homeostat-dataplane`'s [`Cluster`] (balancer
//! with outlier detector and retry budget, the code the bundled proxy runs) per caller → subset,
//! and the translation of the simulator's failure kinds into the data plane's outcome types.

pub use homeostat_dataplane::cluster::Cluster;
use homeostat_dataplane::outlier::Outcome;
use homeostat_dataplane::retry::AttemptOutcome;

/// Why a try failed, as the caller's proxy tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// The upstream answered with this 5xx.
    Status(u16),
    /// The connection was refused (pod down).
    ConnectFailure,
    /// The upstream reset the stream mid-request (pod crashed).
    Reset,
    /// The per-try timeout (or the route timeout) fired.
    Timeout,
    /// No endpoint to send to: Envoy's local 503 "no healthy upstream", never retried.
    NoHealthyUpstream,
}

impl Fail {
    /// What the retry policy sees.
    pub fn attempt(self) -> AttemptOutcome {
        match self {
            Fail::Status(code) => AttemptOutcome::Response(code),
            Fail::ConnectFailure => AttemptOutcome::ConnectFailure,
            Fail::Reset => AttemptOutcome::Reset,
            Fail::Timeout => AttemptOutcome::PerTryTimeout,
            Fail::NoHealthyUpstream => AttemptOutcome::LocalOverflow,
        }
    }
}

/// What outlier detection sees of a finished attempt.
pub fn outlier_outcome(fail: Option<Fail>) -> Outcome {
    match fail {
        None => Outcome::Success,
        Some(Fail::Status(code)) => Outcome::from_status(code),
        Some(_) => Outcome::LocalOriginFailure,
    }
}
