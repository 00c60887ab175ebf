//! `homeostat install`: every manifest deserialises into its k8s-openapi type and says what a
//! platform team needs (least privilege, probes, security context, metrics scraping).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde_json::Value;

use homeostat::cli::install::{Args, render};

fn docs() -> Vec<Value> {
    let args = Args {
        namespace: "ops".into(),
        image: "example.org/homeostat:1.0".into(),
        replicas: 2,
    };
    let text = render(&args).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn install_prints_every_manifest_in_apply_order() {
    assert_eq!(
        kinds(&docs()),
        [
            "CustomResourceDefinition",
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "ServiceMonitor"
        ]
    );
}

#[test]
fn every_manifest_deserialises_into_its_typed_struct() {
    for d in docs() {
        let kind = d["kind"].as_str().unwrap().to_string();
        let ok = match kind.as_str() {
            "CustomResourceDefinition" => {
                serde_json::from_value::<CustomResourceDefinition>(d.clone()).is_ok()
            }
            "Namespace" => serde_json::from_value::<Namespace>(d.clone()).is_ok(),
            "ServiceAccount" => serde_json::from_value::<ServiceAccount>(d.clone()).is_ok(),
            "ClusterRole" => serde_json::from_value::<ClusterRole>(d.clone()).is_ok(),
            "ClusterRoleBinding" => serde_json::from_value::<ClusterRoleBinding>(d.clone()).is_ok(),
            "Role" => serde_json::from_value::<Role>(d.clone()).is_ok(),
            "RoleBinding" => serde_json::from_value::<RoleBinding>(d.clone()).is_ok(),
            "Deployment" => serde_json::from_value::<Deployment>(d.clone()).is_ok(),
            "Service" => serde_json::from_value::<Service>(d.clone()).is_ok(),
            // prometheus-operator's type is not in k8s-openapi: check its shape by hand.
            "ServiceMonitor" => {
                d["apiVersion"] == "monitoring.coreos.com/v1"
                    && d["spec"]["endpoints"][0]["port"] == "http"
                    && d["spec"]["endpoints"][0]["path"] == "/metrics"
                    && d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "homeostat"
            }
            other => panic!("unexpected kind {other}"),
        };
        assert!(ok, "{kind} does not deserialise: {d}");
    }
}

#[test]
fn the_deployment_runs_locked_down_with_probes_and_leader_election() {
    let d = docs()
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let d: Deployment = serde_json::from_value(d).unwrap();
    assert_eq!(d.metadata.namespace.as_deref(), Some("ops"));
    let spec = d.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("homeostat"));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("example.org/homeostat:1.0"));
    assert_eq!(
        c.args.as_deref(),
        Some(&["run".to_string(), "--leader-election".to_string()][..])
    );
    assert_eq!(
        c.liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        c.readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/readyz")
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        (
            sc.allow_privilege_escalation,
            sc.read_only_root_filesystem,
            sc.run_as_non_root
        ),
        (Some(false), Some(true), Some(true))
    );
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let r = c.resources.as_ref().unwrap();
    assert!(
        r.requests.as_ref().unwrap().contains_key("cpu")
            && r.limits.as_ref().unwrap().contains_key("memory")
    );
    let env: Vec<&str> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        env.contains(&"POD_NAME") && env.contains(&"POD_NAMESPACE"),
        "the Lease identity and namespace"
    );
}

#[test]
fn rbac_is_least_privilege_and_bound_to_the_service_account() {
    let docs = docs();
    let cr: ClusterRole = serde_json::from_value(
        docs.iter()
            .find(|d| d["kind"] == "ClusterRole")
            .unwrap()
            .clone(),
    )
    .unwrap();
    for r in cr.rules.unwrap() {
        // No wildcards, no secrets, no delete/update anywhere.
        for v in &r.verbs {
            assert!(
                ["get", "list", "watch", "patch", "create"].contains(&v.as_str()),
                "verb {v}"
            );
        }
        for res in r.resources.unwrap() {
            assert!(!res.contains('*') && res != "secrets", "resource {res}");
        }
    }
    let role: Role =
        serde_json::from_value(docs.iter().find(|d| d["kind"] == "Role").unwrap().clone()).unwrap();
    assert_eq!(role.metadata.namespace.as_deref(), Some("ops"));
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].resources, Some(vec!["leases".to_string()]));
    assert_eq!(rules[0].verbs, ["get", "create", "patch"]);
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        let b = docs.iter().find(|d| d["kind"] == kind).unwrap();
        assert_eq!(b["subjects"][0]["kind"], "ServiceAccount");
        assert_eq!(b["subjects"][0]["name"], "homeostat");
        assert_eq!(b["subjects"][0]["namespace"], "ops");
    }
}
