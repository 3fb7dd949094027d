//! The redacted snapshot: the same for every run and every cluster of a mesh.

use meshtrust::chain::{self, Expectations, Snapshot};
use meshtrust::pki::{self, IntermediateSpec, KeyAlg, RootSpec};

use crate::support::chains::{Leaf, Mesh, now, served_by};

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../fixtures/snapshots", omit_expression => true }, {
            insta::assert_yaml_snapshot!($name, $value);
        })
    };
}

#[test]
fn a_makefile_layout_chain_snapshots_identically_on_two_clusters() {
    // The real profile: RSA 4096 CAs as the Makefile makes them, an RSA 2048 leaf as istio-agent asks.
    let dir = tempfile::tempdir().unwrap();
    let clusters = ["cluster1", "cluster2"].map(IntermediateSpec::new);
    let made =
        pki::make::cacerts(dir.path(), &RootSpec::default(), &clusters, false, false).unwrap();
    let leaf = Leaf {
        key: KeyAlg::Rsa2048,
        ..Leaf::default()
    };
    let snapshots: Vec<Snapshot> = made
        .clusters
        .iter()
        .map(|(name, path)| {
            let bundle = pki::Bundle::read(path).unwrap();
            let intermediate =
                pki::Ca::load(&path.join("ca-cert.pem"), &path.join("ca-key.pem")).unwrap();
            let served = served_by(&bundle, &leaf.signed_by(&intermediate));
            let verdict =
                chain::verify_chain(&served, &bundle, &[], &Expectations::at(now())).unwrap();
            assert!(
                verdict.conformant(),
                "{name}:\n{}",
                chain::render::text(&verdict)
            );
            Snapshot::of(&verdict)
        })
        .collect();
    assert_eq!(snapshots[0], snapshots[1], "cluster1 and cluster2 differ");
    snapshot!("makefile_layout_chain", &snapshots[0]);
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
