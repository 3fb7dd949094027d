//! Unit tests of the model of istiod: each rule, its boundary and its text, on small
//! bundles built with rcgen (the oracle tier holds the same rules to Istio's code).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::load::{self, Detail, Incomplete, KeyProblem, Rule};
use super::reload::{self, Reload};
use super::{IstioVersion, served};
use crate::pki::{Bundle, Layout};
use crate::x509::path::PathError;

const LATEST: IstioVersion = IstioVersion::LATEST;

struct Ca {
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_ca_cert_pem(&self.pem, &self.key).unwrap()
    }
}

fn params(cn: &str, edit: impl FnOnce(&mut CertificateParams)) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Istio");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::LocalityName, "cluster1");
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(365);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    edit(&mut p);
    p
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn root() -> Ca {
    let key = key();
    let pem = params("Root CA", |_| {}).self_signed(&key).unwrap().pem();
    Ca { key, pem }
}

fn intermediate(root: &Ca, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
    let key = key();
    let pem = params("Intermediate CA", edit)
        .signed_by(&key, &root.issuer())
        .unwrap()
        .pem();
    Ca { key, pem }
}

fn crl(by: &Ca) -> String {
    let now = OffsetDateTime::now_utc();
    CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&by.issuer())
    .unwrap()
    .pem()
    .unwrap()
}

/// Writes `files` into a fresh directory under `tmp`.
fn bundle_dir(tmp: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

fn makefile(tmp: &Path, name: &str, root: &Ca, int: &Ca) -> PathBuf {
    bundle_dir(
        tmp,
        name,
        &[
            ("ca-cert.pem", &int.pem),
            ("ca-key.pem", &int.key.serialize_pem()),
            ("cert-chain.pem", &format!("{}{}", int.pem, root.pem)),
            ("root-cert.pem", &root.pem),
        ],
    )
}

fn eval(dir: &Path, version: IstioVersion) -> load::Evaluation {
    load::evaluate(
        &Bundle::read(dir).unwrap(),
        OffsetDateTime::now_utc(),
        version,
    )
}

fn rules(e: &load::Evaluation) -> Vec<Rule> {
    e.failures.iter().map(|f| f.rule).collect()
}

fn v(s: &str) -> IstioVersion {
    s.parse().unwrap()
}

#[test]
fn a_makefile_bundle_loads_with_the_24_hour_default_ttl() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let e = eval(
        &makefile(tmp.path(), "ok", &r, &intermediate(&r, |_| {})),
        LATEST,
    );
    assert!(e.failures.is_empty(), "{:?}", e.failures);
    assert!(e.refusal().is_none() && !e.ignored());
    assert_eq!(e.default_ttl, Some(load::DEFAULT_WORKLOAD_TTL));
    assert_eq!((e.cert_chain.len(), e.roots.len()), (2, 1));
    assert!(e.path.is_some() && e.key.is_some());
}

#[test]
fn an_incomplete_bundle_is_refused_from_1_26_1_and_read_by_the_key_before() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let int = intermediate(&r, |_| {});
    let dir = makefile(tmp.path(), "no-chain", &r, &int);
    std::fs::remove_file(dir.join("cert-chain.pem")).unwrap();
    let refused = eval(&dir, v("1.26.1"));
    assert_eq!(refused.failures[0].reason, load::INCOMPLETE_BUNDLE);
    assert!(matches!(
        refused.failures[0].detail,
        Detail::Incomplete {
            effect: Incomplete::Refused,
            ..
        }
    ));
    assert_eq!(refused.refusal().unwrap().rule, Rule::CompleteBundle);
    let old = eval(&dir, v("1.26.0"));
    assert!(matches!(
        old.failures[0].detail,
        Detail::Incomplete {
            effect: Incomplete::MissingFileFails,
            ..
        }
    ));
    assert!(
        old.failures[0]
            .reason
            .contains("cert-chain.pem: no such file or directory")
    );
    assert!(!old.ignored());
    // Without the key, 1.26.0 ignores the files: self-signed, no refusal.
    std::fs::remove_file(dir.join("ca-key.pem")).unwrap();
    let ignored = eval(&dir, v("1.26.0"));
    assert!(ignored.ignored() && ignored.refusal().is_none());
    assert!(eval(&dir, v("1.26.1")).refusal().is_some());
}

