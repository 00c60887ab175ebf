//! `homeostat alert test -f alert.json -f policy.yaml`: what an alert would trigger, without a
//! cluster. The alert goes through the webhook's own path (payload validation, target and
//! `onAlert` matching, `Governor::on_alert`) with in-memory seams, so what it prints is what the
//! webhook would do — for a first delivery to a fresh controller (no cooldown or freeze in
//! memory yet).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use homeostat_models::governor::{Change, Governor, HpaConfig, MeshConfig, Observation};
use homeostat_models::policy::PolicySpec;
use serde::{Deserialize as _, Serialize};
use serde_json::Value;

use super::Format;
use crate::webhook::{
    FixedObservations, InMemoryDirectory, InMemorySink, KnownPolicy, Outcome, PolicyKey,
    Remediator, payload,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show what an alert would trigger: which policies' remediation entries match, and the
    /// Governor's plan for each.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Input files, in any order: the alert (an Alertmanager webhook payload, one alert object
    /// with `labels`, or a list of them), one or more AdaptivePolicy YAML files (the resource,
    /// or its bare spec; several documents per file allowed), and optionally an Observation
    /// JSON (telemetry and the configuration in force for a target service).
    #[arg(short = 'f', long = "file", required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Test(args) => {
            print!("{}", test(&args)?);
            Ok(())
        }
    }
}

/// The inputs, told apart by their content.
#[derive(Default)]
struct Inputs {
    payload: Option<Vec<u8>>,
    policies: Vec<KnownPolicy>,
    observations: BTreeMap<String, Observation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// Services whose configuration in force was assumed (no Observation given).
    assumed_config: BTreeMap<String, MeshConfig>,
    outcomes: Vec<Outcome>,
}

/// What `alert test` prints.
pub fn test(args: &TestArgs) -> Result<String> {
    let mut inputs = Inputs::default();
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        read_input(&text, &mut inputs).with_context(|| f.display().to_string())?;
    }
    let Some(body) = inputs.payload else {
        bail!("no alert among the files (a webhook payload, or an object with `labels`)");
    };
    if inputs.policies.is_empty() {
        bail!("no AdaptivePolicy among the files");
    }
    let payload = payload::parse(&body).map_err(|e| anyhow::anyhow!("the alert: {e}"))?;
    let mut assumed = BTreeMap::new();
    let directory = InMemoryDirectory::new(
        inputs
            .policies
            .iter()
            .map(|p| {
                let config = match inputs.observations.get(&p.spec.target.service) {
                    Some(o) => o.config.clone(),
                    None => {
                        let c = assumed_config(&p.spec);
                        assumed.insert(p.spec.target.service.clone(), c.clone());
                        c
                    }
                };
                (p.clone(), config)
            })
            .collect(),
    );
    // The payload's own start time is "now", so times in the plan read naturally.
    let now = payload
        .alerts
        .iter()
        .map(|a| a.starts_at_unix())
        .max()
        .unwrap_or(0);
    let remediator = Remediator::new(
        directory,
        FixedObservations(inputs.observations),
        InMemorySink::new(),
        Arc::new(tokio::sync::Mutex::new(Governor::new())),
        Arc::new(move || now),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcomes = rt
        .block_on(remediator.handle(&payload))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = Report {
        assumed_config: assumed,
        outcomes,
    };
    Ok(match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Table => table(&report),
    })
}

fn read_input(text: &str, inputs: &mut Inputs) -> Result<()> {
    // JSON first: an alert or an Observation. (YAML would also read JSON, but loses the
    // difference between them and a policy.)
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        if v.get("serviceSignals").is_some() {
            let obs: Observation = serde_json::from_value(v).context("an Observation")?;
            inputs.observations.insert(obs.service.clone(), obs);
            return Ok(());
        }
        if let Some(body) = as_payload(&v) {
            if inputs.payload.is_some() {
                bail!("a second alert file: give the alerts in one payload");
            }
            inputs.payload = Some(serde_json::to_vec(&body)?);
            return Ok(());
        }
    }
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = serde_yaml::Value::deserialize(doc).context("YAML")?;
        inputs.policies.push(policy(v)?);
    }
    Ok(())
}

