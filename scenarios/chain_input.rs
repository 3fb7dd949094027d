//! Reading a captured chain: PEM, `openssl s_client -showcerts` output, DER;
//! and never a panic on anything else.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meshtrust::chain::{self, CertInfo, ChainError};
use meshtrust::pki;
use proptest::prelude::*;

use crate::support::chains::{Leaf, Mesh, write_pem};

#[test]
fn s_client_showcerts_output_parses_to_the_served_chain_byte_for_byte() {
    let mesh = Mesh::new(&["cluster1"]);
    let (leaf, key) = Leaf::default().signed_with_key(mesh.intermediate("cluster1"));
    let served = mesh.served("cluster1", &leaf);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "leaf.pem", &served[..1]);
    let rest = write_pem(dir.path(), "chain.pem", &served[1..]);
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-naccept", "1", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(dir.path().join("key.pem"))
        .arg("-cert_chain")
        .arg(&rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`openssl s_server` runs");
    // Poll until s_server listens: a 10 s deadline covers a loaded CI machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    let output = loop {
        let out = Command::new("openssl")
            .args(["s_client", "-showcerts", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = server.kill();
    let mut err = String::new();
    if let Some(e) = server.stderr.take() {
        let _ = BufReader::new(e).read_to_string(&mut err);
    }
    let _ = server.wait();
    let stdout = output.stdout;
    assert!(
        stdout
            .lines()
            .any(|l| l.is_ok_and(|l| l.starts_with(" 0 s:"))),
        "s_client printed no chain:\n{}\ns_server: {err}",
        String::from_utf8_lossy(&stdout)
    );
    let parsed = chain::parse_chain(&stdout, Path::new("s_client.txt")).unwrap();
    assert_eq!(
        parsed, served,
        "the chain s_client printed is the chain served"
    );
}

#[test]
fn one_der_certificate_is_a_chain_of_one() {
    let mesh = Mesh::new(&["cluster1"]);
    let leaf = mesh.leaf("cluster1", &Leaf::default());
    let parsed = chain::parse_chain(&leaf, Path::new("leaf.der")).unwrap();
    assert_eq!(parsed, [leaf]);
}

#[test]
fn cert_info_describes_istios_real_workload_leaf() {
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/istio/istio-issued/workload-chain.pem"
    ))
    .unwrap();
    let certs = chain::parse_chain(&pem, Path::new("workload-chain.pem")).unwrap();
    let leaf = CertInfo::from_der(&certs[0]).unwrap();
    assert_eq!(leaf.subject, "");
    assert_eq!(leaf.issuer, "O=cluster.local");
    assert_eq!(leaf.key.to_string(), "RSA 2048");
    assert_eq!(leaf.signature_algorithm, "sha256WithRSAEncryption");
    let bc = leaf.basic_constraints.unwrap();
    assert!(!bc.ca && bc.critical && bc.pathlen.is_none());
    let ku = leaf.key_usage.as_ref().unwrap();
    assert!(ku.critical);
    assert_eq!(ku.usages, ["digitalSignature", "keyEncipherment"]);
    assert_eq!(
        leaf.extended_key_usage.as_deref().unwrap(),
        ["serverAuth", "clientAuth"]
    );
    let san = leaf.subject_alt_names.as_ref().unwrap();
    assert!(san.critical);
    assert_eq!(
        san.uri,
        ["spiffe://cluster.local/ns/ambient/sa/namespace-istio-waypoint"]
    );
    let id = &leaf.spiffe_ids[0];
    assert_eq!(
        (
            id.trust_domain.as_str(),
            id.namespace.as_str(),
            id.service_account.as_str()
        ),
        ("cluster.local", "ambient", "namespace-istio-waypoint")
    );
    assert_eq!(leaf.subject_key_id, None);
    assert_eq!(
        leaf.authority_key_id.as_deref(),
        Some("7E:D2:08:DA:4C:DE:F0:BA:EB:44:71:0D:63:BA:F7:F5:3E:AF:47:55")
    );
    assert_eq!(
        leaf.lifetime(),
        time::Duration::hours(24) + time::Duration::minutes(2)
    );
    assert!(!leaf.self_issued && !leaf.self_signed);

    let root = CertInfo::from_der(&certs[1]).unwrap();
    assert!(root.self_issued && root.self_signed && root.is_ca());
    assert_eq!(root.subject_key_id, leaf.authority_key_id);
    assert_eq!(root.key_usage.unwrap().usages, ["keyCertSign"]);
    // The fingerprint is OpenSSL's.
    let out = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/istio/istio-issued/self-signed-root.pem"
            ),
        ])
        .output()
        .unwrap();
    let openssl = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        openssl.trim(),
        format!("sha256 Fingerprint={}", root.sha256)
    );
}

