//! PeerAuthentication: STRICT refuses plaintext, PERMISSIVE accepts it.

use meshtrust::scenario::Scenario;

use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn strict_refuses_plaintext_and_permissive_accepts_it() {
    let out = run_local(Scenario::StrictRejectsPlaintext);
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(&out));
    assert!(
        s.observations
            .iter()
            .any(|o| o.starts_with("STRICT: plaintext refused")),
        "{}",
        story(&out)
    );
    assert!(
        s.observations
            .iter()
            .any(|o| o == "PERMISSIVE: plaintext accepted (200)"),
        "{}",
        story(&out)
    );
}

#[test]
fn the_scenario_fails_when_strict_is_not_applied() {
    let out = run_sabotaged(Scenario::StrictRejectsPlaintext, Sabotage::IgnoresStrict);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("STRICT: a plaintext request got HTTP 200")),
        "{}",
        story(&out)
    );
}
