//! Several clusters: one root shared (traffic flows), or two roots (it must not).

use meshtrust::scenario::Scenario;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn clusters_sharing_a_root_serve_their_own_intermediates_and_talk_over_mtls() {
    expect::shared_root(&run_local(Scenario::MulticlusterSharedRoot));
}

#[test]
fn the_shared_root_scenario_fails_when_a_cluster_is_plugged_under_another_root() {
    let out = run_sabotaged(Scenario::MulticlusterSharedRoot, Sabotage::SplitsTheRoot);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    for reason in [
        "the two clusters' chains do not end at the same root",
        "cluster2/foo/httpbin",
    ] {
        assert!(
            s.reasons.iter().any(|r| r.contains(reason)),
            "no reason says {reason:?}:\n{}",
            story(&out)
        );
    }
}

#[test]
fn clusters_with_different_roots_refuse_each_other() {
    expect::different_roots(&run_local(Scenario::MulticlusterDifferentRoots));
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