/// A webhook payload as is; one alert object or a list of them, wrapped in one.
fn as_payload(v: &Value) -> Option<Value> {
    if v.get("alerts").is_some() {
        return Some(v.clone());
    }
    let alerts: Vec<Value> = match v {
        Value::Array(items) if items.iter().all(|i| i.get("labels").is_some()) => items.clone(),
        Value::Object(o) if o.contains_key("labels") => vec![v.clone()],
        _ => return None,
    };
    let alerts: Vec<Value> = alerts
        .into_iter()
        .enumerate()
        .map(|(i, mut a)| {
            if let Value::Object(o) = &mut a {
                o.entry("status").or_insert("firing".into());
                o.entry("startsAt")
                    .or_insert(chrono::Utc::now().to_rfc3339().into());
                o.entry("fingerprint")
                    .or_insert(format!("alert-test-{i}").into());
            }
            a
        })
        .collect();
    Some(serde_json::json!({"version": "4", "status": "firing", "alerts": alerts}))
}

/// An AdaptivePolicy resource (`metadata` + `spec`) or a bare spec, validated.
fn policy(v: serde_yaml::Value) -> Result<KnownPolicy> {
    let (namespace, name, spec) = match v.get("spec") {
        Some(spec) => {
            let meta = v.get("metadata");
            let field = |k: &str| {
                meta.and_then(|m| m.get(k))
                    .and_then(serde_yaml::Value::as_str)
                    .map(str::to_string)
            };
            (
                field("namespace").unwrap_or_else(|| "default".into()),
                field("name"),
                spec.clone(),
            )
        }
        None => ("default".to_string(), None, v),
    };
    let spec: PolicySpec = serde_yaml::from_value(spec).context("an AdaptivePolicy spec")?;
    if let Err(errs) = spec.validate() {
        let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
        bail!("invalid policy: {}", list.join("; "));
    }
    Ok(KnownPolicy {
        key: PolicyKey {
            namespace,
            name: name.unwrap_or_else(|| spec.target.service.clone()),
        },
        spec,
    })
}

/// Without an Observation the configuration in force is unknown; assume Istio's defaults,
/// traffic split evenly over the policy's subsets (the first takes the remainder), and the
/// named HPA at the policy's bounds with `minReplicas` running (no upper bound where the policy
/// names none). Printed, so nobody mistakes it
/// for the cluster's.
fn assumed_config(spec: &PolicySpec) -> MeshConfig {
    let a = &spec.controls.autoscaling;
    MeshConfig {
        hpa: spec
            .target
            .horizontal_pod_autoscaler
            .as_ref()
            .map(|_| HpaConfig {
                min_replicas: a.min_replicas,
                // A policy without maxReplicas leaves the cap to the HPA, whose own is unknown
                // here: assume none rather than invent one.
                max_replicas: a.max_replicas.unwrap_or(u32::MAX),
                // Its target is unknown too: the top of what the Governor may set (the
                // policy's bound, else the default's; widening by 1 % moves only the bottom).
                target_utilization_percent: a.target_range(1).max,
                current_replicas: a.min_replicas,
                replica_cap: None,
            }),
        ..super::recommend::istio_defaults(spec)
    }
}

fn table(r: &Report) -> String {
    let mut s = String::new();
    for (service, c) in &r.assumed_config {
        let _ = writeln!(
            s,
            "note: no Observation for {service}: assuming weights {:?}, {} retries, consecutive5xxErrors {}{}",
            c.weights,
            c.retries.attempts,
            c.outlier_detection.consecutive_5xx_errors,
            c.hpa
                .as_ref()
                .map(|h| match h.max_replicas {
                    u32::MAX => format!(", HPA at least {} replicas", h.min_replicas),
                    max => format!(", HPA {}..{max} replicas", h.min_replicas),
                })
                .unwrap_or_default()
        );
    }
    for o in &r.outcomes {
        match o {
            Outcome::Unmatched {
                alertname,
                fingerprint,
            } => {
                let _ = writeln!(
                    s,
                    "{alertname} ({fingerprint}): no policy targets it with a matching remediation"
                );
            }
            Outcome::Duplicate {
                policy, alertname, ..
            } => {
                let _ = writeln!(s, "{alertname} → {policy}: already handled");
            }
            Outcome::Resolved {
                policy, alertname, ..
            } => {
                let _ = writeln!(s, "{alertname} → {policy}: resolved");
            }
            Outcome::Remediated {
                policy,
                alertname,
                mode,
                decision,
                telemetry_error,
                ..
            } => {
                let verb = match mode {
                    homeostat_models::policy::Mode::Enforce => "would apply",
                    homeostat_models::policy::Mode::DryRun => "would recommend (DryRun)",
                };
                let _ = writeln!(s, "{alertname} → {policy} (service {}):", decision.service);
                if let Some(e) = telemetry_error {
                    let _ = writeln!(s, "  telemetry: {e}; deciding on the configuration alone");
                }
                for f in &decision.findings {
                    let _ = writeln!(s, "  finding: {}", f.summary);
                }
                if decision.plan.changes.is_empty() && decision.plan.held.is_empty() {
                    let _ = writeln!(s, "  no change");
                }
                for c in &decision.plan.changes {
                    let _ = writeln!(s, "  {verb}: {}", change(c));
                }
                for c in &decision.plan.held {
                    let why = c
                        .held_by
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let _ = writeln!(s, "  held ({why}): {}", change(c));
                }
            }
        }
    }
    s
}

