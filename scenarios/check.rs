//! `meshtrust check`: every finding has a bundle that triggers it and a near miss that does not.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use meshtrust::check::{self, CheckOptions, IstioVersion, Report, Severity};
use predicates::prelude::*;
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use time::Duration;

use crate::support::openssl::{makefile_bundle, openssl, openssl_fails};
use crate::support::pki::{self as tpki, Tier};

fn run(dirs: &[PathBuf], opts: &CheckOptions) -> Report {
    check::check(dirs, opts).expect("the bundles are readable")
}

fn ids(report: &Report, severity: Severity) -> Vec<&'static str> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.id)
        .collect()
}

/// Asserts the finding is there with that severity, and shows the whole report if not.
fn assert_finding(report: &Report, id: &str, severity: Severity) {
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.id == id && f.severity == severity),
        "expected {severity:?} `{id}`, got:\n{}",
        check::render_text(report)
    );
}

fn assert_clean(report: &Report) {
    assert!(
        ids(report, Severity::Error).is_empty() && ids(report, Severity::Warning).is_empty(),
        "expected no errors or warnings, got:\n{}",
        check::render_text(report)
    );
}

fn opts() -> CheckOptions {
    CheckOptions::default()
}

struct Fixture {
    tmp: tempfile::TempDir,
    root: Tier,
    ca: Tier,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tpki::root();
        let ca = tpki::intermediate("cluster1", &root);
        Fixture {
            tmp: tempfile::tempdir().unwrap(),
            root,
            ca,
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn makefile(&self) -> PathBuf {
        tpki::makefile_layout(self.path(), "cluster1", &self.ca, &self.root)
    }
}

#[test]
fn a_bundle_made_by_meshtrust_certs_has_no_errors_or_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    Command::cargo_bin("meshtrust")
        .unwrap()
        .args([
            "certs",
            "cacerts",
            "cluster1",
            "--key",
            "p256",
            "--root-key",
            "p256",
            "--dir",
        ])
        .arg(tmp.path())
        .assert()
        .success();
    let report = run(&[tmp.path().join("cluster1")], &opts());
    assert_clean(&report);
    assert_finding(&report, "served-chain", Severity::Note);
}

#[test]
fn a_bundle_made_by_the_makefiles_openssl_recipe_has_no_errors_or_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    makefile_bundle(tmp.path(), "cluster1");
    let report = run(&[tmp.path().join("cluster1")], &opts());
    assert_clean(&report);
    let note = report
        .findings
        .iter()
        .find(|f| f.id == "served-chain")
        .unwrap();
    assert!(
        note.message.contains("peers see 4 certificates"),
        "{}",
        note.message
    );
    assert!(note.evidence[0].contains("istio/istio#39001"));
}

#[test]
fn istios_sample_certs_serve_three_certificates_and_load_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("samples");
    std::fs::create_dir(&d).unwrap();
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        std::fs::copy(
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/istio/istio-samples-certs"
            ))
            .join(f),
            d.join(f),
        )
        .unwrap();
    }
    tpki::chmod(&d.join("ca-key.pem"), 0o600);
    let report = run(&[d], &opts());
    assert_clean(&report);
    let note = report
        .findings
        .iter()
        .find(|f| f.id == "served-chain")
        .unwrap();
    assert!(
        note.message.contains("peers see 3 certificates"),
        "{}",
        note.message
    );
    assert!(
        note.evidence.is_empty(),
        "the samples do not duplicate the root"
    );
}

#[test]
fn an_incomplete_bundle_is_refused_since_1_26_and_falls_back_silently_before() {
    let f = Fixture::new();
    let d = f.makefile();
    std::fs::remove_file(d.join("ca-key.pem")).unwrap();
    let new = run(
        std::slice::from_ref(&d),
        &CheckOptions {
            istio_version: "1.26".parse().unwrap(),
            ..opts()
        },
    );
    assert_finding(&new, "incomplete-bundle", Severity::Error);
    let finding = new
        .findings
        .iter()
        .find(|x| x.id == "incomplete-bundle")
        .unwrap();
    // istiod's own text, verbatim, as its log shows it.
    assert_eq!(
        finding.istiod_error.as_deref(),
        Some(meshtrust::istio::load::INCOMPLETE_BUNDLE)
    );

    let old = run(
        &[d],
        &CheckOptions {
            istio_version: "1.25".parse().unwrap(),
            ..opts()
        },
    );
    let msg = &old
        .findings
        .iter()
        .find(|x| x.id == "incomplete-bundle")
        .unwrap()
        .message;
    assert!(msg.contains("self-signed root"), "{msg}");

    let complete = run(&[f.makefile()], &opts());
    assert!(!complete.has("incomplete-bundle"));
}

#[test]
fn an_unparseable_signing_certificate_is_named() {
    let f = Fixture::new();
    let d = f.makefile();
    std::fs::write(
        d.join("ca-cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let report = run(&[d], &opts());
    let finding = report
        .findings
        .iter()
        .find(|x| x.id == "cert-unparseable")
        .expect("cert-unparseable");
    assert_eq!(finding.file.as_deref(), Some("ca-cert.pem"));
    assert_eq!(
        finding.istiod_error.as_deref(),
        Some(
            "failed to create an istiod CA: failed to create CA KeyCertBundle (failed to parse cert PEM: invalid PEM encoded certificate)"
        )
    );
    assert!(!run(&[f.makefile()], &opts()).has("cert-unparseable"));
}

#[test]
fn an_unparseable_root_block_is_skipped_as_go_skips_it() {
    // Go's AppendCertsFromPEM drops a block it cannot decode: istiod then has no root.
    let f = Fixture::new();
    let d = f.makefile();
    std::fs::write(
        d.join("root-cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let report = run(&[d], &opts());
    assert!(!report.has("cert-unparseable"), "{:?}", report.findings);
    assert_finding(&report, "no-path-to-root", Severity::Error);
}

#[test]
fn an_ec_key_with_an_ec_parameters_block_first_is_an_error_and_the_bare_key_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "with-params.pem",
        ],
    );
    openssl(d, &["ec", "-in", "with-params.pem", "-out", "bare.pem"]);
    let text = std::fs::read_to_string(d.join("with-params.pem")).unwrap();
    assert!(text.starts_with("-----BEGIN EC PARAMETERS-----"), "{text}");
    let key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(d.join("bare.pem")).unwrap()).unwrap();
    let root = tpki::root();
    let ca = tpki::signed_with_key(tpki::intermediate_params("cluster1"), &root, key);
    let bundle = tpki::makefile_layout(d, "cluster1", &ca, &root);
    std::fs::copy(d.join("with-params.pem"), bundle.join("ca-key.pem")).unwrap();
    assert_finding(
        &run(std::slice::from_ref(&bundle), &opts()),
        "ec-parameters-first",
        Severity::Error,
    );

    std::fs::copy(d.join("bare.pem"), bundle.join("ca-key.pem")).unwrap();
    let twin = run(&[bundle], &opts());
    assert!(
        !twin.has("ec-parameters-first") && !twin.has("key-mismatch"),
        "{}",
        check::render_text(&twin)
    );
}

#[test]
fn an_encrypted_key_is_an_error() {
    let f = Fixture::new();
    let d = f.makefile();
    openssl(
        &d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "ca-key.pem",
            "-out",
            "enc.pem",
            "-passout",
            "pass:secret",
        ],
    );
    std::fs::rename(d.join("enc.pem"), d.join("ca-key.pem")).unwrap();
    assert_finding(&run(&[d], &opts()), "key-encrypted", Severity::Error);
    assert!(!run(&[f.makefile()], &opts()).has("key-encrypted"));
}

#[test]
fn a_key_that_is_not_the_ca_certs_key_is_an_error() {
    let f = Fixture::new();
    let d = f.makefile();
    tpki::write_key(&d.join("ca-key.pem"), &f.root.key);
    let report = run(&[d], &opts());
    assert_finding(&report, "key-mismatch", Severity::Error);
    assert!(!run(&[f.makefile()], &opts()).has("key-mismatch"));
}

#[test]
fn check_bundle_gives_one_bundles_findings_as_check_does() {
    // `check_bundle` is what the bad-cacerts scenario asks for its explanation.
    let f = Fixture::new();
    let d = f.makefile();
    tpki::write_key(&d.join("ca-key.pem"), &f.root.key);
    let bundle = meshtrust::pki::Bundle::read(&d).unwrap();
    let findings = check::check_bundle(&bundle, &opts());
    let report = run(std::slice::from_ref(&d), &opts());
    let ids = |fs: &[check::Finding]| fs.iter().map(|f| (f.id, f.severity)).collect::<Vec<_>>();
    assert!(
        findings
            .iter()
            .any(|f| f.id == "key-mismatch" && f.severity == Severity::Error),
        "{:?}",
        ids(&findings)
    );
    assert_eq!(ids(&findings), ids(&report.findings));
    let good = meshtrust::pki::Bundle::read(&f.makefile()).unwrap();
    assert!(
        !check::check_bundle(&good, &opts())
            .iter()
            .any(|f| f.severity == Severity::Error)
    );
}

