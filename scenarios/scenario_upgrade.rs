//! An in-place Istio upgrade keeps the plugged CA: same root, same intermediate, same snapshot.

use meshtrust::scenario::Scenario;
use meshtrust::scenario::catalog::AFTER_UPGRADE;

use crate::scenario_plugin_ca::assert_chain_snapshot;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn an_upgrade_keeps_the_plugged_root_and_intermediate_and_the_snapshot() {
    let out = run_local(Scenario::IstioUpgrade);
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(&out));
    assert!(s.phases.iter().any(|p| p.name == "upgrade cluster1"));
    let before = out
        .snapshot(Scenario::IstioUpgrade, "cluster1/foo/httpbin")
        .expect("a verdict before the upgrade");
    let after = out
        .snapshot(Scenario::IstioUpgrade, AFTER_UPGRADE)
        .expect("a verdict after the upgrade");
    assert_eq!(before, after);
    assert_chain_snapshot(&out, Scenario::IstioUpgrade, "cluster1/foo/httpbin");
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