fn change(c: &Change) -> String {
    let value =
        |v: &homeostat_models::governor::KnobValue| serde_json::to_string(v).unwrap_or_default();
    format!(
        "{} {} → {} — {}",
        c.knob,
        value(&c.current),
        value(&c.proposed),
        c.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = r#"{"labels": {"alertname": "SubsetErrorRatioOutlier",
        "service": "checkout", "namespace": "shop", "subset": "canary"},
        "startsAt": "2027-01-15T08:00:00Z", "fingerprint": "abc"}"#;
    const POLICY: &str = "apiVersion: homeostat.io/v1alpha1
kind: AdaptivePolicy
metadata: {name: checkout, namespace: shop}
spec:
  mode: Enforce
  target: {service: checkout, subsets: [stable, canary, shadow]}
  remediation:
    - onAlert: {alertname: SubsetErrorRatioOutlier}
      actions: [shiftToStable, disableRetries]
---
target: {service: cart}
controls: {loadBalancing: {enabled: false}}
remediation:
  - onAlert: {alertname: SubsetErrorRatioOutlier}
    actions: [freeze]
";

    fn run_with(files: &[(&str, &str)], format: Format) -> Result<String> {
        let dir = tempfile::tempdir()?;
        let mut paths = Vec::new();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, text)?;
            paths.push(p);
        }
        test(&TestArgs {
            files: paths,
            format,
        })
    }

    #[test]
    fn shows_the_plan_for_the_policy_the_alert_targets() {
        let out = run_with(&[("a.json", ALERT), ("p.yaml", POLICY)], Format::Json).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        // Three subsets, no Observation: 100/3 = 33 each, the first takes the remaining 1.
        assert_eq!(
            v["assumedConfig"]["checkout"]["weights"],
            serde_json::json!({"stable": 34, "canary": 33, "shadow": 33})
        );
        let o = v["outcomes"].as_array().unwrap();
        // cart is another service: only shop/checkout.
        assert_eq!(o.len(), 1);
        assert_eq!(o[0]["policy"]["name"], "checkout");
        let changes = o[0]["decision"]["plan"]["changes"].as_array().unwrap();
        // shiftToStable, maxStepPercent 20: the stable subset gains at most 20, and each other
        // subset gives at most 20, givers in name order — canary gives all 20 (33 → 13) before
        // shadow is asked, so shadow keeps 33 and stable has 34 + 20 = 54.
        assert_eq!(
            changes[0]["proposed"]["weights"],
            serde_json::json!({"stable": 54, "canary": 13, "shadow": 33})
        );
        assert_eq!(changes[1]["proposed"]["retries"]["attempts"], 0);
        let table = run_with(&[("p.yaml", POLICY), ("a.json", ALERT)], Format::Table).unwrap();
        assert!(table.contains("SubsetErrorRatioOutlier → shop/checkout (service checkout):"));
        assert!(table.contains("would apply: weights"), "{table}");
    }

    #[test]
    fn bad_inputs_say_which_file_and_why() {
        let err = run_with(&[("p.yaml", POLICY)], Format::Table).unwrap_err();
        assert!(format!("{err:#}").contains("no alert"));
        let bad_alert = ALERT.replace("2027-01-15T08:00:00Z", "then");
        let err =
            run_with(&[("a.json", &bad_alert), ("p.yaml", POLICY)], Format::Table).unwrap_err();
        assert!(format!("{err:#}").contains("alerts[0].startsAt"), "{err:#}");
        let bad_policy = "target: {service: x}\nguardrails: {maxChangesPerHour: 0}\n";
        let err =
            run_with(&[("a.json", ALERT), ("p.yaml", bad_policy)], Format::Table).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("p.yaml") && msg.contains("maxChangesPerHour"),
            "{msg}"
        );
    }
}
