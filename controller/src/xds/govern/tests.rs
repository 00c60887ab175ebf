//! The bundled loop with the real Governor on the models' failing canary (as in
//! `controller/tests/k8s_reconcile.rs`, documented in `models/tests/governor_scenarios/common.rs`):
//! stable 80 req/s healthy, canary 20 req/s at 10 % errors in the newest 4 points. With weights
//! 70/30 and `maxStepPercent: 20` the cut is 30 − 20 = 10: stable 90, canary 10.

use std::collections::BTreeMap;

use homeostat_models::governor::{KnobValue, MeshConfig, Observation, Signals, SubsetObservation};
use homeostat_models::policy::{Duration, PolicySpec};

use super::*;
use crate::telemetry::TelemetryError;
use crate::xds::MeshFile;

const T: i64 = 1_700_000_000;
const LEN: usize = 40;

const MESH: &str = r#"
routeConfigs:
  - name: main
    virtualHosts:
      - name: checkout
        domains: ["*"]
        routes:
          - weightedClusters:
              - { cluster: "outbound|80|stable|checkout.shop.svc.cluster.local", weight: 70 }
              - { cluster: "outbound|80|canary|checkout.shop.svc.cluster.local", weight: 30 }
clusters:
  - name: "outbound|80|stable|checkout.shop.svc.cluster.local"
    endpoints: [{ address: "127.0.0.1:9001" }]
  - name: "outbound|80|canary|checkout.shop.svc.cluster.local"
    endpoints: [{ address: "127.0.0.1:9002" }]
"#;

fn policy(mode: &str) -> BundledPolicy {
    let spec: PolicySpec = serde_yaml::from_str(&format!(
        r#"
mode: {mode}
target: {{service: checkout, mesh: bundled, subsets: [stable, canary]}}
controls:
  loadBalancing: {{maxStepPercent: 20}}
  outlierDetection: {{enabled: false}}
  retries: {{enabled: false}}
  autoscaling: {{enabled: false}}
"#
    ))
    .expect("test policy");
    BundledPolicy {
        namespace: "shop".into(),
        spec,
    }
}

fn signals(rps: f64, success: &[f64]) -> Signals {
    Signals {
        request_rate: vec![rps; success.len()],
        success_rate: success.to_vec(),
        latency_p50: vec![0.05; success.len()],
        latency_p90: vec![0.075; success.len()],
        latency_p99: vec![0.1; success.len()],
        utilization: vec![0.5; success.len()],
    }
}

fn canary_obs(config: MeshConfig) -> Observation {
    let stable = vec![0.9995; LEN];
    let mut canary = vec![0.9995; LEN];
    for s in canary.iter_mut().rev().take(4) {
        *s = 0.90;
    }
    let service: Vec<f64> = stable
        .iter()
        .zip(&canary)
        .map(|(s, c)| (80.0 * s + 20.0 * c) / 100.0)
        .collect();
    Observation {
        service: "checkout".into(),
        end: T,
        step_seconds: 15,
        service_signals: signals(100.0, &service),
        callers: Default::default(),
        subsets: vec![
            SubsetObservation {
                name: "stable".into(),
                signals: signals(80.0, &stable),
            },
            SubsetObservation {
                name: "canary".into(),
                signals: signals(20.0, &canary),
            },
        ],
        endpoints: Vec::new(),
        config,
        pod_startup: Some(Duration::from_secs(120)),
    }
}

/// The failing canary on whatever configuration the loop read, or a fixed failure.
struct Fake(Option<TelemetryError>);

impl ObservationSource for Fake {
    async fn observe(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        match &self.0 {
            Some(e) => Err(e.clone()),
            None => Ok(canary_obs(req.config.clone())),
        }
    }
}

fn weights(stable: u32, canary: u32) -> BTreeMap<String, u32> {
    BTreeMap::from([
        ("stable".to_string(), stable),
        ("canary".to_string(), canary),
    ])
}

#[tokio::test]
async fn enforce_writes_the_cut_and_pushes_a_new_version() {
    let (mesh, mut rx) = BundledMesh::new(MeshFile::parse("mesh.yaml", MESH).unwrap(), None);
    rx.borrow_and_update();
    let mut g = Governor::new();
    let Outcome::Decided {
        decision,
        applied,
        failed,
    } = evaluate(&mut g, &mesh, &Fake(None), &policy("Enforce"), T).await
    else {
        panic!("no decision")
    };
    assert!(failed.is_none());
    assert_eq!(decision.plan.changes.len(), 1);
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].0.proposed, KnobValue::Weights(weights(90, 10)));
    assert_eq!(
        mesh.config("shop", "checkout").unwrap().0.weights,
        weights(90, 10)
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow().version, applied[0].1);
}

#[tokio::test]
async fn dry_run_decides_the_same_and_writes_nothing() {
    let file = MeshFile::parse("mesh.yaml", MESH).unwrap();
    let (mesh, mut rx) = BundledMesh::new(file.clone(), None);
    rx.borrow_and_update();
    let mut g = Governor::new();
    let Outcome::Decided {
        decision, applied, ..
    } = evaluate(&mut g, &mesh, &Fake(None), &policy("DryRun"), T).await
    else {
        panic!("no decision")
    };
    assert_eq!(
        decision.plan.changes[0].proposed,
        KnobValue::Weights(weights(90, 10))
    );
    assert!(applied.is_empty());
    assert_eq!(mesh.current(), file);
    assert!(!rx.has_changed().unwrap());
}

#[tokio::test]
async fn failed_telemetry_or_an_unknown_service_is_no_decision_and_no_write() {
    let file = MeshFile::parse("mesh.yaml", MESH).unwrap();
    let (mesh, _rx) = BundledMesh::new(file.clone(), None);
    let mut g = Governor::new();
    for e in [
        TelemetryError::Malformed("line 3: torn".into()),
        TelemetryError::Unavailable("refused".into()),
        TelemetryError::Insufficient("no series".into()),
    ] {
        let out = evaluate(&mut g, &mesh, &Fake(Some(e.clone())), &policy("Enforce"), T).await;
        assert!(
            matches!(&out, Outcome::Skipped(why) if *why == e.to_string()),
            "{out:?}"
        );
    }
    let mut other = policy("Enforce");
    other.spec.target.service = "payments".into();
    let out = evaluate(&mut g, &mesh, &Fake(None), &other, T).await;
    assert!(
        matches!(&out, Outcome::Skipped(why) if why.contains("no cluster named")),
        "{out:?}"
    );
    assert_eq!(mesh.current(), file);
}
