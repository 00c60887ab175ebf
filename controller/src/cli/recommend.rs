//! `homeostat recommend`: what the Governor would change for one policy, judged on a live
//! Prometheus (or one holding a recorded incident), without a cluster.
//!
//! The Governor is called exactly as the reconciler calls it: one Observation over the policy's
//! lookback ending at `--at` (the Governor feeds its models every point it has not seen, so one
//! call over the lookback warms them, as after a restart), then `Governor::step(at, ...)`. The
//! decision is printed as a diff of each knob against the configuration in force.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use homeostat_models::governor::{
    Change, Decision, Finding, Governor, MeshConfig, OutlierConfig, RetryConfig,
};
use homeostat_models::policy::PolicySpec;
use homeostat_simulator::policy_doc::PolicyDocument;
use serde::Serialize;
use serde_json::Value;

use crate::mesh::manifests;
use crate::telemetry::{
    ObservationSource, ObserveRequest, Prometheus, PrometheusConfig, PrometheusSource,
    TelemetryError,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Yaml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the Prometheus (or Thanos Query / Mimir) HTTP API.
    #[arg(long)]
    pub prometheus: String,
    /// The AdaptivePolicy (a `homeostat.dev/v1alpha1` document, YAML).
    #[arg(short = 'f', long = "filename")]
    pub policy: PathBuf,
    /// The configuration in force: your DestinationRule / VirtualService / HPA manifests
    /// (multi-document YAML, e.g. `kubectl get dr,vs,hpa -o yaml` split into documents, or your
    /// GitOps files), or homeostat's `MeshConfig` YAML (camelCase: weights, outlierDetection,
    /// retries, hpa). Without it: Istio's defaults.
    #[arg(long)]
    pub current: Option<PathBuf>,
    /// Evaluation time: RFC 3339 (`2026-01-01T00:30:00Z`) or unix seconds. Default: now.
    #[arg(long)]
    pub at: Option<String>,
    /// Namespace of the service (default: the policy's `metadata.namespace`, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Prometheus' scrape interval of the sidecars, seconds.
    #[arg(long, default_value_t = 15)]
    pub scrape_interval: i64,
    /// Longest wait for one query, seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// What `recommend` prints (YAML/JSON) — the decision, as a diff.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub service: String,
    pub namespace: String,
    /// Unix seconds of the evaluation.
    pub at: i64,
    /// Where the configuration in force came from.
    pub current_from: String,
    pub changes: Vec<KnobDiff>,
    pub held: Vec<KnobDiff>,
    pub findings: Vec<Finding>,
}

/// One knob's change: the fields that differ, why, and how sure.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnobDiff {
    pub knob: String,
    pub fields: Vec<FieldDiff>,
    pub reason: String,
    pub confidence: f64,
    pub expected_effect: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    pub change: Change,
}

#[derive(Debug, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub current: Value,
    pub proposed: Value,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rec = rt.block_on(recommend(&args))?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rec)?),
        Output::Yaml => print!("{}", serde_yaml::to_string(&rec)?),
        Output::Table => print_table(&rec),
    }
    Ok(())
}

/// Reads the inputs, observes, decides. Telemetry that is unavailable or malformed is an error
/// (nothing can be recommended); insufficient telemetry is a finding with no change.
pub async fn recommend(args: &Args) -> Result<Recommendation> {
    let (spec, doc_ns) = read_policy(&args.policy)?;
    let namespace = args
        .namespace
        .clone()
        .or(doc_ns)
        .unwrap_or_else(|| "default".to_string());
    let (config, current_from) = match &args.current {
        Some(p) => current_config(p, &spec, &namespace)?,
        None => (
            istio_defaults(&spec),
            "Istio's defaults (no --current)".to_string(),
        ),
    };
    let at = match &args.at {
        Some(t) => parse_time(t).with_context(|| format!("--at {t:?}"))?,
        None => chrono::Utc::now().timestamp(),
    };
    let mut cfg = PrometheusConfig::new(&args.prometheus);
    cfg.scrape_interval_seconds = args.scrape_interval;
    cfg.timeout = std::time::Duration::from_secs(args.timeout.max(1));
    let source = PrometheusSource::new(Prometheus::new(cfg).map_err(|e| anyhow!("{e}"))?);
    let req = ObserveRequest {
        namespace: namespace.clone(),
        spec: spec.clone(),
        end: at,
        config: config.clone(),
    };
    let decision = match source.observe(&req).await {
        Ok(obs) => Governor::new().step(at, &obs, &spec),
        Err(TelemetryError::Insufficient(why)) => insufficient(&spec, at, why),
        Err(e) => bail!("{e}: nothing can be recommended without telemetry"),
    };
    Ok(Recommendation {
        service: spec.target.service.clone(),
        namespace,
        at,
        current_from,
        changes: decision.plan.changes.iter().map(diff).collect(),
        held: decision.plan.held.iter().map(diff).collect(),
        findings: decision.findings,
    })
}

