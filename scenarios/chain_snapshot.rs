//! The redacted snapshot: the same for every run and every cluster of a mesh.

use std::path::Path;

use meshtrust::chain::{self, Expectations, Snapshot};
use meshtrust::pki::{self, IntermediateSpec, KeyAlg, RootSpec};

use crate::support::chains::{Leaf, Mesh, now, served_by};
use crate::support::openssl::makefile_bundle;

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../fixtures/snapshots", omit_expression => true }, {
            insta::assert_yaml_snapshot!($name, $value);
        })
    };
}

/// The snapshot of a leaf (RSA 2048, as istio-agent asks) served as istiod serves it
/// from the bundle in `dir`; the verdict must be conformant.
fn served_snapshot(dir: &Path) -> Snapshot {
    let bundle = pki::Bundle::read(dir).unwrap();
    let intermediate = pki::Ca::load(&dir.join("ca-cert.pem"), &dir.join("ca-key.pem")).unwrap();
    let leaf = Leaf {
        key: KeyAlg::Rsa2048,
        ..Leaf::default()
    };
    let served = served_by(&bundle, &leaf.signed_by(&intermediate));
    let verdict = chain::verify_chain(&served, &bundle, &[], &Expectations::at(now())).unwrap();
    assert!(
        verdict.conformant(),
        "{}:\n{}",
        dir.display(),
        chain::render::text(&verdict)
    );
    Snapshot::of(&verdict)
}

#[test]
fn a_makefile_layout_chain_snapshots_identically_on_two_clusters() {
    // The bundles from the Makefile's own openssl recipe (RSA 4096 root and intermediates).
    let make = tempfile::tempdir().unwrap();
    for cluster in ["cluster1", "cluster2"] {
        makefile_bundle(make.path(), cluster);
    }
    let snapshots = ["cluster1", "cluster2"].map(|c| served_snapshot(&make.path().join(c)));
    assert_eq!(snapshots[0], snapshots[1], "cluster1 and cluster2 differ");
    snapshot!("makefile_layout_chain", &snapshots[0]);

    // meshtrust's generator makes the same chain, field for field.
    let ours = tempfile::tempdir().unwrap();
    let clusters = [IntermediateSpec::new("cluster1")];
    let made =
        pki::make::cacerts(ours.path(), &RootSpec::default(), &clusters, false, false).unwrap();
    assert_eq!(
        served_snapshot(&made.clusters[0].1),
        snapshots[0],
        "`meshtrust certs` and the Makefile's recipe differ"
    );
}

#[test]
fn another_clusters_intermediate_snapshots_as_other_cluster() {
    let mesh = Mesh::new(&["cluster1", "cluster2"]);
    let served = mesh.served("cluster2", &mesh.leaf("cluster2", &Leaf::default()));
    let verdict = chain::verify_chain(
        &served,
        &mesh.bundle("cluster1"),
        &[mesh.bundle("cluster2")],
        &Expectations::at(now()),
    )
    .unwrap();
    snapshot!("other_clusters_intermediate", &Snapshot::of(&verdict));
}
