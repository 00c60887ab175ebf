//! The `hpa` baseline: mesh defaults, and the scenario's HorizontalPodAutoscalers running the
//! stock Kubernetes algorithm with a fixed target.

use crate::autoscale::Autoscaler;
use crate::engine::View;
use crate::runs::{Controller, TickOutput};
use crate::scenario::Scenario;
use crate::topology::Topology;

pub struct HpaController {
    autoscalers: Vec<Autoscaler>,
}

impl HpaController {
    pub fn new(s: &Scenario, topo: &Topology) -> HpaController {
        HpaController {
            autoscalers: Autoscaler::from_scenario(s, topo),
        }
    }
}

impl Controller for HpaController {
    fn tick(&mut self, view: &View<'_>) -> TickOutput {
        TickOutput {
            actions: self
                .autoscalers
                .iter_mut()
                .filter_map(|a| a.sync(view))
                .collect(),
            findings: Vec::new(),
        }
    }
}
