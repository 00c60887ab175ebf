//! The AdaptivePolicy CRD: the committed `deploy/crd.yaml` is exactly what `homeostat crd`
//! prints, and the CRD has the names, columns, subresource and schema users rely on.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use homeostat::crd::{AdaptivePolicy, crd_yaml};

#[test]
fn deploy_crd_yaml_is_not_stale() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crd.yaml");
    let committed = std::fs::read_to_string(path).expect("deploy/crd.yaml");
    assert!(
        committed == crd_yaml(),
        "deploy/crd.yaml is stale: regenerate with `cargo run -p homeostat -- crd > deploy/crd.yaml`"
    );
}

#[test]
fn homeostat_crd_prints_the_committed_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_homeostat"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), crd_yaml());
}

#[test]
fn the_crd_has_its_names_columns_status_and_schema() {
    let crd: CustomResourceDefinition = serde_yaml::from_str(&crd_yaml()).unwrap();
    assert_eq!(crd, AdaptivePolicy::crd());
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("adaptivepolicies.homeostat.dev")
    );
    let s = &crd.spec;
    assert_eq!(
        (s.group.as_str(), s.scope.as_str()),
        ("homeostat.dev", "Namespaced")
    );
    assert_eq!(s.names.kind, "AdaptivePolicy");
    assert_eq!(s.names.short_names, Some(vec!["ap".to_string()]));
    let v = &s.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let cols: Vec<(&str, &str)> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        cols,
        [
            ("Mode", ".spec.mode"),
            ("Phase", ".status.phase"),
            ("Last Change", ".status.lastChange"),
            ("Age", ".metadata.creationTimestamp")
        ]
    );
    let schema = serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    // The spec is PolicySpec itself (not wrapped): target.service required, mode an enum.
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["target"]));
    assert_eq!(
        spec["properties"]["target"]["required"],
        serde_json::json!(["service"])
    );
    assert_eq!(
        spec["properties"]["mode"]["enum"],
        serde_json::json!(["DryRun", "Enforce"])
    );
    let status = &schema["properties"]["status"]["properties"];
    for f in [
        "conditions",
        "findings",
        "recommendations",
        "appliedChanges",
        "phase",
        "lastChange",
    ] {
        assert!(
            status.get(f).is_some(),
            "status.{f} missing from the schema"
        );
    }
}
