//! The built-in scenario suite, embedded in the binary so `homeostat replay` works on a fresh
//! clone. Scenarios that replay real data name it relative to their own file
//! (`../../../shared/data/...`: the shared directory beside the repository), so that passing
//! the file itself to `replay` reads the same data as the embedded copy; embedded, the path
//! has no file to be relative to, so it is looked up (without its `..`) from the working
//! directory and its ancestors, and a scenario whose data is absent is skipped with a note —
//! no data is copied in.

use std::path::{Component, Path, PathBuf};

use crate::scenario::Scenario;

/// (file name, YAML text) of every built-in scenario.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "bad-canary.yaml",
        include_str!("../scenarios/bad-canary.yaml"),
    ),
    (
        "one-bad-pod.yaml",
        include_str!("../scenarios/one-bad-pod.yaml"),
    ),
    (
        "latency-creep.yaml",
        include_str!("../scenarios/latency-creep.yaml"),
    ),
    ("surge-5x.yaml", include_str!("../scenarios/surge-5x.yaml")),
    (
        "retry-storm.yaml",
        include_str!("../scenarios/retry-storm.yaml"),
    ),
    ("diurnal.yaml", include_str!("../scenarios/diurnal.yaml")),
    (
        "social-network.yaml",
        include_str!("../scenarios/social-network.yaml"),
    ),
    (
        "azure-trace.yaml",
        include_str!("../scenarios/azure-trace.yaml"),
    ),
    ("nab-elb.yaml", include_str!("../scenarios/nab-elb.yaml")),
];

/// A built-in scenario that cannot run here, and why.
#[derive(Debug, Clone)]
pub struct Skip {
    pub name: String,
    pub reason: String,
}

/// Parses every built-in scenario and resolves its data files; those whose arrival data is
/// missing come back as `Err(Skip)`. (Span files are optional: services fall back to their
/// stated distributions, which the run's notes say.)
pub fn builtin() -> Vec<Result<Scenario, Skip>> {
    BUILTIN
        .iter()
        .map(|(file, text)| {
            let label = format!("simulator/scenarios/{file}");
            let mut s = Scenario::parse(&label, text).map_err(|e| Skip {
                name: file.to_string(),
                reason: e.to_string(),
            })?;
            resolve_data(&mut s);
            if let Some(missing) = arrival_data(&s).filter(|p| !p.exists()) {
                return Err(Skip {
                    name: s.name.clone(),
                    reason: format!(
                        "needs {} (the shared data directory beside the repository); not found",
                        missing.display()
                    ),
                });
            }
            Ok(s)
        })
        .collect()
}

fn arrival_data(s: &Scenario) -> Option<PathBuf> {
    match &s.traffic.profile {
        crate::scenario::ProfileSpec::Arrivals { file, .. }
        | crate::scenario::ProfileSpec::RateSeries { file, .. } => Some(file.clone()),
        _ => None,
    }
}

/// Finds each relative data path from the working directory or one of its ancestors (so the
/// suite finds `../shared` from the repository root, a worktree or a sub-directory).
fn resolve_data(s: &mut Scenario) {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    for original in s.data_files() {
        if original.is_absolute() {
            continue;
        }
        let tail: PathBuf = original
            .components()
            .filter(|c| !matches!(c, Component::ParentDir | Component::CurDir))
            .collect();
        let found = cwd
            .ancestors()
            .chain(manifest.ancestors())
            .map(|a| a.join(&tail))
            .find(|p| p.exists());
        if let Some(found) = found {
            s.replace_data_path(&original, &found);
        }
    }
}