#[test]
fn a_ca_cert_that_is_not_a_ca_is_an_error() {
    let f = Fixture::new();
    let mut p = tpki::intermediate_params("cluster1");
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    let leaf = tpki::signed(p, &f.root);
    let d = tpki::makefile_layout(f.path(), "cluster1", &leaf, &f.root);
    assert_finding(&run(&[d], &opts()), "ca-cert-not-ca", Severity::Error);
    assert!(!run(&[f.makefile()], &opts()).has("ca-cert-not-ca"));
}

#[test]
fn an_expired_or_not_yet_valid_intermediate_is_an_error_at_that_time_only() {
    let f = Fixture::new();
    let d = f.makefile();
    let later = CheckOptions {
        now: f.ca.not_after() + Duration::days(1),
        ..opts()
    };
    assert_finding(
        &run(std::slice::from_ref(&d), &later),
        "expired",
        Severity::Error,
    );
    let earlier = CheckOptions {
        now: f.ca.params.not_before - Duration::days(1),
        ..opts()
    };
    assert_finding(
        &run(std::slice::from_ref(&d), &earlier),
        "not-yet-valid",
        Severity::Error,
    );
    let now = run(&[d], &opts());
    assert!(!now.has("expired") && !now.has("not-yet-valid"));
}

#[test]
fn a_chain_to_a_foreign_root_is_an_error() {
    let f = Fixture::new();
    let other = tpki::root();
    let d = tpki::write_bundle(f.path(), "cluster1", &f.ca, &[&f.ca, &other], &[&other]);
    let report = run(&[d], &opts());
    assert_finding(&report, "no-path-to-root", Severity::Error);
    let finding = report
        .findings
        .iter()
        .find(|x| x.id == "no-path-to-root")
        .unwrap();
    assert_eq!(finding.file.as_deref(), Some("ca-cert.pem"));
    assert!(
        finding.message.starts_with(
            "`ca-cert.pem` does not verify to `root-cert.pem` through cert-chain.pem: "
        ),
        "{}",
        finding.message
    );

    // Near misses: the same intermediate with its own root, and with the foreign root beside
    // its own in root-cert.pem (istiod trusts every root of the file).
    let own = tpki::write_bundle(f.path(), "own", &f.ca, &[&f.ca, &f.root], &[&f.root]);
    assert_clean(&run(&[own], &opts()));
    let both = tpki::write_bundle(
        f.path(),
        "both",
        &f.ca,
        &[&f.ca, &f.root],
        &[&other, &f.root],
    );
    let report = run(&[both], &opts());
    assert!(
        !report.has("no-path-to-root"),
        "{}",
        check::render_text(&report)
    );
}

#[test]
fn a_missing_middle_ca_is_an_error_and_a_three_tier_chain_with_both_cas_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    let issuing = tpki::signed(
        tpki::ca_params(&[(rcgen::DnType::CommonName, "Issuing CA")], Some(1)),
        &root,
    );
    let ca = tpki::intermediate("cluster1", &issuing);
    let good = tpki::write_bundle(tmp.path(), "good", &ca, &[&ca, &issuing, &root], &[&root]);
    assert_clean(&run(&[good], &opts()));
    let missing = tpki::write_bundle(tmp.path(), "missing", &ca, &[&ca, &root], &[&root]);
    assert_finding(
        &run(&[missing], &opts()),
        "no-path-to-root",
        Severity::Error,
    );
}

#[test]
fn an_intermediate_whose_eku_excludes_server_auth_is_an_error() {
    let f = Fixture::new();
    let mut p = tpki::intermediate_params("cluster1");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let ca = tpki::signed(p, &f.root);
    let d = tpki::makefile_layout(f.path(), "cluster1", &ca, &f.root);
    assert_finding(
        &run(&[d], &opts()),
        "eku-excludes-server-auth",
        Severity::Error,
    );

    let mut p = tpki::intermediate_params("cluster2");
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let ca = tpki::signed(p, &f.root);
    let d = tpki::makefile_layout(f.path(), "cluster2", &ca, &f.root);
    assert!(!run(&[d], &opts()).has("eku-excludes-server-auth"));
}

/// An intermediate made by openssl under `root` (which rcgen cannot make: SHA-1,
/// RSA 1024), written as an istiod-layout bundle `dir/name`.
fn openssl_bundle(dir: &Path, root: &Tier, name: &str, newkey: &[&str], md: &str) -> PathBuf {
    std::fs::write(dir.join("root-cert.pem"), &root.pem).unwrap();
    tpki::write_key(&dir.join("root-key.pem"), &root.key);
    std::fs::write(
        dir.join("ext.conf"),
        "basicConstraints = critical, CA:true, pathlen:0\nkeyUsage = critical, keyCertSign, digitalSignature\n",
    )
    .unwrap();
    let mut req = vec![
        "req",
        "-new",
        "-nodes",
        "-subj",
        "/O=Istio/CN=Intermediate CA",
        "-keyout",
        "k.pem",
        "-out",
        "c.csr",
    ];
    req.extend_from_slice(newkey);
    openssl(dir, &req);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            md,
            "-days",
            "30",
            "-CA",
            "root-cert.pem",
            "-CAkey",
            "root-key.pem",
            "-CAcreateserial",
            "-extfile",
            "ext.conf",
            "-in",
            "c.csr",
            "-out",
            "c.pem",
        ],
    );
    let b = dir.join(name);
    std::fs::create_dir(&b).unwrap();
    std::fs::copy(dir.join("c.pem"), b.join("ca-cert.pem")).unwrap();
    std::fs::copy(dir.join("k.pem"), b.join("ca-key.pem")).unwrap();
    tpki::chmod(&b.join("ca-key.pem"), 0o600);
    let chain = [
        std::fs::read_to_string(dir.join("c.pem")).unwrap(),
        root.pem.clone(),
    ]
    .concat();
    std::fs::write(b.join("cert-chain.pem"), chain).unwrap();
    std::fs::copy(dir.join("root-cert.pem"), b.join("root-cert.pem")).unwrap();
    b
}

const P256: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

#[test]
fn a_sha1_signed_intermediate_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    let sha1 = openssl_bundle(tmp.path(), &root, "sha1", &P256, "-sha1");
    let sha256 = openssl_bundle(tmp.path(), &root, "sha256", &P256, "-sha256");
    assert_finding(&run(&[sha1], &opts()), "weak-signature", Severity::Error);
    assert!(!run(&[sha256], &opts()).has("weak-signature"));
}

#[test]
fn a_root_pathlen_of_zero_above_the_intermediate_breaks_every_workload_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let tight = tpki::self_signed(tpki::ca_params(
        &[(rcgen::DnType::CommonName, "Tight Root")],
        Some(0),
    ));
    let ca = tpki::intermediate("cluster1", &tight);
    let d = tpki::makefile_layout(tmp.path(), "tight", &ca, &tight);
    let report = run(&[d], &opts());
    assert_finding(&report, "pathlen-breaks-workloads", Severity::Error);
    assert!(
        !report.has("no-path-to-root"),
        "istiod itself accepts it: {}",
        check::render_text(&report)
    );

    // Near misses: pathlen:1 on the root, and the usual pathlen:0 intermediate with only leaves below.
    let roomy = tpki::self_signed(tpki::ca_params(
        &[(rcgen::DnType::CommonName, "Roomy Root")],
        Some(1),
    ));
    let ca = tpki::intermediate("cluster1", &roomy);
    let d = tpki::makefile_layout(tmp.path(), "roomy", &ca, &roomy);
    assert_clean(&run(&[d], &opts()));
}

#[test]
fn a_signing_ca_without_key_cert_sign_is_an_error() {
    let f = Fixture::new();
    let mut p = tpki::intermediate_params("cluster1");
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let ca = tpki::signed(p, &f.root);
    let d = tpki::makefile_layout(f.path(), "cluster1", &ca, &f.root);
    assert_finding(&run(&[d], &opts()), "no-key-cert-sign", Severity::Error);
    assert!(!run(&[f.makefile()], &opts()).has("no-key-cert-sign"));
}

