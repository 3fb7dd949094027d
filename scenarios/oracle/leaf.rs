//! The embedded CA's workload certificate against the one Istio's CA server issues for
//! the same CSR and bundle: every field but serial, key and dates.

use std::path::Path;

use meshtrust::mesh::Identity;
use meshtrust::mesh::istiod::{self, Loaded};
use meshtrust::pki::Bundle;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer as _;

use super::Oracle;
use super::corpus::{self, AlgName, Keys, Mutation};
use crate::support::openssl::openssl;

/// A leaf's profile: what must be equal between istiod's leaf and the embedded CA's.
#[derive(Debug, PartialEq, Eq)]
struct Profile {
    version: u32,
    subject: String,
    signature_algorithm: String,
    /// Extensions in order: OID, critical, and a canonical value.
    extensions: Vec<(String, bool, String)>,
}

/// NotAfter - NotBefore, in seconds (both CAs backdate NotBefore by 2 minutes).
fn lifetime(pem_text: &[u8]) -> i64 {
    let der = pem::parse(pem_text).expect("a PEM leaf").into_contents();
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).expect("a leaf");
    let v = cert.validity();
    (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_seconds()
}

fn profile(pem_text: &[u8], issuer_ski: Option<Vec<u8>>) -> Profile {
    let der = pem::parse(pem_text).expect("a PEM leaf").into_contents();
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).expect("a leaf");
    let extensions = cert
        .extensions()
        .iter()
        .map(|e| {
            let value = match e.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => san
                    .general_names
                    .iter()
                    .map(|n| match n {
                        GeneralName::URI(u) => format!("URI:{u}"),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                ParsedExtension::KeyUsage(ku) => format!("{ku}"),
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    format!(
                        "server={} client={} other={}",
                        eku.server_auth,
                        eku.client_auth,
                        eku.other.len()
                    )
                }
                ParsedExtension::BasicConstraints(bc) => {
                    format!("ca={} pathlen={:?}", bc.ca, bc.path_len_constraint)
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    // Equal to the issuer's SKI, or not: the bytes differ between bundles.
                    let id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                    format!("keyid-is-issuer-ski={}", id.is_some() && id == issuer_ski)
                }
                ParsedExtension::SubjectKeyIdentifier(_) => "present".into(),
                other => format!("{other:?}"),
            };
            (e.oid.to_id_string(), e.critical, value)
        })
        .collect();
    Profile {
        version: cert.version().0,
        subject: cert.subject().to_string(),
        signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
        extensions,
    }
}

fn ski_of(ca_cert_pem: &[u8]) -> Option<Vec<u8>> {
    let der = pem::parse(ca_cert_pem).ok()?.into_contents();
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

fn csr(dir: &Path, name: &str, key: &str, cn: bool) -> std::path::PathBuf {
    let subj = if cn { "/CN=httpbin" } else { "/" };
    let (alg, opt) = match key {
        "rsa" => ("rsa:2048", None),
        _ => ("ec", Some("ec_paramgen_curve:P-256")),
    };
    let out = dir.join(format!("{name}.csr"));
    let key_out = dir.join(format!("{name}.key"));
    let mut args = vec!["req", "-new", "-newkey", alg];
    if let Some(o) = opt {
        args.extend(["-pkeyopt", o]);
    }
    args.extend([
        "-nodes",
        "-keyout",
        key_out.to_str().unwrap(),
        "-subj",
        subj,
        "-out",
        out.to_str().unwrap(),
    ]);
    openssl(dir, &args);
    out
}

#[test]
fn the_embedded_ca_issues_the_leaf_istiod_issues_for_the_same_csr_and_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::new();
    let bundles: Vec<(&str, Vec<Mutation>)> = vec![
        ("P-256", vec![]),
        ("P-384", vec![Mutation::IntAlg(AlgName::P384)]),
        ("RSA 2048", vec![Mutation::IntAlg(AlgName::Rsa2048)]),
        ("no subject key id", vec![Mutation::IntNoKeyId]),
        ("expires in 6 h", vec![Mutation::IntExpiresSoon]),
    ];
    let id = "spiffe://cluster.local/ns/foo/sa/httpbin";
    let identity = Identity::new("foo", "httpbin");
    let mut differences = Vec::new();
    for oracle in Oracle::all() {
        for (i, (name, ms)) in bundles.iter().enumerate() {
            let dir = tmp.path().join(format!("{}-{i}", oracle.version));
            corpus::build(&dir, &keys, i, ms);
            let bundle = Bundle::read(&dir).unwrap();
            let Ok(Loaded::PluggedIn(signer)) =
                istiod::load(&bundle, OffsetDateTime::now_utc(), oracle.version)
            else {
                panic!("{name}: the embedded istiod did not load it");
            };
            let issuer_ski = ski_of(&std::fs::read(dir.join("ca-cert.pem")).unwrap());
            for (key, cn) in [("ec", false), ("ec", true), ("rsa", false)] {
                let csr_path = csr(
                    tmp.path(),
                    &format!("{}-{i}-{key}-{cn}", oracle.version),
                    key,
                    cn,
                );
                let csr_pem = std::fs::read_to_string(&csr_path).unwrap();
                let theirs = oracle
                    .sign(std::slice::from_ref(&dir), &csr_path, id)
                    .remove(0);
                let theirs = theirs
                    .sign
                    .expect("the oracle signs")
                    .elements
                    .expect("elements");
                let ours = signer
                    .issue_elements(
                        &csr_pem,
                        &identity,
                        "cluster.local",
                        Duration::ZERO,
                        OffsetDateTime::now_utc(),
                    )
                    .unwrap();
                let (a, b) = (
                    profile(&ours[0], issuer_ski.clone()),
                    profile(theirs[0].as_bytes(), issuer_ski.clone()),
                );
                let (la, lb) = (lifetime(&ours[0]), lifetime(theirs[0].as_bytes()));
                if a != b || (la - lb).abs() > 5 {
                    differences.push(format!(
                        "istio {} / {name} / CSR {key}{}:\n  meshtrust: {a:?} ({la} s)\n  istio:     {b:?} ({lb} s)",
                        oracle.version,
                        if cn { " with CN" } else { "" }
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
