//! Fixed telemetry for the webhook's tests and `homeostat alert test`: one Observation per
//! service, or "unavailable" for a service without one.

use std::collections::BTreeMap;

use homeostat_models::governor::Observation;

use crate::telemetry::{ObservationSource, ObserveRequest, TelemetryError};

/// Observations by service. The configuration in force is always the request's (read from the
/// directory), as a real source copies it.
#[derive(Debug, Clone, Default)]
pub struct FixedObservations(pub BTreeMap<String, Observation>);

impl ObservationSource for FixedObservations {
    async fn observe(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        let service = &req.spec.target.service;
        let mut obs = self.0.get(service).cloned().ok_or_else(|| {
            TelemetryError::Unavailable(format!("no Observation for service {service}"))
        })?;
        obs.config = req.config.clone();
        Ok(obs)
    }
}
