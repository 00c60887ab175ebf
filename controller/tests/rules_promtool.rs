//! The shipped Prometheus rules (`rules/`) under the real `promtool`: they parse, their unit tests
//! (`rules/tests/*.test.yml`, input series with hand-worked burn rates) pass, every alert has a
//! test, and the `PrometheusRule` that `homeostat rules` prints holds the same rules — the unit
//! tests pass against it too.
//!
//! promtool comes with Debian's `prometheus` package. Without it these tests fail under
//! `CI=true` and skip with a printed reason otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// `name` on the PATH; `None` (skip) when missing outside CI, a failure inside it.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required under CI=true (Debian package: prometheus)"
        );
        eprintln!("skipping: {name} not found on PATH (apt-get install prometheus)");
    }
    found
}

/// Runs promtool; its combined output, and whether it succeeded.
fn promtool(promtool: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(rules_dir().join("tests"))
        .expect("rules/tests")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn rule_files_parse_with_the_expected_rule_counts() {
    let Some(p) = tool("promtool") else { return };
    // istio.rules.yml: per service 7 windows x (requests, errors, error ratio) + 3 quantiles = 24;
    // per subset requests, errors, ratio, peers' ratio + 2 quantiles = 6; SLO objective, budget,
    // minimum rate + 7 burn rates = 10. 24 + 6 + 10 = 40.
    // slo.alerts.yml: 4 burn-rate pairs + the subset outlier = 5.
    // homeostat.alerts.yml: down, reconcile errors, telemetry, rolled back, remediation = 5.
    for (file, rules) in [
        ("istio.rules.yml", 40),
        ("slo.alerts.yml", 5),
        ("homeostat.alerts.yml", 5),
    ] {
        let (ok, out) = promtool(&p, &["check", "rules", file], &rules_dir());
        assert!(ok, "promtool check rules {file}:\n{out}");
        assert!(
            out.contains(&format!("SUCCESS: {rules} rules found")),
            "{file}: expected {rules} rules:\n{out}"
        );
    }
}

#[test]
fn rule_unit_tests_pass() {
    let Some(p) = tool("promtool") else { return };
    let files = test_files();
    assert_eq!(files.len(), 3, "rules/tests: {files:?}");
    let paths: Vec<String> = files.iter().map(|f| format!("tests/{f}")).collect();
    let mut args = vec!["test", "rules"];
    args.extend(paths.iter().map(String::as_str));
    let (ok, out) = promtool(&p, &args, &rules_dir());
    assert!(ok, "promtool test rules:\n{out}");
    assert_eq!(out.matches("SUCCESS").count(), 3, "{out}");
}

#[test]
fn every_alert_has_a_unit_test() {
    let tests: String = test_files()
        .iter()
        .map(|f| std::fs::read_to_string(rules_dir().join("tests").join(f)).expect("read test"))
        .collect();
    let mut alerts = Vec::new();
    for (_, text) in homeostat::rules::RULE_FILES {
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("- alert: ") {
                alerts.push(name.to_string());
            }
        }
    }
    assert_eq!(alerts.len(), 10, "{alerts:?}");
    for a in alerts {
        assert!(
            tests.contains(&format!("alertname: {a}\n        exp_alerts:")),
            "alert {a} has no unit test that expects it to fire"
        );
    }
}

/// The PrometheusRule is generated from the files, not kept beside them: the unit tests are run
/// again with `rule_files` pointing at the resource's `spec` as `homeostat rules --plain` prints
/// it, and the resource's groups are compared with the files'.
#[test]
fn the_prometheus_rule_is_the_same_rules() {
    let rule = homeostat::rules::prometheus_rule("homeostat", "monitoring", &[]).expect("rule");
    let mut from_files = Vec::new();
    for (_, text) in homeostat::rules::RULE_FILES {
        let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("rule file");
        from_files.extend(doc["groups"].as_sequence().expect("groups").iter().cloned());
    }
    assert_eq!(rule["spec"]["groups"].as_sequence(), Some(&from_files));

    let Some(p) = tool("promtool") else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_homeostat"))
        .args(["rules", "--plain"])
        .output()
        .expect("homeostat rules --plain");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("generated.yml"), &out.stdout).expect("write");
    std::fs::create_dir(dir.path().join("tests")).expect("mkdir");
    for f in test_files() {
        let text = std::fs::read_to_string(rules_dir().join("tests").join(&f)).expect("read");
        // Every test file's rule_files block lists ../<file>.yml lines: the first becomes the
        // generated file (which holds them all), the others go (a group loaded twice would be
        // evaluated twice).
        let mut seen = false;
        let rewritten: String = text
            .lines()
            .filter_map(|l| {
                if !l.trim_start().starts_with("- ../") {
                    return Some(l.to_string());
                }
                (!std::mem::replace(&mut seen, true)).then(|| "  - ../generated.yml".to_string())
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(rewritten.contains("../generated.yml"), "{f}: no rule_files");
        std::fs::write(dir.path().join("tests").join(&f), rewritten + "\n").expect("write");
    }
    let (ok, text) = promtool(&p, &["check", "rules", "generated.yml"], dir.path());
    assert!(ok && text.contains("SUCCESS: 50 rules found"), "{text}");
    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(test_files().iter().map(|f| format!("tests/{f}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = promtool(&p, &args, dir.path());
    assert!(ok, "unit tests against the generated rules:\n{text}");
}