#[test]
fn a_tls_layout_whose_ca_crt_is_an_intermediate_is_an_error_and_with_the_root_it_is_fine() {
    let f = Fixture::new();
    let issuing = tpki::signed(
        tpki::ca_params(&[(rcgen::DnType::CommonName, "Issuing CA")], Some(1)),
        &f.root,
    );
    let ca = tpki::intermediate("cluster1", &issuing);
    for (name, ca_crt) in [("bad", &issuing), ("good", &f.root)] {
        let d = f.path().join(name);
        std::fs::create_dir(&d).unwrap();
        // cert-manager puts the issuing chain in tls.crt.
        std::fs::write(
            d.join("tls.crt"),
            [ca.pem.as_str(), issuing.pem.as_str()].concat(),
        )
        .unwrap();
        tpki::write_key(&d.join("tls.key"), &ca.key);
        std::fs::write(d.join("ca.crt"), &ca_crt.pem).unwrap();
    }
    assert_finding(
        &run(&[f.path().join("bad")], &opts()),
        "tls-ca-not-root",
        Severity::Error,
    );
    assert_clean(&run(&[f.path().join("good")], &opts()));
}

#[test]
fn clusters_with_different_roots_are_an_error_and_a_shared_root_is_fine() {
    let f = Fixture::new();
    let a = f.makefile();
    let other = tpki::root();
    let b_ca = tpki::intermediate("cluster2", &other);
    let b = tpki::makefile_layout(f.path(), "cluster2", &b_ca, &other);
    assert_finding(
        &run(&[a.clone(), b], &opts()),
        "different-roots",
        Severity::Error,
    );

    let c_ca = tpki::intermediate("cluster3", &f.root);
    let c = tpki::makefile_layout(f.path(), "cluster3", &c_ca, &f.root);
    assert_clean(&run(&[a, c], &opts()));
}

#[test]
fn two_clusters_with_the_same_intermediate_are_an_error() {
    let f = Fixture::new();
    let a = f.makefile();
    let b = tpki::makefile_layout(f.path(), "copy", &f.ca, &f.root);
    assert_finding(
        &run(&[a.clone(), b], &opts()),
        "overlapping-intermediates",
        Severity::Error,
    );
}

#[test]
fn intermediates_sharing_a_key_or_a_subject_and_serial_overlap_and_near_misses_do_not() {
    let f = Fixture::new();
    let a = f.makefile();
    let overlap = |other: &Tier, name: &str| {
        let b = tpki::makefile_layout(f.path(), name, other, &f.root);
        let report = run(&[a.clone(), b], &opts());
        report
            .findings
            .iter()
            .find(|x| x.id == "overlapping-intermediates")
            .map(|x| x.message.clone())
    };
    // The same key in another certificate (another cluster's name, another serial).
    let key = rcgen::KeyPair::from_pem(&f.ca.key.serialize_pem()).unwrap();
    let same_key = tpki::signed_with_key(tpki::intermediate_params("cluster2"), &f.root, key);
    let msg = overlap(&same_key, "same-key").expect("the same key overlaps");
    assert!(msg.contains("(the same key)"), "{msg}");
    // The same subject and serial with another key.
    let mut p = tpki::intermediate_params("cluster1");
    p.serial_number = f.ca.params.serial_number.clone();
    let same_id = tpki::signed(p, &f.root);
    let msg = overlap(&same_id, "same-id").expect("the same subject and serial overlap");
    assert!(msg.contains("(the same subject and serial)"), "{msg}");
    // Near misses: the same subject with another serial and key; the same serial under
    // another subject; another cluster's own intermediate.
    let same_subject = tpki::intermediate("cluster1", &f.root);
    assert_eq!(overlap(&same_subject, "same-subject"), None);
    let mut p = tpki::intermediate_params("cluster2");
    p.serial_number = f.ca.params.serial_number.clone();
    let same_serial = tpki::signed(p, &f.root);
    assert_eq!(overlap(&same_serial, "same-serial"), None);
    let own = tpki::intermediate("cluster2", &f.root);
    assert_eq!(overlap(&own, "own"), None);
}

#[test]
fn an_intermediate_expiring_within_30_days_or_within_the_workload_ttl_is_a_warning() {
    let f = Fixture::new();
    let d = f.makefile();
    let end = f.ca.not_after();
    let soon = CheckOptions {
        now: end - Duration::days(10),
        ..opts()
    };
    assert_finding(
        &run(std::slice::from_ref(&d), &soon),
        "expires-soon",
        Severity::Warning,
    );
    let sooner = CheckOptions {
        now: end - Duration::hours(12),
        ..opts()
    };
    assert_finding(
        &run(std::slice::from_ref(&d), &sooner),
        "expires-before-workload-ttl",
        Severity::Warning,
    );
    let short_ttl = CheckOptions {
        workload_ttl: std::time::Duration::from_secs(3600),
        ..sooner
    };
    assert!(!run(std::slice::from_ref(&d), &short_ttl).has("expires-before-workload-ttl"));
    let later = CheckOptions {
        now: end - Duration::days(60),
        ..opts()
    };
    assert_clean(&run(&[d], &later));
}

/// The warnings of `dirs` at `now`, as (id, file).
fn warnings(dirs: &[PathBuf], now: time::OffsetDateTime) -> Vec<(&'static str, Option<String>)> {
    run(dirs, &CheckOptions { now, ..opts() })
        .findings
        .into_iter()
        .filter(|x| x.severity == Severity::Warning)
        .map(|x| (x.id, x.file))
        .collect()
}

#[test]
fn expiry_warnings_start_exactly_at_30_days_and_at_the_workload_ttl() {
    let f = Fixture::new();
    // Ends well before its root, so that only it warns; certificates hold whole seconds.
    let mut p = tpki::intermediate_params("cluster1");
    p.not_after = f.root.not_after() - Duration::days(100);
    let ca = tpki::signed(p, &f.root);
    let end = ca.not_after().replace_nanosecond(0).unwrap();
    let d = tpki::makefile_layout(f.path(), "cluster1", &ca, &f.root);
    let at = |now| warnings(std::slice::from_ref(&d), now);
    let soon = vec![("expires-soon", Some("ca-cert.pem".to_owned()))];
    let before_ttl = vec![(
        "expires-before-workload-ttl",
        Some("ca-cert.pem".to_owned()),
    )];
    assert_eq!(at(end - Duration::days(30)), []);
    assert_eq!(at(end - Duration::days(30) + Duration::seconds(1)), soon);
    assert_eq!(at(end - Duration::hours(24)), soon);
    assert_eq!(
        at(end - Duration::hours(24) + Duration::seconds(1)),
        before_ttl
    );
    assert_eq!(at(end - Duration::seconds(1)), before_ttl);
    // From its last second on istiod refuses the bundle (no TTL left, then expired): its
    // rules report it, not a warning.
    for now in [end, end + Duration::seconds(1)] {
        assert_eq!(at(now), []);
    }
}

#[test]
fn an_expiry_warning_names_the_file_that_holds_the_expiring_certificate() {
    // Root (25 days left) -> issuing CA in cert-chain.pem (20 days) -> ca-cert.pem (10 days).
    let tmp = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut p = tpki::root_params();
    p.not_after = now + Duration::days(25);
    let root = tpki::self_signed(p);
    let mut p = tpki::ca_params(&[(rcgen::DnType::CommonName, "Issuing CA")], Some(1));
    p.not_after = now + Duration::days(20);
    let issuing = tpki::signed(p, &root);
    let mut p = tpki::intermediate_params("cluster1");
    p.not_after = now + Duration::days(10);
    let ca = tpki::signed(p, &issuing);
    let d = tpki::write_bundle(tmp.path(), "c", &ca, &[&ca, &issuing, &root], &[&root]);
    let file = |f: &str| Some(f.to_owned());
    assert_eq!(
        warnings(&[d], now),
        [
            ("expires-soon", file("ca-cert.pem")),
            ("expires-soon", file("cert-chain.pem")),
            ("expires-soon", file("root-cert.pem")),
        ]
    );
}

#[test]
fn a_cert_chain_in_root_to_leaf_order_is_a_warning() {
    let f = Fixture::new();
    let d = tpki::write_bundle(f.path(), "cluster1", &f.ca, &[&f.root, &f.ca], &[&f.root]);
    assert_finding(&run(&[d], &opts()), "chain-order", Severity::Warning);
    assert!(!run(&[f.makefile()], &opts()).has("chain-order"));
}

