//! An Istio upgrade keeps the plugged CA, in place and as a canary: same root, same
//! intermediate, same snapshot, and workloads on both revisions talk over mTLS meanwhile.

use meshtrust::scenario::Scenario;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn an_upgrade_keeps_the_plugged_root_and_intermediate_and_the_snapshot() {
    expect::upgrade(&run_local(Scenario::IstioUpgrade));
}

#[test]
fn the_upgrade_scenario_fails_when_the_upgrade_plugs_in_another_clusters_bundle() {
    let out = run_sabotaged(
        Scenario::IstioUpgrade,
        Sabotage::UpgradeReplugsAnotherBundle,
    );
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r == "the intermediate changed across the upgrade"),
        "{}",
        story(&out)
    );
    assert!(
        s.reasons
            .iter()
            .any(|r| r.starts_with("after upgrade: intermediate-matches-plugged failed")),
        "{}",
        story(&out)
    );
}

#[test]
fn a_canary_upgrade_serves_one_intermediate_from_both_revisions_and_ends_with_the_same_snapshot() {
    expect::canary_upgrade(&run_local(Scenario::IstioCanaryUpgrade));
}

#[test]
fn a_canary_revision_without_cacerts_self_signs_and_its_workloads_cannot_reach_it() {
    // `istio-ca-root-cert` keeps the plugged root (one istiod publishes it for every
    // revision), so the agent cannot verify the self-signed canary's CA: as real istiod does
    // (the istiod target's twin).
    let out = run_sabotaged(Scenario::IstioCanaryUpgrade, Sabotage::CanaryWithoutCacerts);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    for want in [
        "cluster1 (canary): istiod uses a SelfSigned CA, expected PluggedIn",
        "the target could not carry out a step: start `cluster1/foo/httpbin`: `cluster1/foo/httpbin` cannot reach the CA",
    ] {
        assert!(
            s.reasons.iter().any(|r| r.starts_with(want)),
            "no reason `{want}`:\n{}",
            story(&out)
        );
    }
}

#[test]
fn a_revision_move_that_restarts_nothing_onto_the_canary_is_caught() {
    // The namespace never moves: httpbin restarts on the old revision, which is then
    // removed under it; the scenario must not pass on a canary that served nothing.
    let out = run_sabotaged(Scenario::IstioCanaryUpgrade, Sabotage::IgnoresRevisionMove);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons.iter().any(|r| r.starts_with(
            "httpbin cannot restart once revision default is removed (istio is not installed in cluster `cluster1`"
        ) && r.ends_with("foo never moved to canary")),
        "{}",
        story(&out)
    );
}
