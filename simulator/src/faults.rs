//! Faults on the timeline, compiled: which pods they hit and how hard at time t.

use crate::duration::Nanos;
use crate::scenario::Scenario;
use crate::topology::Topology;
use crate::traffic::Surge;

#[derive(Debug, Clone)]
pub struct Fault {
    pub label: String,
    pub start: u64,
    pub end: Option<u64>,
    pub service: Option<usize>,
    pub subset: Option<usize>,
    pub pod: Option<u32>,
    pub error_rate: f64,
    pub error_code: u16,
    pub slowdown: f64,
    pub ramp: u64,
    pub crash: bool,
    pub node_loss: Option<u32>,
    pub surge: Option<f64>,
}

impl Fault {
    /// Whether the fault targets a pod (by service, subset and index within its subset).
    #[inline]
    pub fn hits(&self, service: usize, subset: usize, index: u32) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.subset.is_none_or(|s| s == subset)
            && self.pod.is_none_or(|p| p == index)
    }

    /// Share of the full effect at time t (ramps linearly when `ramp` is set).
    #[inline]
    fn strength(&self, t: u64) -> f64 {
        if self.ramp == 0 {
            1.0
        } else {
            ((t.saturating_sub(self.start)) as f64 / self.ramp as f64).min(1.0)
        }
    }

    /// (error rate, slowdown factor) at time t for a pod it hits.
    #[inline]
    pub fn effect(&self, t: u64) -> (f64, f64) {
        let k = self.strength(t);
        (self.error_rate * k, 1.0 + (self.slowdown - 1.0) * k)
    }
}

pub fn compile(s: &Scenario, topo: &Topology) -> Vec<Fault> {
    s.faults
        .iter()
        .map(|f| {
            let service = f.service.as_deref().and_then(|n| topo.service_index(n));
            let subset = match (service, f.subset.as_deref()) {
                (Some(si), Some(name)) => topo.subset_index(si, name),
                _ => None,
            };
            let mut effects = Vec::new();
            if let Some(r) = f.error_rate {
                effects.push(format!(
                    "{:.0}% HTTP {}",
                    r * 100.0,
                    f.error_code.unwrap_or(500)
                ));
            }
            if let Some(x) = f.slowdown {
                effects.push(format!("{x}× slower"));
            }
            if f.crash {
                effects.push("crash".into());
            }
            if let Some(n) = f.node_loss {
                effects.push(format!("node {n} lost"));
            }
            if let Some(x) = f.surge {
                effects.push(format!("{x}× traffic"));
            }
            let mut target = f.service.clone().unwrap_or_default();
            if let Some(sub) = &f.subset {
                target = format!("{target}/{sub}");
            }
            if let Some(p) = f.pod {
                target = format!("{target} pod {p}");
            }
            let default_label = if target.is_empty() {
                effects.join(", ")
            } else {
                format!("{target}: {}", effects.join(", "))
            };
            Fault {
                label: f.name.clone().unwrap_or(default_label),
                start: f.at.nanos(),
                end: f.until.map(|u| u.nanos()),
                service,
                subset,
                pod: f.pod,
                error_rate: f.error_rate.unwrap_or(0.0),
                error_code: f.error_code.unwrap_or(500),
                slowdown: f.slowdown.unwrap_or(1.0),
                ramp: f.ramp.map(|r| r.nanos()).unwrap_or(0),
                crash: f.crash,
                node_loss: f.node_loss,
                surge: f.surge,
            }
        })
        .collect()
}

pub fn surges(faults: &[Fault]) -> Vec<Surge> {
    faults
        .iter()
        .filter_map(|f| {
            f.surge.map(|factor| Surge {
                start: f.start,
                end: f.end.unwrap_or(u64::MAX),
                factor,
            })
        })
        .collect()
}
