//! Intermediate rotation under the same root, hot-loaded.

use meshtrust::scenario::Scenario;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn a_new_intermediate_under_the_same_root_signs_new_workload_certificates() {
    expect::rotation(&run_local(Scenario::IntermediateRotation));
}

#[test]
fn the_rotation_scenario_fails_when_the_reload_is_ignored() {
    let out = run_sabotaged(Scenario::IntermediateRotation, Sabotage::IgnoresReload);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("intermediate-matches-plugged")),
        "{}",
        story(&out)
    );
}
