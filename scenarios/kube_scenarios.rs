//! The scenarios on real Istio in kind clusters, through the same runner, asserting the same
//! things as the local tests, against the SAME snapshot files. Needs docker, kind, istioctl and
//! the static probe (`just probe-static`, or `MESHTRUST_PROBE`); on a machine without them each
//! test FAILS in seconds naming what is missing (preflight runs first), it never skips.
//!
//! Clusters are the expensive part (a create, an image load, an Istio install each), so ONE
//! set of clusters (two, since the multicluster scenarios are among them) serves every
//! scenario but the upgrade, with the teardown between scenarios; the upgrade has a test (and a
//! nightly row) of its own, since it needs two Istio versions. Each run's clusters and
//! artifacts are named for the run (`meshtrust-e2e-<start>-<pid>`), so a leaked cluster cannot
//! break the next test; the tests still run one at a time (`#[file_serial(kind)]`): they share
//! the docker engine.

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

/// Runs `scenarios` on one fresh set of kind clusters with the real profile (RSA 4096 CAs), as
/// `meshtrust run --target kind` does, and writes meshtrust's JSON and JUnit reports (and
/// `phases.json`) into the run's artifacts directory.
fn run_kind(scenarios: &[Scenario]) -> RunOutput {
    let tools = require_tools();
    let mut istioctl = istioctl_phases();
    let upgrades = scenarios.contains(&Scenario::IstioUpgrade)
        || scenarios.contains(&Scenario::IstioCanaryUpgrade);
    if upgrades && istioctl.len() < 2 {
        // One istioctl: the upgrade (in place or canary) installs the same version again.
        // Said out loud, not skipped: the nightly upgrade row sets MESHTRUST_ISTIOCTL_B.
        let a = istioctl
            .first()
            .cloned()
            .unwrap_or_else(|| tools.istioctl[0].path.clone());
        eprintln!(
            "upgrade: no MESHTRUST_ISTIOCTL_B; upgrading `{}` to itself",
            a.display()
        );
        istioctl = vec![a.clone(), a];
    }
    let mut run = KindRun::single("meshtrust-e2e");
    run.clusters = clusters_for(scenarios);
    run.scenarios = scenarios.to_vec();
    run.kind_config = Some(manifest("kind-config.yaml"));
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
        let artifacts = clusters.run.artifacts.clone();
        let opts = RunOptions {
            scenarios: scenarios.to_vec(),
            key: KeyAlg::Rsa4096,
            ..RunOptions::default()
        };
        let (out, _cleanup) =
            meshtrust::kube::run_scenarios(clusters, &opts, &|s, p| eprintln!("{s}: {p}")).await;
        let out = out.expect("the run's certificates are made");
        assert_eq!(out.report.target, "kind");
        meshtrust::report::write_artifacts(&out.report, &artifacts)
            .unwrap_or_else(|e| panic!("{e}"));
        // The nightly sets this to the job summary: results and trust graphs (Mermaid).
        if let Some(summary) = std::env::var_os("MESHTRUST_SUMMARY") {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .and_then(|mut f| {
                    f.write_all(meshtrust::report::render_markdown(&out.report).as_bytes())
                })
                .unwrap_or_else(|e| panic!("cannot append to MESHTRUST_SUMMARY: {e}"));
        }
        out
    })
}

/// What a passing run of one scenario looks like (`support::expect`).
type Expectation = fn(&RunOutput);

/// `out` narrowed to one scenario, as the shared expectations read it.
fn only(out: &RunOutput, scenario: Scenario) -> RunOutput {
    let mut report = out.report.clone();
    report.scenarios.retain(|s| s.name == scenario.name());
    RunOutput {
        report,
        snapshots: out
            .snapshots
            .iter()
            .filter(|(s, _, _)| *s == scenario)
            .cloned()
            .collect(),
    }
}

#[test]
#[file_serial(kind)]
fn kind_every_scenario_but_the_upgrade_passes_on_one_set_of_clusters() {
    let checks: [(Scenario, Expectation); 7] = [
        (Scenario::PluginCa, expect::plugin_ca),
        (Scenario::DefaultCa, expect::default_ca),
        (Scenario::MulticlusterSharedRoot, expect::shared_root),
        (
            Scenario::MulticlusterDifferentRoots,
            expect::different_roots,
        ),
        (Scenario::StrictRejectsPlaintext, expect::strict),
        (Scenario::BadCacerts, expect::bad_cacerts),
        (Scenario::IntermediateRotation, expect::rotation),
    ];
    let scenarios: Vec<Scenario> = checks.iter().map(|(s, _)| *s).collect();
    // Every scenario but the upgrades, which have their own tests (`kind_upgrade_*`: the
    // nightly's upgrade row, with two Istio versions).
    let elsewhere = [Scenario::IstioUpgrade, Scenario::IstioCanaryUpgrade];
    assert_eq!(
        scenarios.len() + elsewhere.len(),
        Scenario::ALL.len(),
        "a scenario is missing here"
    );
    let out = run_kind(&scenarios);
    // Every scenario's verdict, not just the first failure.
    let failed: Vec<String> = checks
        .iter()
        .filter_map(|(s, check)| {
            let one = only(&out, *s);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&one)))
                .err()
                .map(|_| s.name().to_owned())
        })
        .collect();
    assert!(failed.is_empty(), "failed on kind: {}", failed.join(", "));
}

#[test]
#[file_serial(kind)]
fn kind_upgrade_in_place_keeps_the_plugged_root_and_intermediate_and_the_snapshot() {
    expect::upgrade(&run_kind(&[Scenario::IstioUpgrade]));
}

#[test]
#[file_serial(kind)]
fn kind_upgrade_canary_serves_one_intermediate_from_both_revisions_and_the_same_snapshot() {
    expect::canary_upgrade(&run_kind(&[Scenario::IstioCanaryUpgrade]));
}
