//! What a passing run of each scenario looks like, on any target. The local tests
//! and the kind tests call the same function, so both targets are held to the same
//! observations and the same snapshot files.

use meshtrust::chain::Snapshot;
use meshtrust::check::Severity;
use meshtrust::report::{Observation, Observed, Transport};
use meshtrust::scenario::catalog::{AFTER_CANARY, AFTER_UPGRADE, ON_CANARY};
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

/// The scenario's trust graph, one snapshot file for every target: `graph__<scenario>`.
pub fn graph_snapshot(out: &RunOutput) {
    let s = &out.report.scenarios[0];
    let graph = meshtrust::report::TrustGraph::of_scenario(s);
    let name = format!("graph__{}", s.name);
    insta::with_settings!({ snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_yaml_snapshot!(name, graph);
    });
}

fn passed(out: &RunOutput) -> &meshtrust::report::ScenarioReport {
    let s = &out.report.scenarios[0];
    assert!(s.passed, "{}", story(out));
    graph_snapshot(out);
    s
}

fn observed(out: &RunOutput, what: impl Fn(&Observation) -> bool, describe: &str) {
    assert!(
        out.report.scenarios[0].observations.iter().any(what),
        "nothing observed {describe}:\n{}",
        story(out)
    );
}

pub fn plugin_ca(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| {
            o.subject == "cluster1"
                && o.observed
                    == Observed::IstiodLog {
                        line: "Use local CA certificate".into(),
                    }
        },
        "istiod's plug-in log line",
    );
    observed(
        out,
        |o| {
            o.subject == "cluster1"
                && o.observed
                    == Observed::RootConfigMap {
                        namespace: "foo".into(),
                        equal: true,
                    }
        },
        "the root ConfigMap",
    );
    observed(
        out,
        |o| matches!(&o.observed, Observed::Request { transport: Transport::Mtls, status: Some(200), peer_identity: Some(id), .. } if id == "spiffe://cluster.local/ns/foo/sa/sleep"),
        "sleep's identity at httpbin",
    );
    chain_snapshot(out, Scenario::PluginCa, "cluster1/foo/httpbin");
}

pub fn default_ca(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| {
            o.subject == "cluster1/foo/httpbin"
                && matches!(&o.observed, Observed::ExpectedFailure { check, .. } if check == "self-signed-fallback")
        },
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
        |o| {
            o.subject == "sleep@cluster1 -> httpbin@cluster2"
                && matches!(
                    o.observed,
                    Observed::Request {
                        transport: Transport::Mtls,
                        status: None,
                        refused: Some(_),
                        ..
                    }
                )
        },
        "the cross-cluster refusal",
    );
}

pub fn strict(out: &RunOutput) {
    passed(out);
    observed(
        out,
        |o| {
            o.subject == "sleep -> httpbin under STRICT"
                && matches!(
                    o.observed,
                    Observed::Request {
                        transport: Transport::Plaintext,
                        status: None,
                        refused: Some(_),
                        ..
                    }
                )
        },
        "plaintext refused under STRICT",
    );
    observed(
        out,
        |o| {
            o.subject == "sleep -> httpbin under PERMISSIVE"
                && matches!(
                    o.observed,
                    Observed::Request {
                        transport: Transport::Plaintext,
                        status: Some(200),
                        ..
                    }
                )
        },
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
            |o| o.subject == cluster && matches!(o.observed, Observed::IstiodRefused { .. }),
            "istiod's refusal",
        );
        observed(
            out,
            |o| {
                o.subject == cluster
                    && matches!(&o.observed, Observed::Finding { id: found, severity: Severity::Error, .. } if found == id)
            },
            "check's explanation",
        );
        observed(
            out,
            |o| o.subject == cluster && matches!(o.observed, Observed::NoCertificate { .. }),
            "no certificate issued",
        );
    }
}

/// The message of check's finding about `cluster`'s bundle, as the report has it.
pub fn finding_message(out: &RunOutput, cluster: &str) -> String {
    out.report.scenarios[0]
        .observations
        .iter()
        .find_map(|o| match &o.observed {
            Observed::Finding { message, .. } if o.subject == cluster => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no finding about {cluster}"))
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

pub fn canary_upgrade(out: &RunOutput) {
    let s = passed(out);
    let phases: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
    for step in [
        "install revision canary",
        "move foo to canary",
        "restart httpbin",
        "request sleep (default) -> httpbin (canary)",
        "restart sleep",
        "uninstall revision default",
        "restart httpbin without default",
    ] {
        assert!(phases.contains(&step), "no phase `{step}`: {phases:?}");
    }
    // httpbin is verified three times (before, on the canary, after); each is a phase of its
    // own, named by its label, so that a report's timings tell them apart.
    for label in ["cluster1/foo/httpbin", ON_CANARY, AFTER_CANARY] {
        let step = format!("verify {label}");
        let n = phases.iter().filter(|p| **p == step).count();
        assert_eq!(n, 1, "phase `{step}` {n} times: {phases:?}");
    }
    let before = out
        .snapshot(Scenario::IstioCanaryUpgrade, "cluster1/foo/httpbin")
        .expect("a verdict before the canary upgrade");
    for label in [ON_CANARY, AFTER_CANARY] {
        let v = out
            .snapshot(Scenario::IstioCanaryUpgrade, label)
            .unwrap_or_else(|| panic!("a verdict `{label}`"));
        assert_eq!(before, v, "{label} differs from before the upgrade");
    }
    observed(
        out,
        |o| {
            o.subject == "cluster1 (canary)"
                && o.observed
                    == Observed::IstiodLog {
                        line: "Use local CA certificate".into(),
                    }
        },
        "the canary istiod's plug-in log line",
    );
    chain_snapshot(out, Scenario::IstioCanaryUpgrade, "cluster1/foo/httpbin");
}