/// The store answered with no series for the service: the same "hold" the Governor gives for
/// too little data, said by the adapter because there is no Observation to give it.
fn insufficient(spec: &PolicySpec, at: i64, why: String) -> Decision {
    Decision {
        service: spec.target.service.clone(),
        at,
        findings: vec![Finding {
            kind: homeostat_models::governor::FindingKind::InsufficientData,
            subject: "service".into(),
            summary: why,
            evidence: Vec::new(),
        }],
        plan: Default::default(),
    }
}

/// The policy file: an AdaptivePolicy document, validated; errors name the file and field.
pub fn read_policy(path: &Path) -> Result<(PolicySpec, Option<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: PolicyDocument =
        serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if let Some(kind) = &doc.kind
        && kind != "AdaptivePolicy"
    {
        bail!(
            "{}: kind: expected AdaptivePolicy, found {kind}",
            path.display()
        );
    }
    if let Err(errs) = doc.spec.validate() {
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        bail!("{}: invalid policy: {}", path.display(), all.join("; "));
    }
    Ok((doc.spec, doc.metadata.namespace))
}

/// The configuration in force from `--current`: the user's Istio / HPA manifests (multi-document
/// YAML, read as the reconciler reads the cluster; Istio's defaults for what they do not set),
/// or homeostat's `MeshConfig` YAML. With where it came from, for the report.
pub fn current_config(
    path: &Path,
    spec: &PolicySpec,
    namespace: &str,
) -> Result<(MeshConfig, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if !manifests::looks_like_manifests(&text) {
        return Ok((read_current(path)?, path.display().to_string()));
    }
    let m =
        manifests::read(&text, spec, namespace).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut config = m.found.mesh_config();
    if config.weights.is_empty() {
        // No VirtualService (or one without subsets): Istio splits evenly.
        config.weights = istio_defaults(spec).weights;
    }
    Ok((config, format!("{} ({})", path.display(), m.objects)))
}

/// The configuration in force, as the models' `MeshConfig` in YAML.
pub fn read_current(path: &Path) -> Result<MeshConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: MeshConfig =
        serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if !cfg.weights.is_empty() {
        let sum: u32 = cfg.weights.values().sum();
        if sum != 100 {
            bail!("{}: weights: sum to {sum}, not 100", path.display());
        }
    }
    Ok(cfg)
}

/// What a mesh runs with no homeostat-owned settings: Istio's outlier-detection and retry
/// defaults, subset weights split evenly (remainder to the first), no HPA.
pub fn istio_defaults(spec: &PolicySpec) -> MeshConfig {
    let subsets = &spec.target.subsets;
    let mut weights = std::collections::BTreeMap::new();
    if subsets.len() > 1 {
        let n = subsets.len() as u32;
        for (i, s) in subsets.iter().enumerate() {
            weights.insert(s.clone(), 100 / n + u32::from(i == 0) * (100 % n));
        }
    }
    MeshConfig {
        route_timeout: None,
        weights,
        outlier_detection: OutlierConfig::default(),
        retries: RetryConfig::default(),
        hpa: None,
    }
}

/// RFC 3339 or unix seconds.
pub fn parse_time(t: &str) -> Result<i64> {
    if let Ok(secs) = t.trim().parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(t.trim())
        .map(|d| d.timestamp())
        .map_err(|e| anyhow!("expected RFC 3339 (2026-01-01T00:30:00Z) or unix seconds: {e}"))
}

fn diff(c: &Change) -> KnobDiff {
    let cur = serde_json::to_value(&c.current).unwrap_or(Value::Null);
    let new = serde_json::to_value(&c.proposed).unwrap_or(Value::Null);
    let mut fields = Vec::new();
    leaf_diff("", &cur, &new, &mut fields);
    KnobDiff {
        knob: c.knob.to_string(),
        fields,
        reason: c.reason.clone(),
        confidence: c.confidence,
        expected_effect: c.expected_effect.clone(),
        held_by: c.held_by.as_ref().map(|h| h.to_string()),
        change: c.clone(),
    }
}

