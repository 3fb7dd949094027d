//! istiod's load-time rules for a plugged bundle (ISTIO-FACTS §2), each refusal
//! beside a twin that passes, called as `meshtrust check` will call them.

use std::path::Path;

use meshtrust::mesh::istiod::{self, Loaded, Rule};
use meshtrust::pki::{Bundle, Ca, KeyAlg};
use meshtrust::scenario::IstioVersion;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use time::{Duration, OffsetDateTime};

use crate::support::mesh::{self as support, Certs, read};

const V1_25: IstioVersion = IstioVersion::new(1, 25);
const V1_26: IstioVersion = IstioVersion::new(1, 26);

fn load_at(
    dir: &Path,
    now: OffsetDateTime,
    version: IstioVersion,
) -> Result<Loaded, istiod::Refusal> {
    istiod::load(&Bundle::read(dir).expect("a bundle"), now, version)
}

fn load(dir: &Path) -> Result<Loaded, istiod::Refusal> {
    load_at(dir, OffsetDateTime::now_utc(), IstioVersion::LATEST)
}

#[track_caller]
fn assert_plugged_in(result: Result<Loaded, istiod::Refusal>) {
    match result {
        Ok(Loaded::PluggedIn(_)) => {}
        other => panic!("expected plug-in mode, got {other:?}"),
    }
}

#[track_caller]
fn assert_refused(result: Result<Loaded, istiod::Refusal>, rule: Rule, text: &str) {
    match result {
        Err(refusal) => {
            assert_eq!(refusal.rule, rule, "refused by the wrong rule: {refusal}");
            assert!(
                refusal.reason.contains(text),
                "`{}` lacks `{text}`",
                refusal.reason
            );
        }
        Ok(loaded) => panic!("expected a refusal by `{rule}`, got {loaded:?}"),
    }
}

/// A CA certificate below `root` with `edit` applied to its parameters, written as a bundle.
fn bundle_with_intermediate(
    certs: &Certs,
    root: &Ca,
    name: &str,
    edit: impl FnOnce(&mut CertificateParams),
) -> std::path::PathBuf {
    let key = KeyAlg::P256.generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Intermediate CA {name}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.use_authority_key_identifier_extension = true;
    edit(&mut params);
    let cert = params.signed_by(&key, &root.issuer().unwrap()).unwrap();
    certs.custom(
        name,
        &[
            ("ca-cert.pem", cert.pem().into_bytes()),
            ("ca-key.pem", key.serialize_pem().into_bytes()),
            (
                "cert-chain.pem",
                format!("{}{}", cert.pem(), root.cert_pem()).into_bytes(),
            ),
            ("root-cert.pem", root.cert_pem().as_bytes().to_vec()),
        ],
    )
}

#[test]
fn a_complete_makefile_bundle_selects_plug_in_mode() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    assert_plugged_in(load(&dir));
}

#[test]
fn an_incomplete_bundle_stops_istiod_since_1_26() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    std::fs::remove_file(dir.join("cert-chain.pem")).unwrap();
    assert_refused(
        load_at(&dir, OffsetDateTime::now_utc(), V1_26),
        Rule::CompleteBundle,
        "incomplete signing CA bundle detected",
    );
}

#[test]
fn before_1_26_a_bundle_without_its_key_is_ignored_and_istiod_self_signs() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    std::fs::remove_file(dir.join("ca-key.pem")).unwrap();
    match load_at(&dir, OffsetDateTime::now_utc(), V1_25) {
        Ok(Loaded::Ignored) => {}
        other => panic!("expected the bundle to be ignored, got {other:?}"),
    }
}

#[test]
fn before_1_26_the_key_alone_selects_plug_in_mode_and_a_missing_file_fails() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    assert_plugged_in(load_at(&dir, OffsetDateTime::now_utc(), V1_25));
    std::fs::remove_file(dir.join("root-cert.pem")).unwrap();
    assert_refused(
        load_at(&dir, OffsetDateTime::now_utc(), V1_25),
        Rule::CompleteBundle,
        "root-cert.pem: no such file or directory",
    );
}

#[test]
fn a_ca_cert_that_is_not_a_ca_is_refused_by_the_fourth_rule() {
    let certs = Certs::new();
    let root = support::root();
    let not_ca =
        bundle_with_intermediate(&certs, &root, "not-ca", |p| p.is_ca = IsCa::ExplicitNoCa);
    assert_refused(
        load(&not_ca),
        Rule::SigningCertIsCa,
        "certificate is not authorized to sign other certificates",
    );
    let ca = bundle_with_intermediate(&certs, &root, "ca", |_| {});
    assert_plugged_in(load(&ca));
}

#[test]
fn a_key_of_another_certificate_is_refused_by_the_third_rule() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    std::fs::write(
        dir.join("ca-key.pem"),
        KeyAlg::P256.generate().unwrap().serialize_pem(),
    )
    .unwrap();
    assert_refused(
        load(&dir),
        Rule::KeyMatches,
        "the cert does not match the key",
    );
}

#[test]
fn an_unparseable_key_is_refused_by_the_second_rule() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    std::fs::write(
        dir.join("ca-key.pem"),
        concat!(
            "-----BEGIN ",
            "PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        ),
    )
    .unwrap();
    assert_refused(
        load(&dir),
        Rule::KeyParses,
        "failed to parse private key PEM",
    );
}

#[test]
fn a_root_cert_that_did_not_issue_the_intermediate_is_refused_by_the_first_rule() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    let other = support::root();
    std::fs::write(dir.join("root-cert.pem"), other.cert_pem()).unwrap();
    assert_refused(
        load(&dir),
        Rule::ChainVerifies,
        "cannot verify the cert with the provided root chain and cert pool",
    );
}

