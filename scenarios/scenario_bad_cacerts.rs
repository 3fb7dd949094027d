//! Broken bundles: istiod refuses them, `meshtrust check` says why, no workload gets a certificate.

use meshtrust::scenario::Scenario;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn istiod_refuses_each_broken_bundle_and_check_names_the_reason() {
    let out = run_local(Scenario::BadCacerts);
    expect::bad_cacerts(&out);
    // The local model runs the newest release, and check speaks for that one (the istiod
    // target's twin: its first pin, 1.30).
    let incomplete = expect::finding_message(&out, "bad-incomplete");
    assert!(
        incomplete.contains(&format!(
            "istiod {} refuses to start",
            meshtrust::scenario::IstioVersion::LATEST
        )),
        "{incomplete}"
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

#[test]
fn the_scenario_fails_when_istiod_exits_for_another_reason_than_the_bundle() {
    let out = run_sabotaged(Scenario::BadCacerts, Sabotage::CrashesAtStart);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    for cluster in ["bad-incomplete", "bad-not-a-ca", "bad-key-mismatch"] {
        assert!(
            s.reasons.iter().any(|r| r.starts_with(&format!(
                "{cluster}: istiod refused with `flag provided but not defined: -meshConfigg`, not for `"
            ))),
            "{cluster}:\n{}",
            story(&out)
        );
    }
}

#[test]
fn istiods_exit_line_wraps_its_ca_error_once_as_pilot_discovery_does() {
    use meshtrust::report::Observed;
    let out = crate::support::targets::run_local(meshtrust::scenario::Scenario::BadCacerts);
    let lines: Vec<&str> = out.report.scenarios[0]
        .observations
        .iter()
        .filter(|o| o.subject == "bad-incomplete")
        .filter_map(|o| match &o.observed {
            Observed::IstiodLog { line } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines,
        [
            "failed to create discovery service: failed to create CA: failed to create an istiod CA: incomplete signing CA bundle detected"
        ]
    );
}
