//! The doc's task on one cluster, and its converse: no cacerts, istiod self-signs.

use meshtrust::chain::Snapshot;
use meshtrust::scenario::{RunOutput, Scenario};

use crate::support::targets::{Sabotage, run_local, run_sabotaged, story};

/// The same snapshot file for every target: `scenario__<scenario>__<label>`.
pub fn assert_chain_snapshot(out: &RunOutput, scenario: Scenario, label: &str) {
    let snap: &Snapshot = out
        .snapshot(scenario, label)
        .unwrap_or_else(|| panic!("no snapshot `{label}`:\n{}", story(out)));
    let name = format!("scenario__{}__{}", scenario.name(), label.replace('/', "-"));
    insta::with_settings!({ snapshot_path => "../fixtures/snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_yaml_snapshot!(name, snap);
    });
}

#[test]
fn plugin_ca_serves_leaf_intermediate_root_root_from_the_plugged_bundle() {
    let out = run_local(Scenario::PluginCa);
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(&out));
    assert!(
        s.observations
            .iter()
            .any(|o| o == "cluster1: istiod: Use local CA certificate"),
        "{}",
        story(&out)
    );
    assert!(s.observations.iter().any(|o| {
        o.contains("ConfigMap istio-ca-root-cert in foo equals the plugged root-cert.pem")
    }));
    assert!(
        s.observations
            .iter()
            .any(|o| o.contains("the server saw spiffe://cluster.local/ns/foo/sa/sleep"))
    );
    assert_chain_snapshot(&out, Scenario::PluginCa, "cluster1/foo/httpbin");
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
    let out = run_local(Scenario::DefaultCa);
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(&out));
    assert!(
        s.observations
            .iter()
            .any(|o| o.contains("fails as expected: self-signed-fallback")),
        "{}",
        story(&out)
    );
    assert_chain_snapshot(&out, Scenario::DefaultCa, "cluster1/foo/httpbin");
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