#[test]
fn chain_order_fails_on_each_of_its_conditions_alone() {
    // Three tiers, so that either condition can break while the other holds.
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    let issuing = tpki::signed(
        tpki::ca_params(&[(rcgen::DnType::CommonName, "Issuing CA")], Some(1)),
        &root,
    );
    let ca = tpki::intermediate("cluster1", &issuing);
    let order = |name: &str, chain: &[&Tier]| {
        let d = tpki::write_bundle(tmp.path(), name, &ca, chain, &[&root]);
        let report = run(&[d], &opts());
        (report.has("chain-order"), check::render_text(&report))
    };
    // Starts with ca-cert.pem, but the root comes before the CA that the root issued.
    let (found, text) = order("out-of-order", &[&ca, &root, &issuing]);
    assert!(found, "{text}");
    // Each certificate issued by the next, but ca-cert.pem is not first.
    let (found, text) = order("not-first", &[&issuing, &root]);
    assert!(found, "{text}");
    // Names alone do not make an order: a namesake of the root (same subject, another key)
    // did not sign the issuing CA.
    let namesake = tpki::root();
    let (found, text) = order("namesake", &[&ca, &issuing, &namesake]);
    assert!(found, "{text}");
    // Near miss: both hold.
    let (found, text) = order("in-order", &[&ca, &issuing, &root]);
    assert!(!found, "{text}");
}

#[test]
fn an_rsa_key_below_2048_bits_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    let small = openssl_bundle(
        tmp.path(),
        &root,
        "1024",
        &["-newkey", "rsa:1024"],
        "-sha256",
    );
    let fine = openssl_bundle(
        tmp.path(),
        &root,
        "2048",
        &["-newkey", "rsa:2048"],
        "-sha256",
    );
    assert_finding(&run(&[small], &opts()), "weak-rsa", Severity::Warning);
    assert!(!run(&[fine], &opts()).has("weak-rsa"));
}

#[test]
fn a_key_file_readable_by_others_is_a_warning() {
    let f = Fixture::new();
    let d = f.makefile();
    tpki::chmod(&d.join("ca-key.pem"), 0o644);
    assert_finding(
        &run(std::slice::from_ref(&d), &opts()),
        "key-file-permissions",
        Severity::Warning,
    );
    tpki::chmod(&d.join("ca-key.pem"), 0o600);
    assert!(!run(&[d], &opts()).has("key-file-permissions"));
}

#[test]
fn exit_codes_separate_errors_warnings_notes_and_bad_input() {
    let f = Fixture::new();
    let good = f.makefile();
    let cmd = || Command::cargo_bin("meshtrust").unwrap();
    cmd().arg("check").arg(&good).assert().code(0);
    // Notes never fail, even with --strict.
    cmd()
        .arg("check")
        .arg("--strict")
        .arg(&good)
        .assert()
        .code(0);
    tpki::chmod(&good.join("ca-key.pem"), 0o644);
    cmd().arg("check").arg(&good).assert().code(0);
    cmd()
        .arg("check")
        .arg("--strict")
        .arg(&good)
        .assert()
        .code(1);
    std::fs::remove_file(good.join("cert-chain.pem")).unwrap();
    cmd()
        .arg("check")
        .arg(&good)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error[incomplete-bundle]"));
    let empty = f.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    cmd()
        .arg("check")
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not a cacerts bundle: none of ca-cert.pem",
        ));
    cmd()
        .args(["check", "--istio-version", "latest"])
        .arg(f.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`latest` is not an Istio version"));
}

#[test]
fn the_text_report_of_a_broken_bundle_reads_as_expected() {
    let f = Fixture::new();
    let d = f.makefile();
    tpki::write_key(&d.join("ca-key.pem"), &f.root.key);
    std::fs::remove_file(d.join("cert-chain.pem")).unwrap();
    let report = run(
        &[d],
        &CheckOptions {
            istio_version: "1.26".parse::<IstioVersion>().unwrap(),
            ..opts()
        },
    );
    let text = check::render_text(&report).replace(&f.path().display().to_string(), "[TMP]");
    insta::with_settings!({
        snapshot_path => "../fixtures/snapshots",
        prepend_module_to_snapshot => false,
        filters => vec![(r"sha256 [0-9A-F]+…", "sha256 [FINGERPRINT]…")],
    }, {
        insta::assert_snapshot!("check_broken_bundle_text", text);
    });
}

#[test]
fn a_kubernetes_tls_bundle_is_described_with_its_own_file_names() {
    // tls.crt, tls.key, ca.crt: no message may name cert-chain.pem or root-cert.pem.
    let f = Fixture::new();
    let d = f.makefile();
    let tls = d.parent().unwrap().join("tls-layout");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::copy(d.join("ca-cert.pem"), tls.join("tls.crt")).unwrap();
    std::fs::copy(d.join("ca-key.pem"), tls.join("tls.key")).unwrap();
    std::fs::copy(d.join("root-cert.pem"), tls.join("ca.crt")).unwrap();
    let report = run(&[tls], &opts());
    let text = meshtrust::check::render_text(&report);
    assert!(report.has("served-chain"), "{text}");
    for wrong in ["cert-chain.pem", "root-cert.pem", "ca-cert.pem"] {
        assert!(
            !text.contains(wrong),
            "`{wrong}` named for a kubernetes.io/tls bundle:\n{text}"
        );
    }
    assert!(text.contains("ca.crt"), "{text}");
    // Twin: the istiod layout names its own files.
    let istiod = meshtrust::check::render_text(&run(&[d], &opts()));
    assert!(istiod.contains("cert-chain.pem"), "{istiod}");
}

#[test]
fn findings_that_presuppose_istiod_loaded_the_bundle_are_not_reported_after_a_refusal() {
    // A non-CA ca-cert.pem with a pathlen-breaking, keyCertSign-less profile: istiod refuses
    // it, so "istiod loads the bundle, but..." findings would contradict the refusal.
    let f = Fixture::new();
    let d = f.makefile();
    let report = run(std::slice::from_ref(&d), &opts());
    assert!(report.has("served-chain"));
    std::fs::copy(d.join("root-cert.pem"), d.join("ca-cert.pem")).unwrap();
    let report = run(&[d], &opts());
    assert!(report.has("key-mismatch"), "{:?}", report.findings);
    for presupposing in [
        "served-chain",
        "pathlen-breaks-workloads",
        "no-key-cert-sign",
        "chain-order",
        "expires-soon",
    ] {
        assert!(
            !report.has(presupposing),
            "{presupposing} after a refusal: {:?}",
            report.findings
        );
    }
}

#[test]
fn an_intermediate_that_outlives_its_root_is_a_warning() {
    let f = Fixture::new();
    let mut p = tpki::intermediate_params("cluster1");
    p.not_after = f.root.not_after() + Duration::days(400);
    let long = tpki::signed(p, &f.root);
    let d = tpki::makefile_layout(f.path(), "long", &long, &f.root);
    let report = run(&[d], &opts());
    assert_finding(&report, "outlives-issuer", Severity::Warning);
    let msg = &report
        .findings
        .iter()
        .find(|x| x.id == "outlives-issuer")
        .unwrap()
        .message;
    assert!(
        msg.contains("400d after its issuer `O=Istio, CN=Root CA` expires"),
        "{msg}"
    );
    // Twin: one ending with its root is fine.
    let mut p = tpki::intermediate_params("cluster1");
    p.not_after = f.root.not_after();
    let same = tpki::signed(p, &f.root);
    let d = tpki::makefile_layout(f.path(), "same", &same, &f.root);
    assert!(!run(&[d], &opts()).has("outlives-issuer"));
}

/// A workload leaf (serverAuth + clientAuth, as istiod issues) under `ca`, as PEM.
fn workload_leaf(ca: &Tier) -> Tier {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.subject_alt_names = vec![rcgen::SanType::URI(
        "spiffe://cluster.local/ns/foo/sa/httpbin"
            .try_into()
            .unwrap(),
    )];
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    tpki::signed(p, ca)
}

#[test]
fn an_intermediate_limited_to_server_auth_makes_peers_refuse_every_client_certificate() {
    // istiod loads it (Go checks serverAuth only); under mTLS each workload certificate is
    // also a client certificate, and peers check clientAuth along the whole path.
    let f = Fixture::new();
    for (name, eku, refused) in [
        (
            "server-only",
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            true,
        ),
        (
            "both",
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            false,
        ),
    ] {
        let mut p = tpki::intermediate_params("cluster1");
        p.extended_key_usages = eku;
        let ca = tpki::signed(p, &f.root);
        let d = tpki::makefile_layout(f.path(), name, &ca, &f.root);
        let report = run(std::slice::from_ref(&d), &opts());
        // The reference peer: openssl verify as a TLS client certificate.
        let leaf = workload_leaf(&ca);
        std::fs::write(d.join("leaf.pem"), &leaf.pem).unwrap();
        let args = [
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "root-cert.pem",
            "-untrusted",
            "ca-cert.pem",
            "leaf.pem",
        ];
        if refused {
            let finding = report
                .findings
                .iter()
                .find(|x| x.id == "peers-refuse")
                .unwrap_or_else(|| panic!("{name}: {:?}", report.findings));
            assert_eq!(finding.severity, Severity::Error);
            assert!(
                finding
                    .message
                    .contains("as a client certificate (clientAuth)"),
                "{}",
                finding.message
            );
            assert!(
                finding.message.contains("without clientAuth"),
                "{}",
                finding.message
            );
            assert!(
                finding.fix.contains("both serverAuth and clientAuth"),
                "{}",
                finding.fix
            );
            assert!(
                !report
                    .findings
                    .iter()
                    .any(|x| x.id == "peers-refuse" && x.message.contains("as a server"))
            );
            let out = openssl_fails(&d, &args);
            assert!(out.contains("unsuitable certificate purpose"), "{out}");
        } else {
            assert!(!report.has("peers-refuse"), "{name}: {:?}", report.findings);
            openssl(&d, &args);
        }
    }
}

