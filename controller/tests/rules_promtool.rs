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

/// What homeostat exports (docs/remediation.md lists them with their labels) and what Istio's
/// standard metrics the rules read; `up` is Prometheus' own for the controller's scrape.
const HOMEOSTAT_METRICS: [&str; 9] = [
    "homeostat_policy_objective_success_rate",
    "homeostat_policy_objective_latency_p99_seconds",
    "homeostat_policy_min_requests_per_second",
    "homeostat_telemetry_up",
    "homeostat_reconcile_errors_total",
    "homeostat_changes_total",
    "homeostat_remediations_total",
    "homeostat_findings_total",
    "up",
];
const ISTIO_METRICS: [&str; 2] = [
    "istio_requests_total",
    "istio_request_duration_milliseconds_bucket",
];

/// The metric names a PromQL expression selects: identifiers that are not functions (followed
/// by `(`), keywords, label names (inside `{}` or a `by (...)`-style list), strings, durations
/// or numbers.
fn metric_names(expr: &str) -> Vec<String> {
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 19] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "NaN",
        "Inf", // operators and constants
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values", // aggregations, which may put `by (...)` before their `(`
    ];
    let b: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut depth) = (0, 0usize);
    let mut label_list: Option<usize> = None;
    let mut expect_list = false;
    let skip_until = |i: &mut usize, end: char| {
        let mut quote: Option<char> = None;
        while *i < b.len() {
            let c = b[*i];
            *i += 1;
            match quote {
                Some(q) if c == '\\' => *i += usize::from(q != '`'),
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
                None if c == end => return,
                None => {}
            }
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            // Reuse the quote-aware scan: a string ends at its own quote.
            let mut j = i;
            while j < b.len() && b[j] != c {
                j += if b[j] == '\\' && c != '`' { 2 } else { 1 };
            }
            i = j + 1;
        } else if c == '{' {
            i += 1;
            skip_until(&mut i, '}');
        } else if c == '[' {
            i += 1;
            skip_until(&mut i, ']');
        } else if c == '(' {
            depth += 1;
            if expect_list {
                label_list = Some(depth);
                expect_list = false;
            }
            i += 1;
        } else if c == ')' {
            if label_list == Some(depth) {
                label_list = None;
            }
            depth = depth.saturating_sub(1);
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == ':') {
                i += 1;
            }
            let ident: String = b[start..i].iter().collect();
            let next = b[i..].iter().find(|c| !c.is_whitespace()).copied();
            if label_list.is_some() || KEYWORDS.contains(&ident.as_str()) {
                continue;
            }
            if LABEL_LISTS.contains(&ident.as_str()) {
                expect_list = next == Some('(');
                continue;
            }
            if next != Some('(') {
                out.push(ident);
            }
        } else {
            i += 1;
        }
    }
    out
}

fn recorded_names() -> Vec<String> {
    homeostat::rules::RULE_FILES
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_metric_name_scanner_finds_metrics_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"sum by (le, x) (rate(foo_bucket{a="b}", c=~"d"}[5m] offset 1h)) / on(x) group_left bar:baz:rate5m > 0.5 and 1e3 < bool NaN"#
        ),
        ["foo_bucket", "bar:baz:rate5m"]
    );
    assert_eq!(
        metric_names(r#"label_replace(m, "dst", "$1", "src", "(.*)") unless absent(up == 1)"#),
        ["m", "up"]
    );
}

/// Every recording and alerting rule reads only Istio's metrics, homeostat's, and series the
/// rules themselves record.
#[test]
fn the_rules_use_only_istio_homeostat_and_recorded_metrics() {
    let recorded = recorded_names();
    assert_eq!(recorded.len(), 40);
    let groups = homeostat::rules::groups().expect("groups");
    let mut checked = 0;
    for g in &groups {
        for r in g["rules"].as_sequence().expect("rules") {
            let expr = r["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "no metric found in {expr}");
            for n in names {
                assert!(
                    ISTIO_METRICS.contains(&n.as_str())
                        || HOMEOSTAT_METRICS.contains(&n.as_str())
                        || recorded.contains(&n),
                    "{n} (in {expr}) is neither Istio's, homeostat's nor recorded here"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 50);
}

/// Every PromQL expression of the Grafana dashboard (panels, annotations, variable queries)
/// parses — promtool checks them as recording rules of a generated file — and reads only
/// metrics homeostat or Istio export, or series `rules/` records from them.
#[test]
fn the_dashboard_queries_parse_and_use_known_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/homeostat.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("json");
    let mut exprs = Vec::new();
    collect_queries(&dash, &mut exprs);
    // 16 panels: 3 rows and 13 with queries, 2 + 3 + 1 + 2 + 1 + 5 + 4 x 1 + 3 x 1 = 21
    // targets; 3 annotation queries; 2 variables.
    assert_eq!(exprs.len(), 21 + 3 + 2, "{exprs:#?}");
    let recorded = recorded_names();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        // Grafana's variables, as it would interpolate them.
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$namespace", "shop")
            .replace("$service", "checkout");
        assert!(!e.contains('$'), "unknown variable in {e}");
        for n in metric_names(&e) {
            assert!(
                ISTIO_METRICS.contains(&n.as_str())
                    || HOMEOSTAT_METRICS.contains(&n.as_str())
                    || recorded.contains(&n),
                "the dashboard reads {n} (in {e}), which neither homeostat nor Istio exports"
            );
        }
        rules += &format!(
            "      - record: dashboard:query:{i}\n        expr: {}\n",
            serde_json::to_string(&e).expect("quote")
        );
    }
    let Some(p) = tool("promtool") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("dashboard.yml"), rules).expect("write");
    let (ok, out) = promtool(&p, &["check", "rules", "dashboard.yml"], dir.path());
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}"
    );
}

/// Panel and annotation `expr`s, and the selector inside each variable's `label_values(...)`.
fn collect_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v.as_str()) {
                    ("expr", Some(e)) => out.push(e.to_string()),
                    ("definition", Some(d)) => {
                        let inner = d
                            .strip_prefix("label_values(")
                            .and_then(|r| r.rsplit_once(','))
                            .map(|(sel, _)| sel.to_string())
                            .expect("label_values(selector, label)");
                        out.push(inner);
                    }
                    _ => collect_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_queries(v, out)),
        _ => {}
    }
}