#[test]
fn the_key_rule_names_each_way_a_key_file_goes_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let int = intermediate(&r, |_| {});
    let key_pem = int.key.serialize_pem();
    let cases: [(&str, String, KeyProblem); 4] = [
        (
            "ec-parameters",
            format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{key_pem}"),
            KeyProblem::EcParametersFirst,
        ),
        (
            "encrypted",
            concat!("-----BEGIN ENCRYPTED ", "PRIVATE KEY-----\nMAMCAQA=\n-----END ENCRYPTED PRIVATE KEY-----\n").into(),
            KeyProblem::Encrypted,
        ),
        (
            "legacy",
            concat!("-----BEGIN EC ", "PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n").into(),
            KeyProblem::Encrypted,
        ),
        (
            "certificate-first",
            format!("{}{key_pem}", int.pem),
            KeyProblem::Unparseable("unsupported PEM block type for a private key: CERTIFICATE".into()),
        ),
    ];
    for (name, text, problem) in cases {
        let dir = makefile(tmp.path(), name, &r, &int);
        std::fs::write(dir.join("ca-key.pem"), text).unwrap();
        let e = eval(&dir, LATEST);
        assert_eq!(rules(&e), [Rule::KeyParses], "{name}");
        assert_eq!(e.failures[0].detail, Detail::Key(problem), "{name}");
        assert!(e.failures[0].reason.starts_with(
            "failed to create an istiod CA: failed to create CA KeyCertBundle (failed to parse private key PEM: "
        ));
    }
    let dir = makefile(tmp.path(), "empty-key", &r, &int);
    std::fs::write(dir.join("ca-key.pem"), "").unwrap();
    let e = eval(&dir, LATEST);
    assert_eq!(
        e.failures[0].reason,
        "failed to create an istiod CA: failed to create CA KeyCertBundle (failed to parse private key PEM: invalid PEM-encoded key)"
    );
}

#[test]
fn a_key_of_another_certificate_fails_tls_x509_key_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let dir = makefile(tmp.path(), "mismatch", &r, &intermediate(&r, |_| {}));
    std::fs::write(dir.join("ca-key.pem"), key().serialize_pem()).unwrap();
    let e = eval(&dir, LATEST);
    assert_eq!(rules(&e), [Rule::KeyMatches]);
    assert_eq!(
        e.failures[0].reason,
        "failed to create an istiod CA: failed to create CA KeyCertBundle (the cert does not match the key: tls: private key does not match public key)"
    );
}

#[test]
fn a_signing_certificate_without_ca_true_is_refused_with_istiods_words() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let int = intermediate(&r, |p| p.is_ca = IsCa::ExplicitNoCa);
    let e = eval(&makefile(tmp.path(), "not-ca", &r, &int), LATEST);
    assert_eq!(rules(&e), [Rule::SigningCertIsCa]);
    assert_eq!(e.failures[0].reason, load::NOT_A_CA);
    assert_eq!(
        e.failures[0].detail,
        Detail::NotCa {
            subject: "O=Istio, CN=Intermediate CA, L=cluster1".into()
        }
    );
}