#[test]
fn a_root_cert_that_is_not_self_signed_makes_peers_refuse_in_either_layout() {
    // A 3-level PKI whose root-cert.pem holds the issuing CA: istiod stops its path there,
    // peers look for the issuer of that CA and find none.
    let f = Fixture::new();
    let issuing = tpki::signed(
        tpki::ca_params(
            &[
                (rcgen::DnType::OrganizationName, "Istio"),
                (rcgen::DnType::CommonName, "Issuing CA"),
            ],
            None,
        ),
        &f.root,
    );
    let ca = tpki::intermediate("cluster1", &issuing);
    let d = tpki::write_bundle(
        f.path(),
        "istiod-layout",
        &ca,
        &[&ca, &issuing],
        &[&issuing],
    );
    let report = run(std::slice::from_ref(&d), &opts());
    assert!(
        !report
            .findings
            .iter()
            .any(|x| x.severity == Severity::Error && x.id != "peers-refuse"),
        "{:?}",
        report.findings
    );
    let finding = report
        .findings
        .iter()
        .find(|x| x.id == "peers-refuse")
        .expect("peers-refuse");
    assert!(
        finding.message.contains("is not a self-signed root"),
        "{}",
        finding.message
    );
    let leaf = workload_leaf(&ca);
    std::fs::write(d.join("leaf.pem"), &leaf.pem).unwrap();
    let out = openssl_fails(
        &d,
        &[
            "verify",
            "-CAfile",
            "root-cert.pem",
            "-untrusted",
            "cert-chain.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("unable to get issuer certificate"), "{out}");
    // The same in the kubernetes.io/tls layout is `tls-ca-not-root`, once.
    let tls = f.path().join("tls-layout");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("tls.crt"), &ca.pem).unwrap();
    std::fs::copy(d.join("ca-key.pem"), tls.join("tls.key")).unwrap();
    std::fs::write(tls.join("ca.crt"), &issuing.pem).unwrap();
    let report = run(&[tls], &opts());
    assert!(report.has("tls-ca-not-root"), "{:?}", report.findings);
    assert!(!report.has("peers-refuse"), "{:?}", report.findings);
    // Twin: the real root in root-cert.pem.
    let good = tpki::write_bundle(
        f.path(),
        "three-levels",
        &ca,
        &[&ca, &issuing, &f.root],
        &[&f.root],
    );
    assert!(!run(&[good], &opts()).has("peers-refuse"));
}

#[test]
fn a_served_chain_without_the_signing_certificate_makes_peers_refuse() {
    // cert-chain.pem empty, or holding only the root: istiod loads and serves leaf + root
    // (+ root); a peer cannot find the leaf's issuer.
    let f = Fixture::new();
    for (name, chain) in [("empty", String::new()), ("root-only", f.root.pem.clone())] {
        let d = tpki::makefile_layout(f.path(), name, &f.ca, &f.root);
        std::fs::write(d.join("cert-chain.pem"), &chain).unwrap();
        let report = run(std::slice::from_ref(&d), &opts());
        let finding = report
            .findings
            .iter()
            .find(|x| x.id == "peers-refuse")
            .unwrap_or_else(|| panic!("{name}: {:?}", report.findings));
        assert!(
            finding.message.contains("does not contain `ca-cert.pem`"),
            "{}",
            finding.message
        );
        assert_eq!(finding.file.as_deref(), Some("cert-chain.pem"));
        // The reference peer agrees: leaf + what istiod serves after it.
        let leaf = workload_leaf(&f.ca);
        std::fs::write(d.join("leaf.pem"), &leaf.pem).unwrap();
        std::fs::write(d.join("served.pem"), format!("{chain}{}", f.root.pem)).unwrap();
        let out = openssl_fails(
            &d,
            &[
                "verify",
                "-CAfile",
                "root-cert.pem",
                "-untrusted",
                "served.pem",
                "leaf.pem",
            ],
        );
        assert!(
            out.contains("unable to get local issuer certificate"),
            "{out}"
        );
    }
    // Twin: the Makefile's cert-chain.pem.
    assert!(!run(&[f.makefile()], &opts()).has("peers-refuse"));
}

#[test]
fn a_tls_crt_without_a_final_newline_is_named_as_the_cause() {
    let f = Fixture::new();
    let d = f.makefile();
    let tls = f.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("tls.crt"), f.ca.pem.trim_end()).unwrap();
    std::fs::copy(d.join("ca-key.pem"), tls.join("tls.key")).unwrap();
    std::fs::copy(d.join("root-cert.pem"), tls.join("ca.crt")).unwrap();
    let report = run(std::slice::from_ref(&tls), &opts());
    let finding = report
        .findings
        .iter()
        .find(|x| x.id == "cert-chain-unparseable")
        .expect("cert-chain-unparseable");
    assert!(
        finding
            .message
            .contains("`tls.crt` does not end with a newline"),
        "{}",
        finding.message
    );
    assert!(finding.fix.contains("echo >> tls.crt"), "{}", finding.fix);
    // Twin: with its newline it loads.
    std::fs::write(tls.join("tls.crt"), &f.ca.pem).unwrap();
    let report = run(&[tls], &opts());
    assert!(
        !report
            .findings
            .iter()
            .any(|x| x.severity == Severity::Error),
        "{:?}",
        report.findings
    );
}

#[test]
fn a_truncated_signing_certificate_is_one_finding_not_two() {
    let f = Fixture::new();
    let d = f.makefile();
    let pem = std::fs::read_to_string(d.join("ca-cert.pem")).unwrap();
    std::fs::write(d.join("ca-cert.pem"), &pem[..pem.len() / 2]).unwrap();
    let report = run(&[d], &opts());
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| x.id)
        .collect();
    assert_eq!(errors, ["cert-unparseable"], "{:?}", report.findings);
}

#[test]
fn rules_across_clusters_skip_bundles_istiod_refuses() {
    let f = Fixture::new();
    let a = tpki::makefile_layout(f.path(), "a", &f.ca, &f.root);
    let b = tpki::makefile_layout(f.path(), "b", &f.ca, &f.root);
    assert!(run(&[a.clone(), b.clone()], &opts()).has("overlapping-intermediates"));
    std::fs::remove_file(b.join("cert-chain.pem")).unwrap();
    let report = run(&[a, b], &opts());
    assert!(report.has("incomplete-bundle"));
    assert!(
        !report.has("overlapping-intermediates"),
        "{:?}",
        report.findings
    );
}

#[test]
fn an_unknown_istio_release_is_bad_input_naming_the_range() {
    let f = Fixture::new();
    Command::cargo_bin("meshtrust")
        .unwrap()
        .args(["check", "--istio-version", "1.99"])
        .arg(f.makefile())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`1.99` is not an Istio release meshtrust models: it knows 1.24 to 1.32",
        ));
}

