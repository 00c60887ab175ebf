//! The external tools the end-to-end tests need (Debian: `apt-get install -y prometheus`).

use std::path::PathBuf;

/// `promtool` and `prometheus`, from `HOMEOSTAT_PROMTOOL` / `HOMEOSTAT_PROMETHEUS` or `PATH`.
#[derive(Debug, Clone)]
pub struct Tools {
    pub promtool: PathBuf,
    pub prometheus: PathBuf,
}

/// The tools, or `None` after printing why the test is skipped. Under `CI=true` a missing tool
/// is a failure: CI must not pass by skipping.
pub fn prometheus_tools(test: &str) -> Option<Tools> {
    let promtool = find("promtool", "HOMEOSTAT_PROMTOOL");
    let prometheus = find("prometheus", "HOMEOSTAT_PROMETHEUS");
    match (promtool, prometheus) {
        (Some(promtool), Some(prometheus)) => Some(Tools {
            promtool,
            prometheus,
        }),
        _ => {
            let why = "promtool and prometheus are needed (Debian: apt-get install -y \
                       prometheus; or set HOMEOSTAT_PROMTOOL and HOMEOSTAT_PROMETHEUS)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn find(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