#[test]
fn the_default_ttl_is_capped_by_the_first_chain_certificate_and_refused_once_it_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let soon = intermediate(&r, |p| {
        p.not_after = OffsetDateTime::now_utc() + Duration::hours(6)
    });
    let e = eval(&makefile(tmp.path(), "soon", &r, &soon), LATEST);
    let ttl = e.default_ttl.unwrap();
    assert!(
        ttl > Duration::hours(5) && ttl <= Duration::hours(6),
        "{ttl}"
    );
    let long = intermediate(&r, |p| {
        p.not_after = OffsetDateTime::now_utc() + Duration::hours(25)
    });
    let e = eval(&makefile(tmp.path(), "long", &r, &long), LATEST);
    assert_eq!(e.default_ttl, Some(Duration::hours(24)));

    // An expired first certificate of the chain (not on the path) refuses start-up.
    let old = intermediate(&r, |p| {
        p.not_before = OffsetDateTime::now_utc() - Duration::days(3);
        p.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    });
    let int = intermediate(&r, |_| {});
    let dir = makefile(tmp.path(), "expired-first", &r, &int);
    std::fs::write(
        dir.join("cert-chain.pem"),
        format!("{}{}{}", old.pem, int.pem, r.pem),
    )
    .unwrap();
    let e = eval(&dir, LATEST);
    assert_eq!(rules(&e), [Rule::ChainNotExpired]);
    assert_eq!(e.failures[0].reason, load::CHAIN_EXPIRED);
    assert_eq!(e.default_ttl, None);
    // A first block that is not a certificate.
    std::fs::write(
        dir.join("cert-chain.pem"),
        format!(
            "-----BEGIN X509 CRL-----\nMAMCAQE=\n-----END X509 CRL-----\n{}{}",
            int.pem, r.pem
        ),
    )
    .unwrap();
    let e = eval(&dir, LATEST);
    assert_eq!(rules(&e), [Rule::ChainNotExpired]);
    assert!(
        e.failures[0]
            .reason
            .ends_with("failed to parse the cert: failed to parse X.509 certificate")
    );
    // An empty chain file: istiod then keeps the 24 h default.
    std::fs::write(dir.join("cert-chain.pem"), "").unwrap();
    let e = eval(&dir, LATEST);
    assert!(e.failures.is_empty(), "{:?}", e.failures);
    assert_eq!(e.default_ttl, Some(load::DEFAULT_WORKLOAD_TTL));
}

#[test]
fn the_crl_rule_holds_from_1_27_in_the_istiod_layout_only() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let int = intermediate(&r, |_| {});
    let dir = makefile(tmp.path(), "crl", &r, &int);
    std::fs::write(dir.join("ca-crl.pem"), format!("{}{}", crl(&int), crl(&r))).unwrap();
    assert!(eval(&dir, LATEST).failures.is_empty());
    std::fs::write(dir.join("ca-crl.pem"), crl(&int)).unwrap();
    let e = eval(&dir, LATEST);
    assert_eq!(rules(&e), [Rule::CrlSigned]);
    assert!(
        e.failures[0]
            .reason
            .contains("missing CRL signed by certificates: [CN=Root CA,O=Istio,L=cluster1]")
    );
    // 1.26 does not read the file; an empty file is not a CRL to check.
    assert!(eval(&dir, v("1.26")).failures.is_empty());
    std::fs::write(dir.join("ca-crl.pem"), "").unwrap();
    assert!(eval(&dir, LATEST).failures.is_empty());
    // A block that is not a CRL.
    std::fs::write(
        dir.join("ca-crl.pem"),
        "-----BEGIN X509 CRL-----\nMAMCAQE=\n-----END X509 CRL-----\n",
    )
    .unwrap();
    assert_eq!(
        eval(&dir, LATEST).failures[0].reason,
        "failed to create an istiod CA: failed to create CA KeyCertBundle (failed to parse CRL PEM: x509: malformed crl)"
    );
}

#[test]
fn crls_count_only_from_ca_signers_with_crl_sign() {
    let r = root();
    let no_crl_sign = intermediate(&r, |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    });
    // rcgen will not sign a CRL without cRLSign; sign it with a twin that has it.
    let twin = Ca {
        key: KeyPair::from_pem(&no_crl_sign.key.serialize_pem()).unwrap(),
        pem: params("Intermediate CA", |_| {})
            .signed_by(&no_crl_sign.key, &r.issuer())
            .unwrap()
            .pem(),
    };
    let chain = format!("{}{}", no_crl_sign.pem, r.pem);
    let crls = format!("{}{}", crl(&twin), crl(&r));
    let err = load::crl_rule(chain.as_bytes(), crls.as_bytes()).unwrap_err();
    assert!(err.contains("CN=Intermediate CA"), "{err}");
    // Twin: the signer with cRLSign is accepted.
    let chain = format!("{}{}", twin.pem, r.pem);
    assert_eq!(load::crl_rule(chain.as_bytes(), crls.as_bytes()), Ok(()));
    // A chain block that is not a certificate.
    let err = load::crl_rule(
        b"-----BEGIN X-----\nMAMCAQE=\n-----END X-----\n",
        crls.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "failed to parse cert chain: x509: malformed certificate"
    );
}

