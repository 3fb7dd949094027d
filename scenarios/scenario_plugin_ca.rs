//! The doc's task on one cluster, and its converse: no cacerts, istiod self-signs.

use meshtrust::scenario::Scenario;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

#[test]
fn plugin_ca_serves_leaf_intermediate_root_root_from_the_plugged_bundle() {
    expect::plugin_ca(&run_local(Scenario::PluginCa));
}

#[test]
fn plugin_ca_fails_naming_the_self_signed_root_when_the_secret_was_never_created() {
    let out = run_sabotaged(Scenario::PluginCa, Sabotage::NeverPlugsIn);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r
                .contains("self-signed-fallback failed: istiod fell back to its self-signed root")),
        "{}",
        story(&out)
    );
}

#[test]
fn default_ca_passes_because_the_plugged_root_check_fails_with_the_self_signed_fallback_reason() {
    expect::default_ca(&run_local(Scenario::DefaultCa));
}

#[test]
fn default_ca_fails_when_the_chain_is_conformant_after_all() {
    let out = run_sabotaged(Scenario::DefaultCa, Sabotage::PlugsInWhenAskedNotTo);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("expected it to fail self-signed-fallback")
                || r.contains("expected SelfSigned")),
        "{}",
        story(&out)
    );
}
