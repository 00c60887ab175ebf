//! The controller's side of alert-triggered remediation: the webhook's seams implemented over
//! the cluster, the reverts after a resolve, and serving `POST /alertmanager` from
//! `homeostat run`.
//!
//! ```text
//!  Alertmanager ─► webhook (token · size · payload · leader) ─► Remediator
//!      KubeDirectory ── AdaptivePolicies (watch cache) + DR / VS / HPA as the reconciler reads
//!      LoopGovernors ── the reconciler's own per-policy Governor (same guardrail memory)
//!      LoopTelemetry ── the reconciler's own ObservationSource
//!      KubeSink ─────── status first (the record + appliedChanges), then the reconciler's
//!                       actuators (server-side apply of owned fields), Events, metrics
//!  every few seconds (leader): reverts ─► Governor::on_resolved ─► the same sink path
//! ```
//!
//! Nothing is decided here: `Governor::on_alert` and `Governor::on_resolved` decide; this module
//! reads the cluster, writes what was decided, and records it.
//!
//! # Layout
//!
//! * [`record`] — the idempotency record in `status.alertRemediations`: find, bound, revert list.
//! * [`directory`] — `PolicyDirectory` over a watch cache of AdaptivePolicies and the mesh.
//! * [`shared`] — the reconciler's Governors and telemetry, shared with the webhook.
//! * [`status`] — the webhook's status writes (its own field manager, optimistic concurrency).
//! * [`sink`] — `RemediationSink`: status first, then the actuators; Events and metrics.
//! * [`revert`] — after a resolve: the Governor's verdict per knob, applied the same way.
//! * [`server`] — the webhook served by `homeostat run` (listen, token file, TLS).

pub mod directory;
pub mod record;
pub mod revert;
pub mod server;
pub mod shared;
pub mod sink;
pub mod status;

pub use directory::KubeDirectory;
pub use revert::{revert_due, run_reverts};
pub use server::{ControllerWebhook, WebhookConfig, build, serve, watch_policies};
pub use shared::{LoopGovernors, LoopTelemetry};
pub use sink::KubeSink;
pub use status::FIELD_MANAGER as STATUS_FIELD_MANAGER;
