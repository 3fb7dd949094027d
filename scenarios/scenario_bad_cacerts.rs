//! Broken bundles: istiod refuses them, `meshtrust check` says why, no workload gets a certificate.

use meshtrust::scenario::Scenario;

use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn istiod_refuses_each_broken_bundle_and_check_names_the_reason() {
    let out = run_local(Scenario::BadCacerts);
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(&out));
    for id in ["incomplete-bundle", "ca-cert-not-ca", "key-mismatch"] {
        assert!(
            s.observations
                .iter()
                .any(|o| o.contains(&format!("meshtrust check: error[{id}]"))),
            "no `{id}` explanation:\n{}",
            story(&out)
        );
    }
    assert_eq!(
        s.observations
            .iter()
            .filter(|o| o.contains("no workload certificate"))
            .count(),
        3,
        "{}",
        story(&out)
    );
}

#[test]
fn the_scenario_fails_when_istiod_starts_with_a_good_bundle_instead() {
    let out = run_sabotaged(Scenario::BadCacerts, Sabotage::FixesBadBundles);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("expected it to refuse the bundle")),
        "{}",
        story(&out)
    );
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("a workload got a 4-certificate chain")),
        "{}",
        story(&out)
    );
}
