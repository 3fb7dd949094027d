//! A whole run on real clusters: the scenarios one after another on one set of
//! clusters (shared by every scenario's [`KindTarget`]), then the clusters' cleanup,
//! with `kind export logs` first when anything failed. Artifacts go to `<artifacts>/<run>/`:
//! one directory per failed scenario, and one per cluster for kind's logs. Used by `meshtrust run
//! --target kind|kubeconfig` and by the e2e tests, so both run the same way.

use std::sync::Arc;

use super::kind::Cleanup;
use super::{KindClusters, KindTarget};
use crate::scenario::record::Progress;
use crate::scenario::{self, RunError, RunOptions, RunOutput};

/// Runs `opts.scenarios` on `clusters` (never concurrently: they share the clusters) and
/// cleans up. The cleanup happens whatever the outcome.
pub async fn run_scenarios(
    clusters: KindClusters,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> (Result<RunOutput, RunError>, Cleanup) {
    let shared = Arc::new(clusters);
    let opts = RunOptions {
        concurrent: false,
        ..opts.clone()
    };
    let made = {
        let shared = shared.clone();
        move || KindTarget::new(shared.clone())
    };
    let output = scenario::run(made, &opts, progress).await;
    // A failed scenario has already kept its pods and events (`keep_evidence`); the kind
    // logs of the whole run are exported once, when the clusters go.
    if !output.as_ref().is_ok_and(|o| o.report.passed()) {
        shared.failed();
    }
    // Deleting clusters blocks (kind is a process); keep it off the async threads.
    let finishing = shared.clone();
    let started = std::time::Instant::now();
    let cleanup = tokio::task::spawn_blocking(move || finishing.finish())
        .await
        .unwrap_or_default();
    let mut phases = shared.timings.clone();
    if let Ok(out) = &output {
        for s in &out.report.scenarios {
            phases.push((format!("scenario {}", s.name), s.duration));
            // Its steps too (install, workloads ready, each capture), as the JSON report has.
            phases.extend(
                s.phases
                    .iter()
                    .map(|p| (format!("scenario {} / {}", s.name, p.name), p.duration)),
            );
        }
    }
    phases.push(("cleanup".to_owned(), started.elapsed()));
    write_phases(&shared.run.artifacts, &phases);
    (output, cleanup)
}

/// `<artifacts>/<run>/phases.json`: how long each phase of the run took, in seconds, against
/// the budget the README gives (preflight, clusters, images, each scenario, cleanup). Best
/// effort: a report that cannot be written is logged.
pub fn write_phases(run_dir: &std::path::Path, phases: &[(String, std::time::Duration)]) {
    let mut doc = serde_json::Map::new();
    for (name, took) in phases {
        let secs = (took.as_secs_f64() * 10.0).round() / 10.0;
        // A step a scenario repeats (an install per cluster) keeps each time.
        let mut key = name.clone();
        let mut n = 1;
        while doc.contains_key(&key) {
            n += 1;
            key = format!("{name} #{n}");
        }
        doc.insert(key, serde_json::Value::from(secs));
    }
    let file = run_dir.join("phases.json");
    let written = std::fs::create_dir_all(run_dir).and_then(|()| {
        std::fs::write(
            &file,
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        )
    });
    match written {
        Ok(()) => crate::say!("meshtrust: phase times in {}", file.display()),
        Err(e) => tracing::warn!("cannot write `{}`: {e}", file.display()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn each_phase_time_is_written_in_seconds_in_the_runs_directory() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("meshtrust-1796000000-1");
        super::write_phases(
            &run,
            &[
                ("clusters".into(), Duration::from_millis(61_240)),
                ("scenario plugin-ca".into(), Duration::from_secs(200)),
                (
                    "scenario plugin-ca / install".into(),
                    Duration::from_secs(90),
                ),
                (
                    "scenario plugin-ca / install".into(),
                    Duration::from_secs(80),
                ),
            ],
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("phases.json")).unwrap())
                .unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "clusters": 61.2,
                "scenario plugin-ca": 200.0,
                "scenario plugin-ca / install": 90.0,
                "scenario plugin-ca / install #2": 80.0,
            })
        );
    }
}
