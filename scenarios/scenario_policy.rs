//! PeerAuthentication: STRICT refuses plaintext, PERMISSIVE accepts it.

use meshtrust::scenario::Scenario;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn strict_refuses_plaintext_and_permissive_accepts_it() {
    expect::strict(&run_local(Scenario::StrictRejectsPlaintext));
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