/// Each cross-cluster refusal as (workloads, peers, purpose), bundles by directory name;
/// whether a root mismatch (`different-roots`) or `peers-refuse` reports it.
fn refusals_across(report: &Report) -> Vec<(String, String, String)> {
    let name = |p: &str| {
        Path::new(p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    report
        .findings
        .iter()
        .filter(|f| f.bundle == "*")
        .flat_map(|f| {
            assert_eq!(f.severity, Severity::Error);
            f.peer_refusals
                .iter()
                .map(|r| (name(&r.workloads), name(&r.peers), r.purpose.clone()))
        })
        .collect()
}

fn refusal(w: &str, p: &str, purpose: &str) -> (String, String, String) {
    (w.to_owned(), p.to_owned(), purpose.to_owned())
}

#[test]
fn peers_of_each_cluster_judge_every_other_clusters_workloads_both_ways_and_for_both_purposes() {
    let f = Fixture::new();
    let a = f.makefile();
    let other = tpki::root();
    let b_ca = tpki::intermediate("cluster2", &other);
    let b = tpki::makefile_layout(f.path(), "cluster2", &b_ca, &other);
    // The reference peer: openssl verifying cluster1's workload leaf with cluster2's trust.
    let leaf = workload_leaf(&f.ca);
    std::fs::write(f.path().join("leaf.pem"), &leaf.pem).unwrap();
    fn verify_a_leaf_with(trust: &str) -> [&str; 8] {
        [
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            trust,
            "-untrusted",
            "cluster1/cert-chain.pem",
            "leaf.pem",
        ]
    }

    // Different roots: every direction, both purposes.
    let report = run(&[a.clone(), b.clone()], &opts());
    assert_eq!(
        refusals_across(&report),
        [
            refusal("cluster1", "cluster2", "serverAuth"),
            refusal("cluster1", "cluster2", "clientAuth"),
            refusal("cluster2", "cluster1", "serverAuth"),
            refusal("cluster2", "cluster1", "clientAuth"),
        ],
        "{}",
        check::render_text(&report)
    );
    // One cause, one finding: the root mismatch carries every refusal it causes.
    let text = check::render_text(&report);
    assert_eq!(ids(&report, Severity::Error), ["different-roots"], "{text}");
    let p = |name: &str| f.path().join(name).display().to_string();
    assert!(
        text.contains(&format!(
            "{} -> peers of {}, clientAuth: the chain ends in the root `O=Istio, CN=Root CA` (sha256 ",
            p("cluster1"),
            p("cluster2")
        )) && text.contains(&format!(
            "which `{}`'s root-cert.pem does not hold (OpenSSL: self-signed certificate in certificate chain)",
            p("cluster2")
        )) && text.contains(
            "fix: generate every cluster's intermediate from one root (`meshtrust certs cacerts cluster1 cluster2`), or put both roots in every cluster's root-cert.pem"
        ),
        "{text}"
    );
    openssl_fails(f.path(), &verify_a_leaf_with("cluster2/root-cert.pem"));
    openssl(f.path(), &verify_a_leaf_with("cluster1/root-cert.pem"));

    // cluster2 also trusts cluster1's root: only cluster1's peers still refuse cluster2.
    let both = format!("{}{}", other.pem, f.root.pem);
    std::fs::write(b.join("root-cert.pem"), &both).unwrap();
    let report = run(&[a.clone(), b.clone()], &opts());
    assert_eq!(
        refusals_across(&report),
        [
            refusal("cluster2", "cluster1", "serverAuth"),
            refusal("cluster2", "cluster1", "clientAuth"),
        ],
        "{}",
        check::render_text(&report)
    );
    openssl(f.path(), &verify_a_leaf_with("cluster2/root-cert.pem"));
    let text = check::render_text(&report);
    assert_eq!(ids(&report, Severity::Error), ["peers-refuse"], "{text}");
    assert!(
        text.contains(&format!(
            "error[peers-refuse] [root-cert.pem]: peers in `{}` refuse the workloads of `{}` as servers (serverAuth) and as mTLS clients (clientAuth): `{}`'s root-cert.pem does not lead to the chain `{}` serves",
            p("cluster1"), p("cluster2"), p("cluster1"), p("cluster2")
        )) && text.contains(&format!(
            "fix: add the root of `{}` to `{}`'s root-cert.pem as well (peers trust every root in it), or generate every cluster's intermediate from one root",
            p("cluster2"), p("cluster1")
        )),
        "{text}"
    );

    // Both trust both roots: no cross-cluster refusal (and no different-roots).
    std::fs::write(
        a.join("root-cert.pem"),
        format!("{}{}", f.root.pem, other.pem),
    )
    .unwrap();
    let report = run(&[a, b], &opts());
    assert!(refusals_across(&report).is_empty(), "{:?}", report.findings);
    assert!(!report.has("different-roots"), "{:?}", report.findings);
}

#[test]
fn a_refusal_a_cluster_meets_at_home_is_reported_once_not_for_every_peer_cluster() {
    let f = Fixture::new();
    let mut p = tpki::intermediate_params("cluster1");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_only = tpki::signed(p, &f.root);
    let a = tpki::makefile_layout(f.path(), "cluster1", &server_only, &f.root);
    let a_dir = a.display().to_string();
    let b_ca = tpki::intermediate("cluster2", &f.root);
    let b = tpki::makefile_layout(f.path(), "cluster2", &b_ca, &f.root);
    let report = run(&[a, b], &opts());
    let home: Vec<_> = report
        .findings
        .iter()
        .filter(|x| x.id == "peers-refuse" && x.bundle != "*")
        .flat_map(|x| x.peer_refusals.clone())
        .collect();
    assert_eq!(home.len(), 1, "{:?}", report.findings);
    assert_eq!(
        (
            home[0].workloads.as_str(),
            home[0].peers.as_str(),
            home[0].purpose.as_str()
        ),
        (a_dir.as_str(), a_dir.as_str(), "clientAuth")
    );
    assert!(
        home[0].reason.contains("without clientAuth"),
        "{}",
        home[0].reason
    );
    assert!(refusals_across(&report).is_empty(), "{:?}", report.findings);
}

#[test]
fn cross_cluster_findings_name_the_kubernetes_tls_files() {
    let f = Fixture::new();
    let other = tpki::root();
    let b_ca = tpki::intermediate("cluster2", &other);
    let mut dirs = Vec::new();
    for (name, ca, root) in [("cluster1", &f.ca, &f.root), ("cluster2", &b_ca, &other)] {
        let made = tpki::makefile_layout(f.path(), &format!("{name}-made"), ca, root);
        let tls = f.path().join(name);
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::copy(made.join("ca-cert.pem"), tls.join("tls.crt")).unwrap();
        std::fs::copy(made.join("ca-key.pem"), tls.join("tls.key")).unwrap();
        std::fs::copy(made.join("root-cert.pem"), tls.join("ca.crt")).unwrap();
        dirs.push(tls);
    }
    let report = run(&dirs, &opts());
    let text = check::render_text(&report);
    assert_eq!(refusals_across(&report).len(), 4, "{text}");
    assert!(report.has("different-roots"), "{text}");
    assert!(
        text.contains(&format!(
            "which `{}`'s ca.crt does not hold",
            dirs[1].display()
        )),
        "{text}"
    );
    for wrong in ["cert-chain.pem", "root-cert.pem", "ca-cert.pem"] {
        assert!(
            !text.contains(wrong),
            "`{wrong}` named for kubernetes.io/tls bundles:\n{text}"
        );
    }
    let file_of = |report: &Report, id: &str| {
        report
            .findings
            .iter()
            .find(|x| x.id == id)
            .and_then(|x| x.file.clone())
    };
    assert_eq!(
        file_of(&report, "different-roots").as_deref(),
        Some("ca.crt")
    );
    // A copy of cluster1's bundle: the shared intermediate is named by its tls.crt; beside
    // an istiod-layout bundle, both layouts' files are named.
    let copy = f.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::copy(dirs[0].join(file), copy.join(file)).unwrap();
    }
    let report = run(&[dirs[0].clone(), copy], &opts());
    assert_eq!(
        file_of(&report, "overlapping-intermediates").as_deref(),
        Some("tls.crt")
    );
    let istiod_layout = tpki::makefile_layout(f.path(), "istiod-layout", &f.ca, &f.root);
    let report = run(&[istiod_layout, dirs[0].clone()], &opts());
    assert_eq!(
        file_of(&report, "overlapping-intermediates").as_deref(),
        Some("ca-cert.pem, tls.crt")
    );
    let report = run(
        &[
            tpki::makefile_layout(f.path(), "istiod-layout-2", &f.ca, &f.root),
            dirs[1].clone(),
        ],
        &opts(),
    );
    assert_eq!(
        file_of(&report, "different-roots").as_deref(),
        Some("root-cert.pem, ca.crt")
    );
}

#[test]
fn a_directory_given_twice_is_one_bundle_and_every_pair_of_roots_is_compared() {
    let f = Fixture::new();
    let a = f.makefile();
    let mut twice = a.clone().into_os_string();
    twice.push("/");
    let report = run(&[a.clone(), PathBuf::from(twice)], &opts());
    assert_eq!(report.bundles.len(), 1, "{:?}", report.bundles);
    assert!(
        !report.has("overlapping-intermediates"),
        "{:?}",
        report.findings
    );
    // Three clusters, three roots: each pair is a mismatch, reported once with its refusals.
    let (r2, r3) = (tpki::root(), tpki::root());
    let b = tpki::makefile_layout(
        f.path(),
        "cluster2",
        &tpki::intermediate("cluster2", &r2),
        &r2,
    );
    let c = tpki::makefile_layout(
        f.path(),
        "cluster3",
        &tpki::intermediate("cluster3", &r3),
        &r3,
    );
    let report = run(&[a, b, c], &opts());
    let mismatches: Vec<usize> = report
        .findings
        .iter()
        .filter(|x| x.id == "different-roots")
        .map(|x| x.peer_refusals.len())
        .collect();
    assert_eq!(mismatches, [4, 4, 4], "{}", check::render_text(&report));
    assert!(
        !report.has("peers-refuse"),
        "{}",
        check::render_text(&report)
    );
}

/// A kubernetes.io/tls bundle `dir/name`: tls.crt = `chain`, tls.key = `ca`'s key, ca.crt = `ca_crt`.
fn tls_bundle(dir: &Path, name: &str, ca: &Tier, chain: &[&Tier], ca_crt: &Tier) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("tls.crt"),
        chain.iter().map(|t| t.pem.as_str()).collect::<String>(),
    )
    .unwrap();
    tpki::write_key(&d.join("tls.key"), &ca.key);
    std::fs::write(d.join("ca.crt"), &ca_crt.pem).unwrap();
    d
}

