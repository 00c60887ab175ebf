//! `homeostat install`: prints the manifests a platform team applies (the `linkerd install` /
//! `istioctl manifest generate` convention): the CRD, a ServiceAccount with least-privilege
//! RBAC, the Deployment, a metrics Service and a ServiceMonitor.
//!
//! RBAC grants exactly the requests homeostat makes (asserted against the ApiServerVerifier
//! tests' recorded requests): watch policies and the objects it governs, patch their owned
//! fields with server-side apply, patch policy status, publish Events, hold a Lease.

use std::collections::BTreeMap;

use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::crd::AdaptivePolicy;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Namespace homeostat runs in.
    #[arg(long, default_value = "homeostat-system")]
    pub namespace: String,
    /// Container image.
    #[arg(long, default_value = "ghcr.io/homeostat/homeostat:latest")]
    pub image: String,
    /// Replicas (one leads, the others stand by).
    #[arg(long, default_value_t = 2)]
    pub replicas: i32,
}

pub const NAME: &str = "homeostat";
pub const METRICS_PORT: i32 = 8080;

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels()),
        ..Default::default()
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_string(), NAME.to_string())])
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Cluster-wide rules: every request the reconciler makes, and the list/watch its caches need.
pub fn cluster_rules() -> Vec<PolicyRule> {
    vec![
        // Watched by the controller; the finalizer is added/removed with a JSON patch; read
        // fresh (get) by the webhook before it acts and by a status write that met a conflict.
        rule(
            "homeostat.dev",
            &["adaptivepolicies"],
            &["get", "list", "watch", "patch"],
        ),
        rule("homeostat.dev", &["adaptivepolicies/status"], &["patch"]),
        // Read each run (get), watched for drift (list, watch), owned fields applied (patch).
        rule(
            "networking.istio.io",
            &["destinationrules", "virtualservices"],
            &["get", "list", "watch", "patch"],
        ),
        rule(
            "autoscaling",
            &["horizontalpodautoscalers"],
            &["get", "list", "watch", "patch"],
        ),
        // The Recorder creates an Event, then patches its series when it repeats.
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// Namespaced rules for leader election in homeostat's own namespace.
pub fn lease_rules() -> Vec<PolicyRule> {
    vec![rule(
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "patch"],
    )]
}

fn deployment(args: &Args) -> Deployment {
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(10),
        ..Default::default()
    };
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let q = |s: &str| Quantity(s.into());
    Deployment {
        metadata: meta(NAME, Some(&args.namespace)),
        spec: DeploymentSpec {
            replicas: Some(args.replicas),
            selector: LabelSelector {
                match_labels: Some(labels()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![Container {
                        name: NAME.into(),
                        image: Some(args.image.clone()),
                        args: Some(vec!["run".into(), "--leader-election".into()]),
                        env: Some(vec![
                            EnvVar {
                                name: "POD_NAME".into(),
                                value_from: Some(field("metadata.name")),
                                ..Default::default()
                            },
                            EnvVar {
                                name: "POD_NAMESPACE".into(),
                                value_from: Some(field("metadata.namespace")),
                                ..Default::default()
                            },
                            EnvVar {
                                name: "HOMEOSTAT_LOG_FORMAT".into(),
                                value: Some("json".into()),
                                ..Default::default()
                            },
                            EnvVar {
                                name: "HOMEOSTAT_LOG".into(),
                                value: Some("info".into()),
                                ..Default::default()
                            },
                        ]),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: METRICS_PORT,
                            ..Default::default()
                        }]),
                        liveness_probe: Some(probe("/healthz")),
                        readiness_probe: Some(probe("/readyz")),
                        resources: Some(ResourceRequirements {
                            requests: Some(BTreeMap::from([
                                ("cpu".into(), q("100m")),
                                ("memory".into(), q("128Mi")),
                            ])),
                            limits: Some(BTreeMap::from([("memory".into(), q("512Mi"))])),
                            ..Default::default()
                        }),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            run_as_non_root: Some(true),
                            run_as_user: Some(65532),
                            capabilities: Some(Capabilities {
                                drop: Some(vec!["ALL".into()]),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Every manifest, in apply order, as JSON values.
pub fn manifests(args: &Args) -> Vec<Value> {
    let ns = args.namespace.as_str();
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: NAME.into(),
        namespace: Some(ns.into()),
        ..Default::default()
    };
    vec![
        to(&AdaptivePolicy::crd()),
        to(&Namespace {
            metadata: meta(ns, None),
            ..Default::default()
        }),
        to(&ServiceAccount {
            metadata: meta(NAME, Some(ns)),
            ..Default::default()
        }),
        to(&ClusterRole {
            metadata: meta(NAME, None),
            rules: Some(cluster_rules()),
            ..Default::default()
        }),
        to(&ClusterRoleBinding {
            metadata: meta(NAME, None),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: NAME.into(),
            },
            subjects: Some(vec![subject.clone()]),
        }),
        to(&Role {
            metadata: meta("homeostat-leader-election", Some(ns)),
            rules: Some(lease_rules()),
        }),
        to(&RoleBinding {
            metadata: meta("homeostat-leader-election", Some(ns)),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: "homeostat-leader-election".into(),
            },
            subjects: Some(vec![subject]),
        }),
        to(&deployment(args)),
        to(&Service {
            metadata: meta("homeostat-metrics", Some(ns)),
            spec: Some(ServiceSpec {
                selector: Some(labels()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: METRICS_PORT,
                    target_port: Some(IntOrString::String("http".into())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        // prometheus-operator's ServiceMonitor has no k8s-openapi type.
        json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": { "name": NAME, "namespace": ns, "labels": labels() },
            "spec": {
                "selector": { "matchLabels": labels() },
                "endpoints": [{ "port": "http", "path": "/metrics", "interval": "30s" }],
            },
        }),
    ]
}

/// k8s-openapi's resource types serialise with their `apiVersion` and `kind`; serialising
/// them to JSON cannot fail (string keys only).
fn to<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The manifests as one multi-document YAML stream.
pub fn render(args: &Args) -> Result<String> {
    let mut out = String::from("# Generated by `homeostat install`.\n");
    for m in manifests(args) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&m)?);
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<()> {
    print!("{}", render(&args)?);
    Ok(())
}