#[test]
fn the_first_rule_is_checked_before_the_key_rules() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    std::fs::write(dir.join("root-cert.pem"), support::root().cert_pem()).unwrap();
    std::fs::write(
        dir.join("ca-key.pem"),
        KeyAlg::P256.generate().unwrap().serialize_pem(),
    )
    .unwrap();
    assert_refused(load(&dir), Rule::ChainVerifies, "cannot verify");
}

#[test]
fn an_intermediate_expired_at_load_time_is_refused_by_the_first_rule() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    let now = OffsetDateTime::now_utc();
    assert_plugged_in(load_at(&dir, now, IstioVersion::LATEST));
    assert_refused(
        load_at(&dir, now + Duration::days(3651), IstioVersion::LATEST),
        Rule::ChainVerifies,
        "expired",
    );
}

#[test]
fn an_intermediate_whose_eku_lacks_server_auth_is_refused_as_gos_verify_does() {
    let certs = Certs::new();
    let root = support::root();
    let client_only = bundle_with_intermediate(&certs, &root, "client-only", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    assert_refused(
        load(&client_only),
        Rule::ChainVerifies,
        "x509: certificate specifies an incompatible key usage",
    );
    let both = bundle_with_intermediate(&certs, &root, "both", |p| {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
    });
    assert_plugged_in(load(&both));
}

fn istio_samples() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/istio/istio-samples-certs"
    ))
}

#[test]
fn istios_sample_bundle_with_a_pkcs1_key_is_accepted() {
    let certs = Certs::new();
    let s = istio_samples();
    assert!(
        read(s, "ca-key.pem")
            .starts_with(concat!("-----BEGIN RSA ", "PRIVATE KEY-----").as_bytes())
    );
    let files: Vec<(&str, Vec<u8>)> = [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ]
    .into_iter()
    .map(|f| (f, read(s, f)))
    .collect();
    let dir = certs.custom("samples", &files);
    assert_plugged_in(load(&dir));

    let mut wrong_root = files.clone();
    wrong_root[3].1 = read(s, "root-cert-alt.pem");
    let dir = certs.custom("samples-alt-root", &wrong_root);
    assert_refused(load(&dir), Rule::ChainVerifies, "cannot verify");
}

#[test]
fn a_kubernetes_tls_secret_is_loaded_with_tls_crt_then_ca_crt_as_the_chain() {
    let certs = Certs::new();
    let root = support::root();
    let src = certs.cacerts(&root, "cluster1");
    let dir = certs.custom(
        "tls",
        &[
            ("tls.crt", read(&src, "ca-cert.pem")),
            ("tls.key", read(&src, "ca-key.pem")),
            ("ca.crt", read(&src, "root-cert.pem")),
        ],
    );
    let Ok(Loaded::PluggedIn(signer)) = load(&dir) else {
        panic!("the TLS layout was not loaded");
    };
    let intermediate = support::der(&src, "ca-cert.pem");
    assert_eq!(
        signer.cert_chain(),
        &[intermediate, root.cert_der().clone()]
    );
    assert_eq!(signer.root_pem(), read(&src, "root-cert.pem"));
}

#[test]
fn self_signed_root_has_istiods_profile() {
    let now = OffsetDateTime::now_utc();
    let signer = istiod::self_signed(support::TD, now).unwrap();
    let root = support::parse(signer.ca_cert());
    assert_eq!(root.subject().to_string(), "O=cluster.local");
    assert_eq!(root.issuer().to_string(), "O=cluster.local");
    let bc = root.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
    let ku = root.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(ku.value.flags, 1 << 5, "keyCertSign only");
    let spki = root.public_key().parsed().unwrap();
    assert_eq!(spki.key_size(), 2048);
    let v = root.validity();
    assert_eq!(
        (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days(),
        3650
    );
    assert!(root.tbs_certificate.raw_serial().len() <= 16);
    assert_eq!(
        signer.cert_chain().len(),
        0,
        "istiod's self-signed chain is leaf + root"
    );
    assert_eq!(signer.roots(), &[signer.ca_cert().clone()]);
}

#[test]
fn p256_and_rsa_keys_both_load() {
    // The Makefile only makes RSA 4096; cert-manager often issues EC keys.
    for (alg, signature) in [
        (KeyAlg::P256, &rcgen::PKCS_ECDSA_P256_SHA256),
        (KeyAlg::Rsa2048, &rcgen::PKCS_RSA_SHA256),
    ] {
        let root = meshtrust::pki::generate_root(&meshtrust::pki::RootSpec {
            key: alg,
            ..Default::default()
        })
        .unwrap();
        let certs = Certs::new();
        let spec = meshtrust::pki::IntermediateSpec {
            key: alg,
            ..meshtrust::pki::IntermediateSpec::new("c")
        };
        let inter = meshtrust::pki::generate_intermediate(&root, &spec).unwrap();
        let dir = meshtrust::pki::layout::write_cacerts(certs.path(), &spec, &inter, &root, false)
            .unwrap();
        // istiod signs with the plugged pair: that certificate, and a key of that algorithm.
        match load(&dir) {
            Ok(Loaded::PluggedIn(signer)) => assert_eq!(signer.ca_cert(), inter.cert_der()),
            other => panic!("{alg:?}: expected plug-in mode, got {other:?}"),
        }
        let key = KeyPair::from_pem(&String::from_utf8(read(&dir, "ca-key.pem")).unwrap()).unwrap();
        assert_eq!(key.algorithm(), signature, "{alg:?}");
        assert_eq!(
            key.public_key_raw(),
            inter.key().public_key_raw(),
            "{alg:?}"
        );
    }
}