/// The leaves that differ between two JSON values, by dotted path.
fn leaf_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldDiff>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaf_diff(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(FieldDiff {
            field: path.to_string(),
            current: a.clone(),
            proposed: b.clone(),
        }),
        _ => {}
    }
}

fn print_table(r: &Recommendation) {
    println!(
        "service {}/{} at {} (current config: {})",
        r.namespace, r.service, r.at, r.current_from
    );
    if r.changes.is_empty() {
        println!("\nno change recommended");
    } else {
        println!("\nrecommended changes:");
        print_diffs(&r.changes);
    }
    if !r.held.is_empty() {
        println!("\nheld back by a guardrail:");
        print_diffs(&r.held);
    }
    if !r.findings.is_empty() {
        println!("\nfindings:");
        for f in &r.findings {
            println!("  [{:?}] {}: {}", f.kind, f.subject, f.summary);
        }
    }
}

fn print_diffs(diffs: &[KnobDiff]) {
    for d in diffs {
        println!("  {} (confidence {:.2})", d.knob, d.confidence);
        for f in &d.fields {
            println!("    {}: {} → {}", f.field, f.current, f.proposed);
        }
        println!("    why: {}", d.reason);
        if let Some(h) = &d.held_by {
            println!("    held: {h}");
        }
        if !d.expected_effect.is_empty() {
            println!("    expect: {}", d.expected_effect);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn policy_errors_name_the_file_and_every_field() {
        let f = file(
            "apiVersion: homeostat.dev/v1alpha1\nkind: AdaptivePolicy\nmetadata: {name: c}\n\
             spec:\n  target: {service: checkout}\n  controls:\n    retries: {maxAttempts: 0}\n\
             \x20   loadBalancing: {maxStepPercent: 0}\n",
        );
        let e = format!("{:#}", read_policy(f.path()).unwrap_err());
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        assert!(e.contains("spec.controls.retries.maxAttempts"), "{e}");
        assert!(
            e.contains("spec.controls.loadBalancing.maxStepPercent"),
            "{e}"
        );
    }

    #[test]
    fn a_yaml_mistake_says_where() {
        let f = file("metadata: {name: c}\nspec:\n  target: {servce: checkout}\n");
        let e = format!("{:#}", read_policy(f.path()).unwrap_err());
        assert!(e.contains("line 3"), "{e}");
        let f = file("kind: Deployment\nmetadata: {name: c}\nspec: {target: {service: x}}\n");
        let e = format!("{:#}", read_policy(f.path()).unwrap_err());
        assert!(e.contains("kind: expected AdaptivePolicy"), "{e}");
    }

    #[test]
    fn current_config_weights_must_sum_to_100() {
        let f = file(
            "weights: {stable: 90, canary: 20}\noutlierDetection: {consecutive5xxErrors: 5, \
             interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 10}\nretries: \
             {attempts: 2, perTryTimeout: 25s, retryOn: 5xx}\n",
        );
        let e = format!("{:#}", read_current(f.path()).unwrap_err());
        assert!(e.contains("weights: sum to 110"), "{e}");
    }

    #[test]
    fn defaults_split_weights_evenly_and_keep_istios_knobs() {
        let mut spec = PolicySpec::for_service("checkout");
        spec.target.subsets = vec!["a".into(), "b".into(), "c".into()];
        let d = istio_defaults(&spec);
        // 100 / 3 = 33 each, remainder 1 to the first: 34 + 33 + 33 = 100.
        assert_eq!(
            d.weights.values().copied().collect::<Vec<_>>(),
            [34, 33, 33]
        );
        assert_eq!(d.outlier_detection.consecutive_5xx_errors, 5);
        assert_eq!(d.retries.attempts, 2);
        assert!(
            istio_defaults(&PolicySpec::for_service("x"))
                .weights
                .is_empty()
        );
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        // 2026-01-01T00:00:00Z = 20454 days · 86400 s = 1 767 225 600.
        assert_eq!(parse_time("2026-01-01T00:00:00Z").unwrap(), 1_767_225_600);
        assert_eq!(parse_time("1767225600").unwrap(), 1_767_225_600);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn diffs_list_only_the_fields_that_change() {
        let a: Value = serde_json::json!({"weights": {"stable": 90, "canary": 10}});
        let b: Value = serde_json::json!({"weights": {"stable": 100, "canary": 10}});
        let mut out = Vec::new();
        leaf_diff("", &a, &b, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, "weights.stable");
        assert_eq!(out[0].current, 90);
        assert_eq!(out[0].proposed, 100);
    }
}
