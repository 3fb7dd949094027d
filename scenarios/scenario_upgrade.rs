//! An in-place Istio upgrade keeps the plugged CA: same root, same intermediate, same snapshot.

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