#[test]
fn cert_info_reads_key_algorithms_and_sizes() {
    for (alg, want) in [
        (pki::KeyAlg::P256, "EC P-256"),
        (pki::KeyAlg::P384, "EC P-384"),
        (pki::KeyAlg::Rsa2048, "RSA 2048"),
    ] {
        let mesh = Mesh::new(&["cluster1"]);
        let leaf = mesh.leaf(
            "cluster1",
            &Leaf {
                key: alg,
                ..Leaf::default()
            },
        );
        assert_eq!(CertInfo::from_der(&leaf).unwrap().key.to_string(), want);
    }
}

fn reason(bytes: &[u8]) -> String {
    match chain::parse_chain(bytes, Path::new("chain.pem")) {
        Err(e @ ChainError::BadChain { .. }) => e.to_string(),
        other => panic!("expected a bad chain, got {other:?}"),
    }
}

#[test]
fn bad_chains_are_errors_that_name_the_file_and_the_problem() {
    let mesh = Mesh::new(&["cluster1"]);
    let pem = pki::to_pem(mesh.intermediate("cluster1").cert_der());
    assert!(
        reason(b"")
            .starts_with("`chain.pem` is not a certificate chain: the file is empty (hint: ")
    );
    assert!(reason(b"hello\x00\xff").contains("no `-----BEGIN CERTIFICATE-----` block in it"));
    assert!(
        reason(mesh.intermediate("cluster1").key_pem().as_bytes())
            .contains("it holds a private key, not a certificate")
    );
    let truncated = &pem[..pem.len() / 2];
    assert!(
        reason(truncated.as_bytes()).contains("malformed PEM"),
        "{}",
        reason(truncated.as_bytes())
    );
    let der = mesh.intermediate("cluster1").cert_der();
    assert!(
        reason(&der[..der.len() - 10]).contains("it looks like DER but does not parse as X.509")
    );
}

fn sample_pem() -> &'static [u8] {
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/istio/istio-issued/workload-chain.pem"
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_the_chain_parser(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        // Anything but a chain is refused as one typed error naming the input and a reason.
        match chain::parse_chain(&bytes, Path::new("fuzz")) {
            Ok(certs) => {
                prop_assert!(!certs.is_empty(), "an empty chain is not Ok");
                for c in certs {
                    prop_assert!(CertInfo::from_der(&c).is_ok(), "parse_chain accepted what CertInfo rejects");
                }
            }
            Err(ChainError::BadChain { path, reason }) => {
                prop_assert_eq!(path, Path::new("fuzz"));
                prop_assert!(!reason.is_empty(), "a refusal without a reason");
            }
            Err(other) => prop_assert!(false, "not a BadChain: {other:?}"),
        }
    }

    #[test]
    fn mutated_pem_never_panics_the_chain_parser(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample_pem().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(certs) = chain::parse_chain(&bytes, Path::new("fuzz")) {
            for c in certs {
                let info = CertInfo::from_der(&c);
                prop_assert!(info.is_ok(), "parse_chain accepted what CertInfo rejects");
            }
        }
    }
}
