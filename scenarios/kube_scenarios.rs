//! The scenarios on real Istio in kind clusters, through the same runner, asserting the same
//! things as the local tests, against the SAME snapshot files. Needs docker, kind, istioctl and
//! the static probe (`just probe-static`, or `MESHTRUST_PROBE`); on a machine without them each
//! test FAILS in seconds naming what is missing (preflight runs first), it never skips.
//!
//! Every test creates its clusters under one prefix and deletes them afterwards (unless
//! `MESHTRUST_KEEP`), so the tests run one at a time across processes: `#[file_serial(kind)]`.

use meshtrust::kube::target::clusters_for;
use meshtrust::kube::{KindClusters, KindRun, ToolSearch};
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::{RunOptions, RunOutput, Scenario};
use serial_test::file_serial;

use super::kube_preflight::{istioctl_phases, require_tools};
use crate::support::expect;

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
        let clusters = KindClusters::start(run, &ToolSearch::from_env(istioctl))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = RunOptions {
            scenarios: vec![scenario],
            key: KeyAlg::Rsa4096,
            ..RunOptions::default()
        };
        let (out, _cleanup) =
            meshtrust::kube::run_scenarios(clusters, &opts, &|s, p| eprintln!("{s}: {p}")).await;
        let out = out.expect("the run's certificates are made");
        assert_eq!(out.report.target, "kind");
        out
    })
}

#[test]
#[file_serial(kind)]
fn kind_plugin_ca_serves_leaf_intermediate_root_root_from_the_plugged_bundle() {
    expect::plugin_ca(&run_kind(Scenario::PluginCa));
}

#[test]
#[file_serial(kind)]
fn kind_default_ca_fails_the_plugged_root_check_with_the_self_signed_fallback_reason() {
    expect::default_ca(&run_kind(Scenario::DefaultCa));
}

#[test]
#[file_serial(kind)]
fn kind_clusters_sharing_a_root_serve_their_own_intermediates_and_talk_over_mtls() {
    expect::shared_root(&run_kind(Scenario::MulticlusterSharedRoot));
}

#[test]
#[file_serial(kind)]
fn kind_clusters_with_different_roots_refuse_each_other() {
    expect::different_roots(&run_kind(Scenario::MulticlusterDifferentRoots));
}

#[test]
#[file_serial(kind)]
fn kind_strict_refuses_plaintext_and_permissive_accepts_it() {
    expect::strict(&run_kind(Scenario::StrictRejectsPlaintext));
}

#[test]
#[file_serial(kind)]
fn kind_istiod_refuses_each_broken_bundle() {
    expect::bad_cacerts(&run_kind(Scenario::BadCacerts));
}

#[test]
#[file_serial(kind)]
fn kind_a_new_intermediate_is_hot_loaded() {
    expect::rotation(&run_kind(Scenario::IntermediateRotation));
}

#[test]
#[file_serial(kind)]
fn kind_an_upgrade_keeps_the_plugged_root_and_intermediate_and_the_snapshot() {
    expect::upgrade(&run_kind(Scenario::IstioUpgrade));
}
