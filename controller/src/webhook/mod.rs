//! The Alertmanager webhook: alerts in, the policies' remediations out, through the Governor.
//!
//! ```text
//!  Alertmanager ──POST /alertmanager──► http (token · size · payload · leader)
//!                                        └─► remediate: alert ─► matching policies
//!                                              ─► Governor::on_alert (shared with the loop)
//!                                              ─► RemediationSink (apply / recommend, record)
//! ```
//!
//! The webhook translates; the Governor decides (`models::governor::{Alert, matching_actions}`
//! and `Governor::on_alert`, through the loop's own guardrails). The cluster sits behind two
//! seams the controller implements — [`PolicyDirectory`] (the AdaptivePolicies and the
//! configuration in force) and [`RemediationSink`] (actuators, status, Events, metrics) — plus
//! the telemetry seam [`crate::telemetry::ObservationSource`]. The in-memory implementations
//! here serve the tests and `homeostat alert test`.
//!
//! # Layout
//!
//! * [`payload`] — Alertmanager's webhook payload (version 4) and its validation.
//! * [`auth`] — the bearer token from a file, compared in constant time.
//! * [`directory`] — seam: known policies and their configuration in force; in-memory version.
//! * [`governors`] — seam: the loop's Governor of a policy; one shared Governor in memory.
//! * [`sink`] — seam: where decisions go (apply / recommend / record); in-memory version.
//! * [`observations`] — fixed telemetry for tests and `homeostat alert test`.
//! * [`remediate`] — the translation from alerts to `Governor::on_alert` and the sink.
//! * [`http`] — the axum route: 401 / 413 / 400 / 503 before anything is touched.
//! * [`tls`] — TLS when a certificate is configured: a listener for `axum::serve`.

pub mod auth;
pub mod directory;
pub mod governors;
pub mod http;
pub mod observations;
pub mod payload;
pub mod remediate;
pub mod sink;
pub mod tls;

pub use auth::BearerToken;
pub use directory::{InMemoryDirectory, KnownPolicy, PolicyDirectory, PolicyKey};
pub use governors::Governors;
pub use http::{DEFAULT_MAX_BODY_BYTES, Leadership, Webhook, router};
pub use observations::FixedObservations;
pub use payload::{AlertStatus, Payload, PayloadAlert, PayloadError};
pub use remediate::{Clock, Outcome, Remediator, system_clock};
pub use sink::{AlertKey, HandOver, InMemorySink, Remediation, RemediationSink, SinkLog};
pub use tls::{TlsListener, server_config};

/// A seam (directory, sink) failed: the request is answered 500 and Alertmanager retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SeamError(pub String);