#[test]
fn every_finding_reads_as_in_the_snapshot() {
    // One bundle (or set of bundles) per finding, at a pinned clock where times matter; the
    // text report of each, as `meshtrust check` prints it.
    let f = Fixture::new();
    let tmp = f.path();
    let other = tpki::root();
    let with = |edit: &dyn Fn(&mut rcgen::CertificateParams)| {
        let mut p = tpki::intermediate_params("cluster1");
        edit(&mut p);
        tpki::signed(p, &f.root)
    };
    let v = |s: &str| s.parse::<IstioVersion>().unwrap();
    let mut cases: Vec<(&str, Vec<PathBuf>, CheckOptions)> = Vec::new();

    cases.push(("the Makefile's layout", vec![f.makefile()], opts()));
    let d = tpki::write_bundle(tmp, "foreign", &f.ca, &[&f.ca, &other], &[&other]);
    cases.push(("a chain to a foreign root", vec![d], opts()));
    let d = tls_bundle(tmp, "tls-foreign", &f.ca, &[&f.ca], &other);
    cases.push((
        "a kubernetes.io/tls bundle with a foreign ca.crt",
        vec![d],
        opts(),
    ));
    let issuing = tpki::signed(
        tpki::ca_params(&[(rcgen::DnType::CommonName, "Issuing CA")], Some(1)),
        &f.root,
    );
    let below = tpki::intermediate("cluster1", &issuing);
    let d = tls_bundle(
        tmp,
        "tls-intermediate",
        &below,
        &[&below, &issuing],
        &issuing,
    );
    cases.push((
        "a kubernetes.io/tls bundle whose ca.crt is an intermediate",
        vec![d],
        opts(),
    ));
    let d = tls_bundle(tmp, "tls-no-newline", &f.ca, &[], &f.root);
    std::fs::write(d.join("tls.crt"), f.ca.pem.trim_end()).unwrap();
    cases.push(("a tls.crt without a final newline", vec![d], opts()));

    let short = with(&|p| p.not_after = f.root.not_after() - Duration::days(100));
    let end = short.not_after().replace_nanosecond(0).unwrap();
    let d = tpki::makefile_layout(tmp, "short", &short, &f.root);
    for (title, now, version) in [
        (
            "10 days left",
            end - Duration::days(10),
            IstioVersion::LATEST,
        ),
        (
            "12 hours left, a release that clamps",
            end - Duration::hours(12),
            v("1.30"),
        ),
        (
            "12 hours left, a release that does not clamp",
            end - Duration::hours(12),
            v("1.27"),
        ),
        (
            "expired an hour ago",
            end + Duration::hours(1),
            IstioVersion::LATEST,
        ),
    ] {
        let o = CheckOptions {
            now,
            istio_version: version,
            ..opts()
        };
        cases.push((title, vec![d.clone()], o));
    }
    let d = tpki::makefile_layout(tmp, "early", &f.ca, &f.root);
    cases.push((
        "not yet valid",
        vec![d],
        CheckOptions {
            now: f.ca.params.not_before.replace_nanosecond(0).unwrap() - Duration::days(1),
            ..opts()
        },
    ));
    let long = with(&|p| p.not_after = f.root.not_after() + Duration::days(400));
    let d = tpki::makefile_layout(tmp, "long", &long, &f.root);
    cases.push(("an intermediate outliving its root", vec![d], opts()));
    let d = tpki::write_bundle(tmp, "reversed", &f.ca, &[&f.root, &f.ca], &[&f.root]);
    cases.push(("cert-chain.pem from the root down", vec![d], opts()));
    let d = tpki::makefile_layout(tmp, "root-only", &f.ca, &f.root);
    std::fs::write(d.join("cert-chain.pem"), &f.root.pem).unwrap();
    cases.push(("cert-chain.pem holding only the root", vec![d], opts()));
    let server_only = with(&|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]);
    let d = tpki::makefile_layout(tmp, "server-only", &server_only, &f.root);
    cases.push(("an intermediate limited to serverAuth", vec![d], opts()));
    let client_only = with(&|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let d = tpki::makefile_layout(tmp, "client-only", &client_only, &f.root);
    cases.push(("an intermediate limited to clientAuth", vec![d], opts()));
    let tight = tpki::self_signed(tpki::ca_params(
        &[(rcgen::DnType::CommonName, "Tight Root")],
        Some(0),
    ));
    let under_tight = tpki::intermediate("cluster1", &tight);
    let d = tpki::makefile_layout(tmp, "tight", &under_tight, &tight);
    cases.push(("a root with pathlen:0", vec![d], opts()));
    let no_sign = with(&|p| {
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    });
    let d = tpki::makefile_layout(tmp, "no-sign", &no_sign, &f.root);
    cases.push(("an intermediate without keyCertSign", vec![d], opts()));
    let not_ca = with(&|p| p.is_ca = rcgen::IsCa::ExplicitNoCa);
    let d = tpki::makefile_layout(tmp, "not-ca", &not_ca, &f.root);
    cases.push(("a ca-cert.pem that is no CA", vec![d], opts()));
    let d = tpki::makefile_layout(tmp, "mismatch", &f.ca, &f.root);
    tpki::write_key(&d.join("ca-key.pem"), &f.root.key);
    cases.push(("a key of another certificate", vec![d], opts()));
    let d = tpki::makefile_layout(tmp, "truncated", &f.ca, &f.root);
    std::fs::write(d.join("ca-cert.pem"), &f.ca.pem[..f.ca.pem.len() / 2]).unwrap();
    cases.push(("a truncated ca-cert.pem", vec![d], opts()));
    let d = tpki::makefile_layout(tmp, "incomplete", &f.ca, &f.root);
    std::fs::remove_file(d.join("cert-chain.pem")).unwrap();
    for (title, version) in [
        ("no cert-chain.pem, 1.25", "1.25"),
        ("no cert-chain.pem, 1.26", "1.26"),
    ] {
        let o = CheckOptions {
            istio_version: v(version),
            ..opts()
        };
        cases.push((title, vec![d.clone()], o));
    }
    let d = tpki::write_bundle(
        tmp,
        "anchor-not-root",
        &below,
        &[&below, &issuing],
        &[&issuing],
    );
    cases.push(("root-cert.pem holding an intermediate", vec![d], opts()));
    let mut p = tpki::intermediate_params("old");
    p.not_before = f.root.params.not_before;
    p.not_after = time::OffsetDateTime::now_utc() - Duration::days(1);
    let old = tpki::signed(p, &f.root);
    let d = tpki::write_bundle(tmp, "old-first", &f.ca, &[&old, &f.ca, &f.root], &[&f.root]);
    cases.push((
        "cert-chain.pem starting with an expired certificate",
        vec![d],
        opts(),
    ));
    // A public key block first; ca-cert.pem without a final newline (which only matters
    // when tls.crt and ca.crt are read as one run of bytes).
    let d = tpki::makefile_layout(tmp, "key-block-first", &f.ca, &f.root);
    std::fs::write(
        d.join("cert-chain.pem"),
        [
            f.ca.key.public_key_pem(),
            f.ca.pem.clone(),
            f.root.pem.clone(),
        ]
        .concat(),
    )
    .unwrap();
    std::fs::write(d.join("ca-cert.pem"), f.ca.pem.trim_end()).unwrap();
    cases.push(("cert-chain.pem starting with a public key", vec![d], opts()));
    let d = tls_bundle(tmp, "tls-key-block-first", &f.ca, &[&f.ca], &f.root);
    std::fs::write(
        d.join("tls.crt"),
        [f.ca.key.public_key_pem(), f.ca.pem.clone()].concat(),
    )
    .unwrap();
    cases.push(("tls.crt starting with a public key", vec![d], opts()));
    let d = tpki::makefile_layout(tmp, "no-key", &f.ca, &f.root);
    std::fs::remove_file(d.join("ca-key.pem")).unwrap();
    for (title, version) in [
        ("no ca-key.pem, 1.25 (ignored)", "1.25"),
        ("no ca-key.pem, 1.26", "1.26"),
    ] {
        let o = CheckOptions {
            istio_version: v(version),
            ..opts()
        };
        cases.push((title, vec![d.clone()], o));
    }
    let d = tpki::makefile_layout(tmp, "readable", &f.ca, &f.root);
    tpki::chmod(&d.join("ca-key.pem"), 0o644);
    cases.push(("a key readable by others", vec![d], opts()));
    let a = f.makefile();
    let foreign_ca = tpki::intermediate("cluster2", &other);
    let b = tpki::makefile_layout(tmp, "cluster2", &foreign_ca, &other);
    let copy = tpki::makefile_layout(tmp, "copy", &f.ca, &f.root);
    cases.push((
        "three clusters: another root, and a copy of cluster1",
        vec![a, b, copy],
        opts(),
    ));

    let mut out = String::new();
    for (title, dirs, o) in &cases {
        out.push_str(&format!(
            "## {title}\n{}\n",
            check::render_text(&run(dirs, o))
        ));
    }
    let out = out.replace(&tmp.display().to_string(), "[TMP]");
    insta::with_settings!({
        snapshot_path => "../fixtures/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        filters => vec![
            (r"sha256 [0-9A-F]+…", "sha256 [FINGERPRINT]…"),
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[TIME]"),
            (r"[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4} \+00:00", "[TIME]"),
            (r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}:\d{2}(\.\d+)? \+00:00:00", "[TIME]"),
        ],
    }, {
        insta::assert_snapshot!("check_finding_messages", out);
    });
}