#[test]
fn held_bytes_concatenate_tls_crt_and_ca_crt_as_read() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let int = intermediate(&r, |_| {});
    let dir = bundle_dir(
        tmp.path(),
        "tls",
        &[
            ("tls.crt", int.pem.trim_end()),
            ("tls.key", &int.key.serialize_pem()),
            ("ca.crt", &r.pem),
        ],
    );
    let b = Bundle::read(&dir).unwrap();
    assert_eq!(b.layout, Layout::KubernetesTls);
    let (chain, roots) = load::held_bytes(&b);
    assert_eq!(
        chain,
        format!("{}{}", int.pem.trim_end(), r.pem).into_bytes()
    );
    assert_eq!(roots, r.pem.as_bytes());
    // Without its final newline, tls.crt's last block glues to ca.crt's first: Go's
    // pem.Decode then reads neither (the END line does not end, the BEGIN line does not start).
    let e = eval(&dir, LATEST);
    assert_eq!(e.cert_chain.len(), 0);
    std::fs::write(dir.join("tls.crt"), &int.pem).unwrap();
    assert_eq!(eval(&dir, LATEST).cert_chain.len(), 2);
    let istiod = makefile(tmp.path(), "istiod", &r, &int);
    let (chain, roots) = load::held_bytes(&Bundle::read(&istiod).unwrap());
    assert_eq!(chain, format!("{}{}", int.pem, r.pem).into_bytes());
    assert_eq!(roots, r.pem.as_bytes());
}

#[test]
fn go_names_and_go_verify_texts_read_as_gos() {
    let r = root();
    let der = pem::parse(&r.pem).unwrap().into_contents();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        load::go_name(cert.subject()),
        "CN=Root CA,O=Istio,L=cluster1"
    );
    let at = time::macros::datetime!(2026-11-30 12:00 UTC);
    let subject = String::from("s");
    let cases = [
        (
            PathError::Expired {
                subject: subject.clone(),
                not_after: "2026-11-29T00:00:00Z".into(),
            },
            "x509: certificate has expired or is not yet valid: current time 2026-11-30T12:00:00Z is after 2026-11-29T00:00:00Z",
        ),
        (
            PathError::NotYetValid {
                subject: subject.clone(),
                not_before: "2026-12-01T00:00:00Z".into(),
            },
            "x509: certificate has expired or is not yet valid: current time 2026-11-30T12:00:00Z is before 2026-12-01T00:00:00Z",
        ),
        (
            PathError::Eku {
                subject: subject.clone(),
                purpose: "serverAuth",
            },
            "x509: certificate specifies an incompatible key usage",
        ),
        (
            PathError::NotCa {
                subject: subject.clone(),
            },
            "x509: certificate is not authorized to sign other certificates",
        ),
        (
            PathError::PathLen {
                subject: subject.clone(),
                pathlen: 0,
                below: 1,
            },
            "x509: too many intermediates for path length constraint",
        ),
        (
            PathError::NoIssuer {
                subject: subject.clone(),
                issuer: "i".into(),
            },
            "x509: certificate signed by unknown authority",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(load::go_verify_text(&e, at), text);
    }
    let weak = load::go_verify_text(
        &PathError::WeakSignature {
            subject,
            alg: "SHA1-RSA".into(),
        },
        at,
    );
    assert!(weak.contains("insecure algorithm SHA1-RSA"), "{weak}");
}

#[test]
fn every_rule_has_its_own_description() {
    let all = [
        Rule::CompleteBundle,
        Rule::ChainVerifies,
        Rule::KeyParses,
        Rule::KeyMatches,
        Rule::CrlSigned,
        Rule::SigningCertIsCa,
        Rule::ChainNotExpired,
    ];
    let texts: std::collections::BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), all.len());
    assert!(texts.iter().all(|t| t.len() > 10));
}

