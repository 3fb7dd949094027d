//! Every scenario on the istiod target: real etcd, kube-apiserver and istiod as processes (issue
//! 16), held to the same expectations and the same snapshot files as the local and kind
//! targets (`support::expect`). A missing binary FAILS, naming `just e2e-tools`.

use std::path::Path;

use meshtrust::control_plane::{Binaries, IstiodTarget};
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::{RunOutput, Scenario};
use serial_test::file_serial;

use crate::support::expect;
use crate::support::targets::{Sabotage, run_in, run_local, run_on, run_sabotaged_on, story};
use meshtrust::check::{CheckOptions, check_bundle};
use meshtrust::pki::Bundle;
use meshtrust::report::Observed;

fn bins() -> Binaries {
    let dir = std::env::var_os("MESHTRUST_E2E_TOOLS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-tools"));
    Binaries::find(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn run_istiod(scenario: Scenario) -> RunOutput {
    let bins = bins();
    run_on(
        move || IstiodTarget::new(bins.clone()),
        scenario,
        KeyAlg::Rsa4096,
    )
}

#[test]
#[file_serial(control_plane)]
fn istiod_plugin_ca() {
    expect::plugin_ca(&run_istiod(Scenario::PluginCa));
}

#[test]
#[file_serial(control_plane)]
fn istiod_plugin_ca_with_istiod_reading_the_secret_from_the_api_server() {
    use meshtrust::scenario::{InstallOptions, Target as _};
    let built = bins();
    let out = run_on(
        move || IstiodTarget::new(built.clone()).with_remote_certs(),
        Scenario::PluginCa,
        KeyAlg::Rsa4096,
    );
    expect::plugin_ca(&out);
    // It really read the Secret (nothing was mounted), and says so; without a Secret it
    // self-signs, the twin.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let certs = tempfile::tempdir().unwrap();
    crate::support::openssl::makefile_bundle(certs.path(), "cluster1");
    for (bundle, says) in [(Some(certs.path().join("cluster1")), true), (None, false)] {
        let mut target = IstiodTarget::new(bins()).with_remote_certs();
        let (outcome, log) = rt.block_on(async {
            target.plug_in("cluster1", bundle.as_deref()).await.unwrap();
            let outcome = target
                .install("cluster1", &InstallOptions::default())
                .await
                .unwrap();
            (outcome, target.istiod_log("cluster1").unwrap())
        });
        assert_eq!(
            log.contains("cacerts Secret found in config cluster"),
            says,
            "{outcome:?}\n{log}"
        );
        let want = if says {
            meshtrust::scenario::CaSource::PluggedIn
        } else {
            meshtrust::scenario::CaSource::SelfSigned
        };
        assert!(
            matches!(&outcome, meshtrust::scenario::InstallOutcome::Installed { ca, .. } if *ca == want),
            "{outcome:?}"
        );
        rt.block_on(target.teardown()).unwrap();
    }
}

#[test]
#[file_serial(control_plane)]
fn istiod_default_ca() {
    expect::default_ca(&run_istiod(Scenario::DefaultCa));
}

#[test]
#[file_serial(control_plane)]
fn istiod_multicluster_shared_root() {
    expect::shared_root(&run_istiod(Scenario::MulticlusterSharedRoot));
}

#[test]
#[file_serial(control_plane)]
fn istiod_multicluster_different_roots() {
    expect::different_roots(&run_istiod(Scenario::MulticlusterDifferentRoots));
}

#[test]
#[file_serial(control_plane)]
fn istiod_strict_rejects_plaintext() {
    expect::strict(&run_istiod(Scenario::StrictRejectsPlaintext));
}

/// What istiod said when it refused each bad bundle, by cluster.
fn refusals(out: &RunOutput) -> Vec<(String, String)> {
    out.report.scenarios[0]
        .observations
        .iter()
        .filter_map(|o| match &o.observed {
            Observed::IstiodRefused { error } => Some((o.subject.clone(), error.clone())),
            _ => None,
        })
        .collect()
}

#[test]
#[file_serial(control_plane)]
fn istiod_bad_cacerts_each_refusal_is_istiods_own_text_and_check_and_the_model_say_the_same() {
    let certs = tempfile::tempdir().unwrap();
    let bins = bins();
    let out = run_in(
        move || IstiodTarget::new(bins.clone()),
        Scenario::BadCacerts,
        KeyAlg::Rsa4096,
        Some(certs.path().to_owned()),
    );
    expect::bad_cacerts(&out);
    // check's findings speak for the istiod that ran (the first pin, 1.30), not the newest.
    let incomplete = expect::finding_message(&out, "bad-incomplete");
    assert!(
        incomplete.contains("istiod 1.30 refuses to start"),
        "{incomplete}"
    );
    let real = refusals(&out);
    assert_eq!(real.len(), 3, "{}", story(&out));
    for (cluster, error) in &real {
        // `check` predicts the text istiod exits with.
        let kind = cluster.trim_start_matches("bad-");
        let bundle = Bundle::read(&certs.path().join("bad").join(kind)).unwrap();
        let predicted: Vec<String> = check_bundle(&bundle, &CheckOptions::default())
            .into_iter()
            .filter_map(|f| f.istiod_error)
            .collect();
        assert!(
            predicted.iter().any(|p| error.contains(p.as_str())),
            "{cluster}: istiod said `{error}`, check predicts {predicted:?}"
        );
    }
    // The local target's model of istiod refuses with the very same text.
    let modelled = refusals(&run_local(Scenario::BadCacerts));
    assert_eq!(
        modelled, real,
        "the local target's refusals differ from real istiod's"
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_intermediate_rotation() {
    expect::rotation(&run_istiod(Scenario::IntermediateRotation));
}

#[test]
#[file_serial(control_plane)]
fn istiod_upgrade_moves_from_one_pinned_release_to_the_next() {
    let built = bins();
    let releases: Vec<String> = built
        .pilot_discovery
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .replace("pilot-discovery-", "")
        })
        .collect();
    assert_eq!(
        releases,
        ["1.30", "1.31"],
        "the upgrade needs both pinned istiods (hint: `just e2e-tools`)"
    );
    let out = run_istiod(Scenario::IstioUpgrade);
    expect::upgrade(&out);
    let started: Vec<&str> = out.report.scenarios[0]
        .milestones
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| n.contains(" ready") && n.contains("istiod"))
        .collect();
    assert_eq!(
        started,
        [
            "cluster1: istiod 1.30 (default) ready",
            "cluster1: istiod 1.31 (default) ready"
        ],
        "{}",
        story(&out)
    );
    // The same as fields: each istiod started, its release and revision, in order.
    let istiods: Vec<(&str, Option<&str>, Option<&str>)> = out.report.scenarios[0]
        .milestones
        .iter()
        .filter(|m| m.event == meshtrust::scenario::Milestone::ISTIOD_READY)
        .map(|m| {
            (
                m.cluster.as_str(),
                m.release.as_deref(),
                m.revision.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        istiods,
        [
            ("cluster1", Some("1.30"), Some("default")),
            ("cluster1", Some("1.31"), Some("default"))
        ]
    );
    // Every istiod start is followed by its first workload certificate, by the same istiod.
    let firsts: Vec<Option<&str>> = out.report.scenarios[0]
        .milestones
        .iter()
        .filter(|m| m.event == meshtrust::scenario::Milestone::FIRST_CERTIFICATE)
        .map(|m| m.release.as_deref())
        .collect();
    assert_eq!(firsts, [Some("1.30"), Some("1.31")]);
}

#[test]
#[file_serial(control_plane)]
fn istiod_canary_upgrade() {
    expect::canary_upgrade(&run_istiod(Scenario::IstioCanaryUpgrade));
}

/// A sabotaged run on real istiod fails, with every reason in `wants`.
fn twin(scenario: Scenario, how: Sabotage, wants: &[&str]) {
    let bins = bins();
    let out = run_sabotaged_on(move || IstiodTarget::new(bins.clone()), scenario, how);
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    for want in wants {
        assert!(
            s.reasons.iter().any(|r| r.contains(want)),
            "no reason says `{want}`:\n{}",
            story(&out)
        );
    }
}

#[test]
#[file_serial(control_plane)]
fn istiod_plugin_ca_fails_when_the_secret_is_never_created() {
    twin(
        Scenario::PluginCa,
        Sabotage::NeverPlugsIn,
        &["self-signed-fallback failed: istiod fell back to its self-signed root"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_default_ca_fails_when_a_bundle_is_plugged_after_all() {
    twin(
        Scenario::DefaultCa,
        Sabotage::PlugsInWhenAskedNotTo,
        &["expected SelfSigned"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_shared_root_fails_when_a_cluster_is_plugged_under_another_root() {
    twin(
        Scenario::MulticlusterSharedRoot,
        Sabotage::SplitsTheRoot,
        &["the two clusters' chains do not end at the same root"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_different_roots_fails_when_the_clusters_share_a_root() {
    twin(
        Scenario::MulticlusterDifferentRoots,
        Sabotage::SharesOneRoot,
        &["across different roots"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_strict_fails_when_strict_is_not_applied() {
    twin(
        Scenario::StrictRejectsPlaintext,
        Sabotage::IgnoresStrict,
        &["STRICT: a plaintext request got HTTP 200"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_bad_cacerts_fails_when_the_bundles_are_fixed() {
    twin(
        Scenario::BadCacerts,
        Sabotage::FixesBadBundles,
        &[
            "expected it to refuse the bundle",
            "a workload got a 4-certificate chain",
        ],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_bad_cacerts_fails_when_istiod_exits_for_another_reason() {
    twin(
        Scenario::BadCacerts,
        Sabotage::CrashesAtStart,
        &["bad-key-mismatch: istiod refused with `flag provided but not defined"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_rotation_fails_when_the_reload_is_dropped() {
    twin(
        Scenario::IntermediateRotation,
        Sabotage::IgnoresReload,
        &["intermediate-matches-plugged"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_upgrade_fails_when_the_upgrade_plugs_another_bundle() {
    twin(
        Scenario::IstioUpgrade,
        Sabotage::UpgradeReplugsAnotherBundle,
        &["the intermediate changed across the upgrade"],
    );
}

#[test]
#[file_serial(control_plane)]
fn istiod_canary_fails_when_the_canary_has_no_cacerts() {
    // The agent trusts `istio-ca-root-cert`, which still holds the plugged root (one istiod
    // publishes it for all revisions), so it cannot connect to the self-signed canary's CA.
    // The local model once let httpbin start there; it now fails the same way.
    twin(
        Scenario::IstioCanaryUpgrade,
        Sabotage::CanaryWithoutCacerts,
        &[
            "cluster1 (canary): istiod uses a SelfSigned CA, expected PluggedIn",
            "`cluster1/foo/httpbin` cannot reach the CA",
        ],
    );
}

#[test]
#[file_serial(control_plane)]
fn no_process_or_directory_is_left_when_the_target_is_torn_down_or_dropped() {
    use meshtrust::scenario::{InstallOptions, Target as _};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let certs = tempfile::tempdir().unwrap();
    crate::support::openssl::makefile_bundle(certs.path(), "cluster1");
    let bundle = certs.path().join("cluster1");
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            ["etcd", "kube-apiserver", "pilot-discovery"]
                .iter()
                .any(|b| c.contains(b))
        })
    };
    for drop_only in [false, true] {
        let mut target = IstiodTarget::new(bins());
        let (dirs, pids) = rt.block_on(async {
            target.plug_in("cluster1", Some(&bundle)).await.unwrap();
            target
                .install("cluster1", &InstallOptions::default())
                .await
                .unwrap();
            target.footprint()
        });
        assert_eq!(pids.len(), 3, "etcd, kube-apiserver, istiod: {pids:?}");
        assert!(pids.iter().all(|&p| alive(p)) && dirs.iter().all(|d| d.exists()));
        if drop_only {
            drop(target);
        } else {
            rt.block_on(target.teardown()).unwrap();
            assert_eq!(target.footprint(), (vec![], vec![]));
        }
        for pid in pids {
            assert!(!alive(pid), "process {pid} outlived the target");
        }
        for dir in dirs {
            assert!(!dir.exists(), "{} is left behind", dir.display());
        }
    }
}

#[test]
#[file_serial(control_plane)]
fn a_failed_scenario_keeps_the_control_planes_logs_and_a_passing_one_keeps_none() {
    let evidence = tempfile::tempdir().unwrap();
    let (built, dir) = (bins(), evidence.path().to_owned());
    let out = run_sabotaged_on(
        move || IstiodTarget::new(built.clone()).with_evidence_dir(dir.clone()),
        Scenario::PluginCa,
        Sabotage::NeverPlugsIn,
    );
    assert!(!out.report.scenarios[0].passed, "{}", story(&out));
    let logs = evidence.path().join("plugin-ca/cluster1");
    let names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".log")), "{names:?}");
    for want in ["etcd.log", "kube-apiserver.log"] {
        assert!(names.iter().any(|n| n == want), "no {want}: {names:?}");
    }
    let istiod = names
        .iter()
        .find(|n| n.starts_with("istiod-") && n.ends_with("_istiod.log"))
        .unwrap_or_else(|| panic!("no istiod log: {names:?}"));
    let text = std::fs::read_to_string(logs.join(istiod)).unwrap();
    // Nothing was plugged in: istiod's own words say why the scenario failed.
    assert!(text.contains("self-signed"), "{text}");
    // The twin: a scenario that passes leaves no evidence.
    let clean = tempfile::tempdir().unwrap();
    let (built, dir) = (bins(), clean.path().to_owned());
    let out = run_on(
        move || IstiodTarget::new(built.clone()).with_evidence_dir(dir.clone()),
        Scenario::PluginCa,
        KeyAlg::P256,
    );
    assert!(out.report.scenarios[0].passed, "{}", story(&out));
    assert_eq!(std::fs::read_dir(clean.path()).unwrap().count(), 0);
}

/// Real istiod, seen here: under `USE_REMOTE_CERTS` a rotated Secret is never taken (istiod
/// read it once at start; its file watcher watches only its own copy). The mounted rotation
/// (`istiod_rotation`) is the twin that passes.
#[test]
#[file_serial(control_plane)]
fn istiod_reading_the_secret_from_the_api_server_does_not_take_a_rotated_secret() {
    let built = bins();
    let out = run_on(
        move || IstiodTarget::new(built.clone()).with_remote_certs(),
        Scenario::IntermediateRotation,
        KeyAlg::P256,
    );
    let s = &out.report.scenarios[0];
    assert!(!s.passed, "{}", story(&out));
    assert!(
        s.reasons.iter().any(|r| r.contains(
            "istiod logged nothing about the new cacerts: with USE_REMOTE_CERTS istiod reads Secret `cacerts` once"
        )),
        "{}",
        story(&out)
    );
    // It did start from the Secret: the failure is the rotation's alone.
    assert!(
        s.observations.iter().any(|o| o.observed
            == Observed::IstiodLog {
                line: "Use local CA certificate".into()
            }),
        "{}",
        story(&out)
    );
}