#[test]
fn a_ca_crt_holding_the_same_intermediate_twice_is_one_finding() {
    let f = Fixture::new();
    let issuing = tpki::signed(
        tpki::ca_params(&[(rcgen::DnType::CommonName, "Issuing CA")], Some(1)),
        &f.root,
    );
    let ca = tpki::intermediate("cluster1", &issuing);
    let d = tls_bundle(f.path(), "twice", &ca, &[&ca, &issuing], &issuing);
    std::fs::write(
        d.join("ca.crt"),
        [issuing.pem.as_str(), issuing.pem.as_str()].concat(),
    )
    .unwrap();
    let report = run(&[d], &opts());
    let n = report
        .findings
        .iter()
        .filter(|x| x.id == "tls-ca-not-root")
        .count();
    assert_eq!(n, 1, "{}", check::render_text(&report));
}

#[test]
fn a_cross_signed_root_in_ca_crt_is_not_a_self_signed_root() {
    // The root's subject and key, signed by another root of the same name: subject equals
    // issuer, yet it is not self-signed. istiod takes it as the anchor; peers that trust the
    // real root do not.
    let f = Fixture::new();
    let namesake = tpki::root();
    let key = rcgen::KeyPair::from_pem(&f.root.key.serialize_pem()).unwrap();
    let cross = tpki::signed_with_key(tpki::root_params(), &namesake, key);
    let d = tls_bundle(f.path(), "cross", &f.ca, &[&f.ca], &cross);
    let report = run(&[d], &opts());
    assert_finding(&report, "tls-ca-not-root", Severity::Error);
    // Twin: the self-signed root itself.
    let d = tls_bundle(f.path(), "self", &f.ca, &[&f.ca], &f.root);
    assert!(!run(&[d], &opts()).has("tls-ca-not-root"));
}

#[test]
fn outlives_issuer_allows_exactly_one_day_of_grace() {
    let f = Fixture::new();
    let root_end = f.root.not_after().replace_nanosecond(0).unwrap();
    let ending = |name: &str, end| {
        let mut p = tpki::intermediate_params("cluster1");
        p.not_after = end;
        let ca = tpki::signed(p, &f.root);
        let d = tpki::makefile_layout(f.path(), name, &ca, &f.root);
        run(&[d], &opts()).has("outlives-issuer")
    };
    assert!(!ending("grace", root_end + Duration::days(1)));
    assert!(ending(
        "beyond",
        root_end + Duration::days(1) + Duration::seconds(1)
    ));
}

#[test]
fn pathlen_breaks_workloads_is_not_reported_for_a_bundle_istiod_refuses() {
    // The tight root's path verifies, but the key is not ca-cert.pem's: istiod refuses it.
    let tmp = tempfile::tempdir().unwrap();
    let tight = tpki::self_signed(tpki::ca_params(
        &[(rcgen::DnType::CommonName, "Tight Root")],
        Some(0),
    ));
    let ca = tpki::intermediate("cluster1", &tight);
    let d = tpki::makefile_layout(tmp.path(), "tight", &ca, &tight);
    assert!(run(std::slice::from_ref(&d), &opts()).has("pathlen-breaks-workloads"));
    tpki::write_key(&d.join("ca-key.pem"), &tight.key);
    let report = run(&[d], &opts());
    assert!(
        report.has("key-mismatch"),
        "{}",
        check::render_text(&report)
    );
    assert!(
        !report.has("pathlen-breaks-workloads"),
        "{}",
        check::render_text(&report)
    );
}

#[test]
fn a_root_without_key_cert_sign_is_named_once_not_also_as_peers_refuse() {
    // istiod (Go) does not check keyCertSign and loads it; peers refuse for that very reason,
    // which `no-key-cert-sign` already names: peers-refuse does not repeat it.
    let tmp = tempfile::tempdir().unwrap();
    let mut p = tpki::root_params();
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let root = tpki::self_signed(p);
    let ca = tpki::intermediate("cluster1", &root);
    let d = tpki::makefile_layout(tmp.path(), "cluster1", &ca, &root);
    let report = run(&[d], &opts());
    assert_eq!(
        ids(&report, Severity::Error),
        ["no-key-cert-sign"],
        "{}",
        check::render_text(&report)
    );
    let finding = report
        .findings
        .iter()
        .find(|x| x.id == "no-key-cert-sign")
        .unwrap();
    assert!(
        finding
            .message
            .starts_with("`O=Istio, CN=Root CA` signs certificates"),
        "{}",
        finding.message
    );
}

#[test]
fn a_cross_cluster_refusal_names_a_dead_end_that_is_not_a_root_as_it_is() {
    use rcgen::DnType;
    // cluster1: its CA under a middle CA M (under the root), and a cross-signed copy of M
    // (same name and key) issued by a root nobody serves or trusts, listed first.
    let f = Fixture::new();
    let middle = tpki::ca_params(&[(DnType::CommonName, "Middle CA")], None);
    let m = tpki::signed(middle.clone(), &f.root);
    let stranger = tpki::self_signed(tpki::ca_params(&[(DnType::CommonName, "Stranger")], None));
    let m_key = rcgen::KeyPair::from_pem(&m.key.serialize_pem()).unwrap();
    let m_cross = tpki::signed_with_key(middle, &stranger, m_key);
    let ca = tpki::signed(tpki::intermediate_params("cluster1"), &m);
    let a = tpki::write_bundle(
        f.path(),
        "cluster1",
        &ca,
        &[&ca, &m_cross, &m, &f.root],
        &[&f.root],
    );
    let other = tpki::root();
    let b_ca = tpki::intermediate("cluster2", &other);
    let b = tpki::makefile_layout(f.path(), "cluster2", &b_ca, &other);
    let report = run(&[a.clone(), b], &opts());
    let text = check::render_text(&report);
    // At home the path goes through M to the root: nothing to report there.
    assert!(!report.has("peers-refuse"), "{text}");
    let refusals: Vec<_> = report
        .findings
        .iter()
        .filter(|x| x.id == "different-roots")
        .flat_map(|x| x.peer_refusals.clone())
        .collect();
    let from_a = refusals
        .iter()
        .find(|r| r.workloads == a.display().to_string())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        from_a
            .reason
            .starts_with("no issuer of `CN=Middle CA` (issued by `CN=Stranger`)"),
        "{}",
        from_a.reason
    );
    let from_b = refusals
        .iter()
        .find(|r| r.workloads != a.display().to_string())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        from_b
            .reason
            .starts_with("the chain ends in the root `O=Istio, CN=Root CA` (sha256 "),
        "{}",
        from_b.reason
    );
}
