//! Several clusters: one root shared (traffic flows), or two roots (it must not).

use meshtrust::scenario::Scenario;

use crate::scenario_plugin_ca::assert_chain_snapshot;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn clusters_sharing_a_root_serve_their_own_intermediates_and_talk_over_mtls() {
    let out = run_local(Scenario::MulticlusterSharedRoot);
    assert!(out.report.scenarios[0].passed, "{}", story(&out));
    // The same redacted snapshot for both clusters: only the cluster name differs, and it is redacted.
    assert_eq!(
        out.snapshot(Scenario::MulticlusterSharedRoot, "cluster1/foo/httpbin"),
        out.snapshot(Scenario::MulticlusterSharedRoot, "cluster2/foo/httpbin"),
    );
    assert_chain_snapshot(
        &out,
        Scenario::MulticlusterSharedRoot,
        "cluster2/foo/httpbin",
    );
}

#[test]
fn clusters_with_different_roots_refuse_each_other() {
    let out = run_local(Scenario::MulticlusterDifferentRoots);
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(&out));
    assert!(
        s.observations
            .iter()
            .any(|o| o.contains("refused as expected")),
        "{}",
        story(&out)
    );
}

#[test]
fn the_different_roots_scenario_fails_when_the_clusters_share_a_root_after_all() {
    let out = run_sabotaged(
        Scenario::MulticlusterDifferentRoots,
        Sabotage::SharesOneRoot,
    );
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("across different roots")),
        "{}",
        story(&out)
    );
}