#[test]
fn reload_compares_roots_by_bytes_then_by_containment_as_each_release_does() {
    let (a, b) = (root(), root());
    let both = format!("{}{}", a.pem, b.pem);
    let crlf = a.pem.replace('\n', "\r\n");
    let new = LATEST;
    let old = v("1.29");
    assert!(reload::root_bundles_related(
        a.pem.as_bytes(),
        both.as_bytes(),
        new
    ));
    assert!(reload::root_bundles_related(
        both.as_bytes(),
        b.pem.as_bytes(),
        new
    ));
    assert!(!reload::root_bundles_related(
        a.pem.as_bytes(),
        b.pem.as_bytes(),
        new
    ));
    assert!(!reload::root_bundles_related(a.pem.as_bytes(), b"", new));
    // The same certificate in other bytes: a set member from 1.30, not a substring before.
    assert!(reload::root_bundles_related(
        a.pem.as_bytes(),
        crlf.as_bytes(),
        new
    ));
    assert!(!reload::root_bundles_related(
        a.pem.as_bytes(),
        crlf.as_bytes(),
        old
    ));
    assert!(reload::root_bundles_related(
        a.pem.as_bytes(),
        both.as_bytes(),
        old
    ));
    assert!(reload::root_bundles_related(
        both.as_bytes(),
        b.pem.as_bytes(),
        old
    ));
    assert!(!reload::root_bundles_related(
        a.pem.as_bytes(),
        b.pem.as_bytes(),
        old
    ));
}

#[test]
fn reload_takes_a_new_intermediate_ignores_a_new_root_and_fails_a_broken_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let now = OffsetDateTime::now_utc();
    let current = r.pem.as_bytes();
    let new_int = makefile(tmp.path(), "new", &r, &intermediate(&r, |_| {}));
    let read = |d: &Path| Bundle::read(d).unwrap();
    assert_eq!(
        reload::reload(current, &read(&new_int), now, LATEST, false),
        Reload::Applied
    );
    assert_eq!(
        reload::reload(current, &read(&new_int), now, LATEST, false).log_line(),
        reload::LOG_APPLIED
    );
    // A non-CA signing certificate: a reload runs only the chain checks and takes it.
    let not_ca = makefile(
        tmp.path(),
        "not-ca",
        &r,
        &intermediate(&r, |p| p.is_ca = IsCa::ExplicitNoCa),
    );
    assert_eq!(
        reload::reload(current, &read(&not_ca), now, LATEST, false),
        Reload::Applied
    );
    // Another root.
    let other = root();
    let foreign = makefile(tmp.path(), "foreign", &other, &intermediate(&other, |_| {}));
    let ignored = reload::reload(current, &read(&foreign), now, LATEST, false);
    assert_eq!(
        ignored,
        Reload::Ignored {
            log: reload::LOG_MULTI_ROOT_DISABLED
        }
    );
    assert_eq!(
        ignored.log_line(),
        "Multi root is disabled, updating new ROOT-CA not supported"
    );
    assert_eq!(
        reload::reload(current, &read(&foreign), now, LATEST, true),
        Reload::Ignored {
            log: reload::LOG_ROOT_NOT_SUPPORTED
        }
    );
    // Combined roots under multi-root: taken.
    let combined = makefile(tmp.path(), "combined", &r, &intermediate(&r, |_| {}));
    std::fs::write(
        combined.join("root-cert.pem"),
        format!("{}{}", r.pem, other.pem),
    )
    .unwrap();
    assert_eq!(
        reload::reload(current, &read(&combined), now, LATEST, true),
        Reload::Applied
    );
    assert_eq!(
        reload::reload(current, &read(&combined), now, LATEST, false),
        Reload::Ignored {
            log: reload::LOG_MULTI_ROOT_DISABLED
        }
    );
    // A key that does not match: the old bundle stays, the log names the error bare.
    let broken = makefile(tmp.path(), "broken", &r, &intermediate(&r, |_| {}));
    std::fs::write(broken.join("ca-key.pem"), key().serialize_pem()).unwrap();
    let failed = reload::reload(current, &read(&broken), now, LATEST, false);
    assert!(
        matches!(
            failed,
            Reload::Failed {
                rule: Rule::KeyMatches,
                ..
            }
        ),
        "{failed:?}"
    );
    assert_eq!(
        failed.log_line(),
        "Failed to update new Plug-in CA certs: the cert does not match the key: tls: private key does not match public key"
    );
    // No root file at all.
    std::fs::remove_file(broken.join("root-cert.pem")).unwrap();
    assert!(matches!(
        reload::reload(current, &read(&broken), now, LATEST, false),
        Reload::Failed {
            rule: Rule::CompleteBundle,
            ..
        }
    ));
}

