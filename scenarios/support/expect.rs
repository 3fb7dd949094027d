//! What a passing run of each scenario looks like, on any target. The local tests
//! and the kind tests call the same function, so both targets are held to the same
//! observations and the same snapshot files.

use meshtrust::chain::Snapshot;
use meshtrust::scenario::catalog::AFTER_UPGRADE;
use meshtrust::scenario::{RunOutput, Scenario};

use super::targets::story;

/// The same snapshot file for every target: `scenario__<scenario>__<label>`.
pub fn chain_snapshot(out: &RunOutput, scenario: Scenario, label: &str) {
    let snap: &Snapshot = out
        .snapshot(scenario, label)
        .unwrap_or_else(|| panic!("no snapshot `{label}`:\n{}", story(out)));
    let name = format!("scenario__{}__{}", scenario.name(), label.replace('/', "-"));
    insta::with_settings!({ snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_yaml_snapshot!(name, snap);
    });
}

fn passed(out: &RunOutput) -> &meshtrust::report::ScenarioReport {
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(out));
    s
}

fn observed(out: &RunOutput, what: impl Fn(&str) -> bool, describe: &str) {
    assert!(
        out.report.scenarios[0].observations.iter().any(|o| what(o)),
        "nothing observed {describe}:\n{}",
        story(out)
    );
}

pub fn plugin_ca(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| o == "cluster1: istiod: Use local CA certificate",
        "istiod's plug-in log line",
    );
    observed(
        out,
        |o| o.contains("ConfigMap istio-ca-root-cert in foo equals the plugged root-cert.pem"),
        "the root ConfigMap",
    );
    observed(
        out,
        |o| o.contains("the server saw spiffe://cluster.local/ns/foo/sa/sleep"),
        "sleep's identity at httpbin",
    );
    chain_snapshot(out, Scenario::PluginCa, "cluster1/foo/httpbin");
}

pub fn default_ca(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| o.contains("fails as expected: self-signed-fallback"),
        "the self-signed fallback",
    );
    chain_snapshot(out, Scenario::DefaultCa, "cluster1/foo/httpbin");
}

pub fn shared_root(out: &RunOutput) {
    passed(out);
    // The same redacted snapshot for both clusters: only the cluster name differs, and it is redacted.
    assert_eq!(
        out.snapshot(Scenario::MulticlusterSharedRoot, "cluster1/foo/httpbin"),
        out.snapshot(Scenario::MulticlusterSharedRoot, "cluster2/foo/httpbin"),
    );
    chain_snapshot(
        out,
        Scenario::MulticlusterSharedRoot,
        "cluster2/foo/httpbin",
    );
}

pub fn different_roots(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| o.contains("refused as expected"),
        "the cross-cluster refusal",
    );
}

pub fn strict(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| o.starts_with("STRICT: plaintext refused"),
        "plaintext refused under STRICT",
    );
    observed(
        out,
        |o| o == "PERMISSIVE: plaintext accepted (200)",
        "plaintext accepted under PERMISSIVE",
    );
}

pub fn bad_cacerts(out: &RunOutput) {
    passed(out);
    for (cluster, id) in [
        ("bad-incomplete", "incomplete-bundle"),
        ("bad-not-a-ca", "ca-cert-not-ca"),
        ("bad-key-mismatch", "key-mismatch"),
    ] {
        observed(
            out,
            |o| o.starts_with(&format!("{cluster}: istiod refused to start")),
            "istiod's refusal",
        );
        observed(
            out,
            |o| o.contains(&format!("{cluster}: meshtrust check: error[{id}]")),
            "check's explanation",
        );
        observed(
            out,
            |o| o.starts_with(&format!("{cluster}: no workload certificate")),
            "no certificate issued",
        );
    }
}

pub fn rotation(out: &RunOutput) {
    passed(out);
    let after = out
        .snapshot(Scenario::IntermediateRotation, "after rotation")
        .expect("a verdict after rotation");
    assert!(after.conformant);
}

pub fn upgrade(out: &RunOutput) {
    let s = passed(out);
    assert!(s.phases.iter().any(|p| p.name == "upgrade cluster1"));
    let before = out
        .snapshot(Scenario::IstioUpgrade, "cluster1/foo/httpbin")
        .expect("a verdict before the upgrade");
    let after = out
        .snapshot(Scenario::IstioUpgrade, AFTER_UPGRADE)
        .expect("a verdict after the upgrade");
    assert_eq!(before, after);
    chain_snapshot(out, Scenario::IstioUpgrade, "cluster1/foo/httpbin");
}
