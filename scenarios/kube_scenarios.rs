//! The scenarios on real Istio in kind clusters, through the same runner, asserting the same
//! things as the local tests, against the SAME snapshot files. Needs docker, kind, istioctl and
//! the static probe (`just probe-static`, or `MESHTRUST_PROBE`); on a machine without them each
//! test FAILS in seconds naming what is missing (preflight runs first), it never skips.
//!
//! Every test creates its clusters under one prefix and deletes them afterwards (unless
//! `MESHTRUST_KEEP`), so the tests run one at a time across processes: `#[file_serial(kind)]`.

use std::sync::Arc;

use meshtrust::kube::target::clusters_for;
use meshtrust::kube::{KindClusters, KindRun, KindTarget, ToolSearch};
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::catalog::AFTER_UPGRADE;
use meshtrust::scenario::{self, RunOptions, RunOutput, Scenario};
use serial_test::file_serial;

use super::kube_preflight::{istioctl_phases, require_tools};
use crate::scenario_plugin_ca::assert_chain_snapshot;
use crate::support::targets::story;

fn manifest(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `scenario` on fresh kind clusters (one, or two for the multicluster scenarios) with
/// the real profile (RSA 4096 CAs), as `meshtrust run --target kind` does.
fn run_kind(scenario: Scenario) -> RunOutput {
    let tools = require_tools();
    let mut istioctl = istioctl_phases();
    if scenario == Scenario::IstioUpgrade && istioctl.len() < 2 {
        // One istioctl: the "upgrade" reinstalls the same version over itself. Said out loud,
        // not skipped: the nightly upgrade row sets MESHTRUST_ISTIOCTL_B.
        let a = istioctl
            .first()
            .cloned()
            .unwrap_or_else(|| tools.istioctl[0].path.clone());
        eprintln!(
            "istio-upgrade: no MESHTRUST_ISTIOCTL_B; upgrading `{}` over itself",
            a.display()
        );
        istioctl = vec![a.clone(), a];
    }
    let mut run = KindRun::single("meshtrust-e2e");
    run.clusters = clusters_for(&[scenario]);
    run.kind_config = manifest("kind-config.yaml");
    run.artifacts = manifest("target/meshtrust/artifacts");
    run.probe_binary = std::env::var_os("MESHTRUST_PROBE")
        .map(Into::into)
        .unwrap_or_else(|| manifest("target/x86_64-unknown-linux-gnu/release/meshtrust-probe"));
    run.keep = meshtrust::kube::kind::keep_from_env();
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    rt.block_on(async {
        let shared = KindClusters::start(run, &ToolSearch::from_env(istioctl))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let shared = Arc::new(shared);
        let opts = RunOptions {
            scenarios: vec![scenario],
            key: KeyAlg::Rsa4096,
            workdir: None,
            concurrent: false,
        };
        let made = {
            let shared = shared.clone();
            move || KindTarget::new(shared.clone())
        };
        let out = scenario::run(made, &opts, &|s, p| eprintln!("{s}: {p}")).await;
        if !out.as_ref().is_ok_and(|o| o.report.passed()) {
            shared.failed();
        }
        let finishing = shared.clone();
        let _ = tokio::task::spawn_blocking(move || finishing.finish()).await;
        out.expect("the run's certificates are made")
    })
}

fn passed(out: &RunOutput) {
    assert!(out.report.scenarios[0].passed, "{}", story(out));
    assert_eq!(out.report.target, "kind");
}

#[test]
#[file_serial(kind)]
fn kind_plugin_ca_serves_leaf_intermediate_root_root_from_the_plugged_bundle() {
    let out = run_kind(Scenario::PluginCa);
    passed(&out);
    let s = &out.report.scenarios[0];
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
#[file_serial(kind)]
fn kind_default_ca_fails_the_plugged_root_check_with_the_self_signed_fallback_reason() {
    let out = run_kind(Scenario::DefaultCa);
    passed(&out);
    assert!(
        out.report.scenarios[0]
            .observations
            .iter()
            .any(|o| o.contains("fails as expected: self-signed-fallback")),
        "{}",
        story(&out)
    );
    assert_chain_snapshot(&out, Scenario::DefaultCa, "cluster1/foo/httpbin");
}

#[test]
#[file_serial(kind)]
fn kind_clusters_sharing_a_root_serve_their_own_intermediates_and_talk_over_mtls() {
    let out = run_kind(Scenario::MulticlusterSharedRoot);
    passed(&out);
    assert_chain_snapshot(
        &out,
        Scenario::MulticlusterSharedRoot,
        "cluster2/foo/httpbin",
    );
}

#[test]
#[file_serial(kind)]
fn kind_clusters_with_different_roots_refuse_each_other() {
    let out = run_kind(Scenario::MulticlusterDifferentRoots);
    passed(&out);
    assert!(
        out.report.scenarios[0]
            .observations
            .iter()
            .any(|o| o.contains("refused as expected")),
        "{}",
        story(&out)
    );
}

#[test]
#[file_serial(kind)]
fn kind_strict_refuses_plaintext_and_permissive_accepts_it() {
    let out = run_kind(Scenario::StrictRejectsPlaintext);
    passed(&out);
}

#[test]
#[file_serial(kind)]
fn kind_istiod_refuses_each_broken_bundle() {
    let out = run_kind(Scenario::BadCacerts);
    passed(&out);
    let s = &out.report.scenarios[0];
    for cluster in ["bad-incomplete", "bad-not-a-ca", "bad-key-mismatch"] {
        assert!(
            s.observations
                .iter()
                .any(|o| o.starts_with(&format!("{cluster}: istiod refused to start"))),
            "{}",
            story(&out)
        );
    }
}

#[test]
#[file_serial(kind)]
fn kind_a_new_intermediate_is_hot_loaded() {
    let out = run_kind(Scenario::IntermediateRotation);
    passed(&out);
    assert!(
        out.snapshot(Scenario::IntermediateRotation, "after rotation")
            .expect("a verdict after rotation")
            .conformant
    );
}

#[test]
#[file_serial(kind)]
fn kind_an_upgrade_keeps_the_plugged_root_and_intermediate_and_the_snapshot() {
    let out = run_kind(Scenario::IstioUpgrade);
    passed(&out);
    assert_eq!(
        out.snapshot(Scenario::IstioUpgrade, "cluster1/foo/httpbin"),
        out.snapshot(Scenario::IstioUpgrade, AFTER_UPGRADE)
    );
    assert_chain_snapshot(&out, Scenario::IstioUpgrade, "cluster1/foo/httpbin");
}