#[test]
fn the_served_chain_for_the_makefile_layout_is_intermediate_root_root() {
    let r = root();
    let int = intermediate(&r, |_| {});
    let chain = format!("{}{}", int.pem, r.pem);
    let served = served::served_after_leaf(chain.as_bytes(), r.pem.as_bytes());
    let der = |p: &str| pem::parse(p).unwrap().into_contents();
    assert_eq!(served.len(), 3);
    assert_eq!(served[0].as_ref(), der(&int.pem));
    assert_eq!(served[1].as_ref(), der(&r.pem));
    assert_eq!(served[2].as_ref(), der(&r.pem));
    // Self-signed istiod: no chain, the root once.
    assert_eq!(served::served_after_leaf(b"", r.pem.as_bytes()).len(), 1);
}

#[test]
fn a_key_block_that_does_not_parse_is_encrypted_only_when_it_carries_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let r = root();
    let int = intermediate(&r, |_| {});
    let dir = makefile(tmp.path(), "garbage-key", &r, &int);
    // A PRIVATE KEY label, no headers, a body that is no key: unparseable, not encrypted.
    std::fs::write(
        dir.join("ca-key.pem"),
        concat!(
            "-----BEGIN RSA ",
            "PRIVATE KEY-----\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n"
        ),
    )
    .unwrap();
    let e = eval(&dir, LATEST);
    assert!(
        matches!(
            e.failures[0].detail,
            Detail::Key(KeyProblem::Unparseable(_))
        ),
        "{:?}",
        e.failures
    );
    // Headers on a block that is not a key label: still only unsupported.
    std::fs::write(
        dir.join("ca-key.pem"),
        "-----BEGIN SECRET-----\nProc-Type: 4,ENCRYPTED\n\nMAMCAQA=\n-----END SECRET-----\n",
    )
    .unwrap();
    let e = eval(&dir, LATEST);
    assert_eq!(
        e.failures[0].detail,
        Detail::Key(KeyProblem::Unparseable(
            "unsupported PEM block type for a private key: SECRET".into()
        ))
    );
}

#[test]
fn the_crl_rule_refuses_trailing_bytes_and_keys_signers_by_subject() {
    let r = root();
    let int = intermediate(&r, |_| {});
    let der = |p: &str| pem::parse(p).unwrap().into_contents();
    let block = |label: &str, bytes: Vec<u8>| {
        pem::encode_config(
            &pem::Pem::new(label, bytes),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    };
    let crls = format!("{}{}", crl(&int), crl(&r));
    // A certificate with a byte after it is not a certificate to Go (x509: trailing data).
    let mut trailing = der(&int.pem);
    trailing.push(0);
    let chain = format!("{}{}", block("CERTIFICATE", trailing), r.pem);
    assert_eq!(
        load::crl_rule(chain.as_bytes(), crls.as_bytes()),
        Err("failed to parse cert chain: x509: malformed certificate".into())
    );
    let mut crl_trailing = der(&crl(&r));
    crl_trailing.push(0);
    let chain = format!("{}{}", int.pem, r.pem);
    assert_eq!(
        load::crl_rule(chain.as_bytes(), block("X509 CRL", crl_trailing).as_bytes()),
        Err("failed to parse CRL PEM: x509: malformed crl".into())
    );
    // The intermediate twice, its CRL only: the root's is still missing.
    let chain = format!("{}{}{}", int.pem, r.pem, int.pem);
    let err = load::crl_rule(chain.as_bytes(), crl(&int).as_bytes()).unwrap_err();
    assert_eq!(
        err,
        "missing CRL signed by certificates: [CN=Root CA,O=Istio,L=cluster1]"
    );
    assert_eq!(load::crl_rule(chain.as_bytes(), crls.as_bytes()), Ok(()));
}
