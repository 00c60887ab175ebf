//! homeostat's ADS server: a small state-of-the-world Aggregated Discovery Service that feeds
//! the bundled proxies (or Envoy) clusters, endpoints and routes.
//!
//! No maintained snapshot-cache crate works with tonic 0.14, so this is written out: the
//! configuration is an [`XdsSnapshot`] published on a `tokio::sync::watch` channel; each
//! stream tracks, per type URL, the names subscribed, the version last sent and its nonce.
//!
//! * A request with an empty or current `response_nonce` and no `error_detail` is a
//!   subscription or an ACK: the server answers if the snapshot's version differs from what
//!   that stream was last sent (or the subscribed names changed).
//! * A request with `error_detail` is a NACK: recorded as an [`XdsEvent::Nack`] with the
//!   reason, and the type is not re-sent until a new snapshot arrives.
//! * A request carrying an older nonce is stale (a response crossed it) and is ignored, as
//!   Envoy's protocol prescribes.
//! * A new snapshot is pushed at once to every subscribed type of every stream.
//!
//! # Layout
//!
//! * [`snapshot`] — the resources of one configuration version, by type URL.
//! * [`server`] — the gRPC service and its per-stream state machine.
//! * [`resources`] — the proxy's configuration types → Envoy v3 resources (the inverse of the
//!   proxy's own converter).
//! * [`bundled`] — the bundled mesh's description: the configuration in force per service,
//!   each applied change written into it and pushed as a new snapshot.
//! * [`govern`] — the bundled mesh's control loop: policies from files → telemetry → the
//!   Governor → [`BundledMesh`].

pub mod bundled;
pub mod govern;
pub mod resources;
pub mod server;
pub mod snapshot;

pub use bundled::{BundledMesh, MeshFile};
pub use server::{AdsServer, XdsEvent};
pub use snapshot::XdsSnapshot;

#[cfg(test)]
mod tests;
