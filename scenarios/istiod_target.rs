//! Every scenario on the istiod target: real etcd, kube-apiserver and istiod as processes (issue
//! 16), held to the same expectations and the same snapshot files as the local and kind
//! targets (`support::expect`). A missing binary FAILS, naming `just e2e-tools`.

use std::path::Path;

use meshtrust::control_plane::{Binaries, IstiodTarget};
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::{RunOutput, Scenario};
use serial_test::file_serial;

use crate::support::expect;
use crate::support::targets::{run_on, story};

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
    let out = run_istiod(Scenario::PluginCa);
    eprintln!("{}", story(&out));
    expect::plugin_ca(&out);
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

#[test]
#[file_serial(control_plane)]
fn istiod_bad_cacerts() {
    expect::bad_cacerts(&run_istiod(Scenario::BadCacerts));
}

#[test]
#[file_serial(control_plane)]
fn istiod_intermediate_rotation() {
    expect::rotation(&run_istiod(Scenario::IntermediateRotation));
}

#[test]
#[file_serial(control_plane)]
fn istiod_upgrade() {
    expect::upgrade(&run_istiod(Scenario::IstioUpgrade));
}
