//! `meshtrust verify` as a process: exit codes, output, and the exact words of
//! its bad-input errors (a contract: scripts and people read them).

use assert_cmd::Command;
use predicates::prelude::*;

use crate::support::chains::{HTTPBIN, Leaf, Mesh, write_pem};

fn meshtrust() -> Command {
    Command::cargo_bin("meshtrust").expect("the meshtrust binary is built")
}

const CHAIN_HINT: &str = "(hint: CHAIN_FILE is the chain a workload serves: the PEM blocks printed by `openssl s_client -showcerts` or `meshtrust probe`, or one DER certificate)";

/// A mesh, and a conformant chain of cluster1 written as `chain.pem`.
fn conformant() -> (Mesh, std::path::PathBuf) {
    let mesh = Mesh::new(&["cluster1", "cluster2"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let path = write_pem(mesh.dir.path(), "chain.pem", &served);
    (mesh, path)
}

#[test]
fn a_conformant_chain_exits_0_with_every_check_passed() {
    let (mesh, chain) = conformant();
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .arg(&chain)
        .args(["--expect-id", HTTPBIN, "--expect-ttl", "24h"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS root-matches-plugged"))
        .stdout(predicate::str::contains("PASS leaf-verifies"))
        .stdout(predicate::str::ends_with("conformant\n"));
}

#[test]
fn a_chain_of_another_cluster_exits_1_naming_the_failed_check() {
    let (mesh, chain) = conformant();
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster2"))
        .arg("--other-cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .arg(&chain)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "FAIL intermediate-matches-plugged  position 2 is cluster1/ca-cert.pem, not cluster2/ca-cert.pem",
        ))
        .stdout(predicate::str::ends_with(
            "not conformant: intermediate-matches-plugged failed\n",
        ));
}

#[test]
fn the_chain_can_come_from_stdin_as_der_and_the_verdict_as_json() {
    let mesh = Mesh::new(&["cluster1"]);
    let leaf = mesh.leaf("cluster1", &Leaf::default());
    // One DER certificate: only the leaf, so the chain is incomplete (exit 1).
    let out = meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .args(["-", "--format", "json"])
        .write_stdin(leaf.to_vec())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(json["conformant"], false);
    assert_eq!(json["length"], 1);
    assert_eq!(json["checks"][0]["id"], "root-matches-plugged");
    assert_eq!(json["checks"][0]["status"], "fail");
    assert_eq!(
        json["chain"][0]["info"]["spiffe_ids"][0]["service_account"],
        "httpbin"
    );
}

#[test]
fn a_wrong_expected_identity_exits_1() {
    let (mesh, chain) = conformant();
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .arg(&chain)
        .args(["--expect-id", "spiffe://cluster.local/ns/foo/sa/sleep"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL spiffe-id"));
}

/// Runs verify on a chain file with these bytes against a valid bundle.
fn verify_bytes(bytes: &[u8]) -> (assert_cmd::assert::Assert, std::path::PathBuf, Mesh) {
    let mesh = Mesh::new(&["cluster1"]);
    let path = mesh.dir.path().join("chain.pem");
    std::fs::write(&path, bytes).unwrap();
    let assert = meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .arg(&path)
        .assert();
    (assert, path, mesh)
}

#[test]
fn an_empty_chain_file_exits_2_with_the_exact_error() {
    let (assert, path, _mesh) = verify_bytes(b"");
    assert.code(2).stdout("").stderr(format!(
        "error: `{}` is not a certificate chain: the file is empty {CHAIN_HINT}\n",
        path.display()
    ));
}

#[test]
fn a_private_key_instead_of_a_chain_exits_2_with_the_exact_error() {
    let mesh = Mesh::new(&["cluster1"]);
    let key = mesh.cluster_dir("cluster1").join("ca-key.pem");
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .arg(&key)
        .assert()
        .code(2)
        .stderr(format!(
            "error: `{}` is not a certificate chain: it holds a private key, not a certificate {CHAIN_HINT}\n",
            key.display()
        ));
}

#[test]
fn a_directory_that_is_not_a_cacerts_bundle_exits_2_with_the_exact_error() {
    let (mesh, chain) = conformant();
    let empty = tempfile::tempdir().unwrap();
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(empty.path())
        .arg(&chain)
        .assert()
        .code(2)
        .stderr(format!(
            "error: `{}` is not a cacerts bundle: none of ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem (or tls.crt, tls.key, ca.crt) is in it (hint: point at a directory made by `meshtrust certs cacerts NAME`)\n",
            empty.path().display()
        ));
    drop(mesh);
}

#[test]
fn garbage_truncated_pem_and_truncated_der_exit_2_without_a_panic() {
    let mesh = Mesh::new(&["cluster1"]);
    let pem = std::fs::read(mesh.cluster_dir("cluster1").join("ca-cert.pem")).unwrap();
    let der = mesh.intermediate("cluster1").cert_der().to_vec();
    for (bytes, says) in [
        (
            b"\x00\xffnot a certificate\n".to_vec(),
            "no `-----BEGIN CERTIFICATE-----` block in it",
        ),
        (pem[..pem.len() / 2].to_vec(), "malformed PEM"),
        (
            der[..der.len() - 7].to_vec(),
            "it looks like DER but does not parse as X.509",
        ),
    ] {
        let (assert, _, _mesh) = verify_bytes(&bytes);
        assert
            .code(2)
            .stderr(predicate::str::contains(says))
            .stderr(predicate::str::contains(CHAIN_HINT))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn a_missing_file_an_incomplete_bundle_and_bad_flags_exit_2() {
    let (mesh, chain) = conformant();
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster1"))
        .arg(mesh.dir.path().join("nope.pem"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.pem").and(predicate::str::contains("cannot read")));

    std::fs::remove_file(mesh.cluster_dir("cluster2").join("cert-chain.pem")).unwrap();
    meshtrust()
        .arg("verify")
        .arg("--cacerts")
        .arg(mesh.cluster_dir("cluster2"))
        .arg(&chain)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no `cert-chain.pem`"));

    for (flag, value, says) in [
        ("--expect-ttl", "soon", "`soon` is not a duration"),
        (
            "--expect-id",
            "spiffe://cluster.local/foo",
            "is not a SPIFFE workload identity",
        ),
    ] {
        meshtrust()
            .arg("verify")
            .arg("--cacerts")
            .arg(mesh.cluster_dir("cluster1"))
            .arg(&chain)
            .args([flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
}

#[test]
fn the_makefiles_vm_workload_chain_passes_with_notes_and_fails_only_with_istiod_profile() {
    use crate::support::openssl::{makefile_bundle, makefile_vm_workload};
    use meshtrust::chain::{self, Expectations, Snapshot, SpiffeId};

    let tmp = tempfile::tempdir().unwrap();
    makefile_bundle(tmp.path(), "cluster1");
    let chain_file = makefile_vm_workload(tmp.path(), "cluster1");
    let cacerts = tmp.path().join("cluster1");
    let id = "spiffe://cluster.local/ns/cluster1/sa/default";
    meshtrust()
        .args(["verify", "--cacerts"])
        .arg(&cacerts)
        .arg(&chain_file)
        .args(["--expect-id", id])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("PASS leaf-profile")
                .and(predicate::str::contains("note: subjectKeyIdentifier"))
                .and(predicate::str::contains(
                    "PASS chain-length                  3 certificates where istiod serves 4",
                ))
                .and(predicate::str::ends_with("\nconformant\n")),
        );
    // The negative twin: proving istiod issued it, the same chain fails for what differs.
    meshtrust()
        .args(["verify", "--istiod-profile", "--cacerts"])
        .arg(&cacerts)
        .arg(&chain_file)
        .args(["--expect-id", id])
        .assert()
        .code(1)
        .stdout(predicate::str::ends_with(
            "not conformant: leaf-profile, chain-length failed\n",
        ));
    // The snapshot records the notes (key identifiers redacted).
    let bundle = meshtrust::pki::Bundle::read(&cacerts).unwrap();
    let served = chain::read_chain(&chain_file).unwrap();
    let expect = Expectations {
        expect_id: Some(id.parse::<SpiffeId>().unwrap()),
        ..Expectations::now()
    };
    let verdict = chain::verify_chain(&served, &bundle, &[], &expect).unwrap();
    let snap = Snapshot::of(&verdict);
    assert!(snap.conformant);
    insta::with_settings!({ snapshot_path => "../fixtures/snapshots", omit_expression => true }, {
        insta::assert_yaml_snapshot!("makefile_vm_workload_chain", &snap);
    });
}
