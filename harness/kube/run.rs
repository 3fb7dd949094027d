//! A whole run on real clusters: the scenarios one after another on one set of
//! clusters (shared by every scenario's [`KindTarget`]), then the clusters' cleanup,
//! with `kind export logs` first when anything failed. Used by `meshtrust run
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
    if !output.as_ref().is_ok_and(|o| o.report.passed()) {
        shared.dump_pods().await;
        shared.failed();
    }
    // Deleting clusters blocks (kind is a process); keep it off the async threads.
    let finishing = shared.clone();
    let cleanup = tokio::task::spawn_blocking(move || finishing.finish())
        .await
        .unwrap_or_default();
    (output, cleanup)
}
