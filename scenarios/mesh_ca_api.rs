//! Istio's CA API (`IstioCertificateService/CreateCertificate`) over real TLS,
//! called by a plain tonic client, and the workload certificates it issues.

use meshtrust::mesh::LocalTarget;
use meshtrust::mesh::ca::Identity;
use meshtrust::mesh::grpc::{self, CaClient};
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::{CaSource, InstallOptions, InstallOutcome, Target};
use tonic::Code;

use crate::support::mesh::{self as support, Certs, NS, der, pems_to_ders, spiffe, uris};
use crate::support::openssl::openssl;

/// A running plugged-in cluster, and a CA client for it.
struct Fixture {
    target: LocalTarget,
    certs: Certs,
    dir: std::path::PathBuf,
    client: CaClient,
}

impl Fixture {
    async fn new() -> Fixture {
        let certs = Certs::new();
        let root = support::root();
        let dir = certs.cacerts(&root, "cluster1");
        let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
        target.plug_in("cluster1", Some(&dir)).await.unwrap();
        let outcome = target
            .install("cluster1", &InstallOptions::default())
            .await
            .unwrap();
        assert!(
            matches!(
                outcome,
                InstallOutcome::Installed {
                    ca: CaSource::PluggedIn,
                    ..
                }
            ),
            "{outcome:?}"
        );
        let cluster = target.cluster("cluster1").unwrap();
        let client = CaClient::connect(cluster.ca_addr().unwrap(), &cluster.roots().unwrap())
            .await
            .expect("a TLS connection to the CA");
        Fixture {
            target,
            certs,
            dir,
            client,
        }
    }

    fn token(&self, sa: &str) -> String {
        self.target
            .cluster("cluster1")
            .unwrap()
            .mint_token(Identity::new(NS, sa))
            .unwrap()
    }
}

fn rcgen_csr(spiffe_id: &str) -> String {
    grpc::agent_csr(&KeyAlg::P256.generate().unwrap(), spiffe_id).unwrap()
}

/// A CSR from `openssl req`: empty subject, critical URI SAN, plus `extra` extensions.
fn openssl_csr(dir: &std::path::Path, san: &str, extra: &[&str]) -> String {
    let key = dir.join("csr-key.pem");
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/",
    ];
    let san_ext = format!("subjectAltName=critical,URI:{san}");
    args.extend(["-addext", &san_ext]);
    for e in extra {
        args.extend(["-addext", e]);
    }
    openssl(std::path::Path::new("."), &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_api_signs_an_rcgen_csr_and_returns_leaf_intermediate_root_root() {
    let mut f = Fixture::new().await;
    let token = f.token("sleep");
    let pems = f
        .client
        .create_certificate(&rcgen_csr(&spiffe("sleep")), 0, Some(&token))
        .await
        .unwrap();
    let chain = pems_to_ders(&pems);
    assert_eq!(
        pems.len(),
        4,
        "one PEM per certificate: leaf, cert-chain.pem (2), root-cert.pem"
    );
    assert_eq!(chain[1], der(&f.dir, "ca-cert.pem"));
    assert_eq!(chain[2], der(&f.dir, "root-cert.pem"));
    assert_eq!(
        chain[3],
        der(&f.dir, "root-cert.pem"),
        "istio/istio#39001: the root twice"
    );
    assert_eq!(uris(&chain[0]), vec![spiffe("sleep")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_api_signs_an_openssl_req_csr_with_an_empty_subject_and_a_critical_uri_san() {
    let mut f = Fixture::new().await;
    let csr = openssl_csr(f.certs.path(), &spiffe("httpbin"), &[]);
    let token = f.token("httpbin");
    let pems = f
        .client
        .create_certificate(&csr, 3600, Some(&token))
        .await
        .unwrap();
    let chain = pems_to_ders(&pems);
    assert_eq!(uris(&chain[0]), vec![spiffe("httpbin")]);
    let leaf = support::parse(&chain[0]);
    let v = leaf.validity();
    assert_eq!(
        (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_seconds(),
        3600 + 120
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_api_refuses_a_request_without_a_token_as_unauthenticated() {
    let mut f = Fixture::new().await;
    let status = f
        .client
        .create_certificate(&rcgen_csr(&spiffe("sleep")), 0, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_api_refuses_a_token_it_did_not_mint_as_unauthenticated() {
    let mut f = Fixture::new().await;
    let _real = f.token("sleep");
    let status = f
        .client
        .create_certificate(&rcgen_csr(&spiffe("sleep")), 0, Some("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_api_refuses_a_ttl_above_90_days_and_accepts_exactly_90_days() {
    let mut f = Fixture::new().await;
    let token = f.token("sleep");
    let ninety_days = 90 * 24 * 3600;
    let status = f
        .client
        .create_certificate(&rcgen_csr(&spiffe("sleep")), ninety_days + 1, Some(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(
        status.message(),
        "requested TTL 2160h0m1s is greater than the max allowed TTL 2160h0m0s"
    );
    f.client
        .create_certificate(&rcgen_csr(&spiffe("sleep")), ninety_days, Some(&token))
        .await
        .expect("90 days is the maximum, not above it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_api_refuses_a_malformed_csr_as_invalid_argument() {
    let mut f = Fixture::new().await;
    let token = f.token("sleep");
    let csr = rcgen_csr(&spiffe("sleep")).replace("MII", "MIJ");
    let status = f
        .client
        .create_certificate(&csr, 0, Some(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_naming_another_service_account_gets_the_tokens_identity() {
    let mut f = Fixture::new().await;
    let token = f.token("sleep");
    let csr = openssl_csr(
        f.certs.path(),
        "spiffe://cluster.local/ns/istio-system/sa/istiod",
        &[],
    );
    let pems = f
        .client
        .create_certificate(&csr, 0, Some(&token))
        .await
        .unwrap();
    assert_eq!(uris(&pems_to_ders(&pems)[0]), vec![spiffe("sleep")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_asking_for_ca_true_gets_a_ca_false_leaf() {
    let mut f = Fixture::new().await;
    let token = f.token("sleep");
    let csr = openssl_csr(
        f.certs.path(),
        &spiffe("sleep"),
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    assert!(
        openssl_text_of_csr(&csr).contains("CA:TRUE"),
        "the CSR really asks for CA:TRUE"
    );
    let pems = f
        .client
        .create_certificate(&csr, 0, Some(&token))
        .await
        .unwrap();
    let chain = pems_to_ders(&pems);
    let leaf = support::parse(&chain[0]);
    let bc = leaf.basic_constraints().unwrap().expect("basicConstraints");
    assert!(bc.critical && !bc.value.ca);
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(!ku.value.key_cert_sign() && ku.value.digital_signature());
}

fn openssl_text_of_csr(csr: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("req.csr");
    std::fs::write(&path, csr).unwrap();
    openssl(
        std::path::Path::new("."),
        &["req", "-in", path.to_str().unwrap(), "-noout", "-text"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_leaf_matches_istiods_profile_under_openssl_x509_text() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    let mut target = LocalTarget::new();
    target.plug_in("cluster1", Some(&dir)).await.unwrap();
    target
        .install("cluster1", &InstallOptions::default())
        .await
        .unwrap();
    let chain = target
        .issue_workload_certificate("cluster1", NS, "httpbin")
        .await
        .unwrap();
    let leaf_path = certs.path().join("leaf.pem");
    std::fs::write(&leaf_path, meshtrust::pki::to_pem(&chain[0])).unwrap();
    let text = openssl(
        std::path::Path::new("."),
        &[
            "x509",
            "-in",
            leaf_path.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    let after = |marker: &str| -> String {
        let mut lines = text.lines().skip_while(|l| !l.contains(marker));
        lines
            .next()
            .unwrap_or_else(|| panic!("no `{marker}` in:\n{text}"));
        lines.next().unwrap_or_default().trim().to_owned()
    };
    assert!(
        text.lines().any(|l| l.trim() == "Subject:"),
        "empty subject:\n{text}"
    );
    assert!(
        text.contains("Public-Key: (2048 bit)"),
        "RSA 2048 agent key:\n{text}"
    );
    assert!(text.contains("X509v3 Subject Alternative Name: critical"));
    assert_eq!(
        after("X509v3 Subject Alternative Name"),
        format!("URI:{}", spiffe("httpbin"))
    );
    assert!(text.contains("X509v3 Key Usage: critical"));
    assert_eq!(
        after("X509v3 Key Usage"),
        "Digital Signature, Key Encipherment"
    );
    assert!(!text.contains("X509v3 Extended Key Usage: critical"));
    assert_eq!(
        after("X509v3 Extended Key Usage"),
        "TLS Web Server Authentication, TLS Web Client Authentication"
    );
    assert!(text.contains("X509v3 Basic Constraints: critical"));
    assert_eq!(after("X509v3 Basic Constraints"), "CA:FALSE");
    assert!(
        !text.contains("Subject Key Identifier"),
        "istiod's leaf has no SKI:\n{text}"
    );
    let ca_path = dir.join("ca-cert.pem");
    let ca_text = openssl(
        std::path::Path::new("."),
        &["x509", "-in", ca_path.to_str().unwrap(), "-noout", "-text"],
    );
    let ski = ca_text
        .lines()
        .skip_while(|l| !l.contains("X509v3 Subject Key Identifier"))
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(after("X509v3 Authority Key Identifier"), ski);
    let serial = openssl(
        std::path::Path::new("."),
        &[
            "x509",
            "-in",
            leaf_path.to_str().unwrap(),
            "-noout",
            "-serial",
        ],
    );
    let hex = serial.trim().trim_start_matches("serial=");
    assert!(hex.len() <= 32, "serial below 2^128: {hex}");
    let leaf = support::parse(&chain[0]);
    let v = leaf.validity();
    assert_eq!(
        (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_seconds(),
        24 * 3600 + 120,
        "24 h, NotBefore backdated 2 min"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_never_outlives_the_intermediate_that_signed_it() {
    let certs = Certs::new();
    let root = support::root();
    let spec = meshtrust::pki::IntermediateSpec {
        key: KeyAlg::P256,
        days: 1,
        ..meshtrust::pki::IntermediateSpec::new("short")
    };
    let inter = meshtrust::pki::generate_intermediate(&root, &spec).unwrap();
    let dir =
        meshtrust::pki::layout::write_cacerts(certs.path(), &spec, &inter, &root, false).unwrap();
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    target.plug_in("c", Some(&dir)).await.unwrap();
    target
        .install("c", &InstallOptions::default())
        .await
        .unwrap();
    // Wait into the next second so that now + 24 h is past the intermediate's NotAfter.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let chain = target
        .issue_workload_certificate("c", NS, "sleep")
        .await
        .unwrap();
    assert_eq!(
        support::parse(&chain[0]).validity().not_after,
        support::parse(inter.cert_der()).validity().not_after
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cacerts_istiod_self_signs_and_workloads_get_leaf_and_root() {
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    target.plug_in("c", None).await.unwrap();
    let outcome = target
        .install("c", &InstallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        InstallOutcome::Installed {
            ca: CaSource::SelfSigned,
            log: vec!["Use self-signed certificate as the CA certificate".into()],
        }
    );
    let chain = target
        .issue_workload_certificate("c", NS, "sleep")
        .await
        .unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        support::parse(&chain[1]).subject().to_string(),
        "O=cluster.local"
    );
    let configmap = target
        .root_configmap("c", NS)
        .await
        .unwrap()
        .expect("the ConfigMap");
    assert_eq!(
        meshtrust::pki::parse_certs(&configmap, "cm".as_ref()).unwrap(),
        vec![chain[1].clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_configmap_holds_the_plugged_root_cert_pem_byte_for_byte() {
    let f = Fixture::new().await;
    let configmap = f.target.root_configmap("cluster1", NS).await.unwrap();
    assert_eq!(configmap, Some(support::read(&f.dir, "root-cert.pem")));
    assert_eq!(
        f.target
            .root_configmap("cluster1", "kube-public")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bundle_fails_install_with_istiods_reason_and_no_workload_gets_a_certificate() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    std::fs::remove_file(dir.join("cert-chain.pem")).unwrap();
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    target.plug_in("cluster1", Some(&dir)).await.unwrap();
    let outcome = target
        .install("cluster1", &InstallOptions::default())
        .await
        .unwrap();
    let InstallOutcome::Refused { reason, .. } = outcome else {
        panic!("istiod started with an incomplete bundle: {outcome:?}");
    };
    assert_eq!(reason, meshtrust::istio::load::INCOMPLETE_BUNDLE);
    let err = target
        .deploy("cluster1", NS, meshtrust::scenario::App::Sleep)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("istiod refused to start"), "{err}");
    assert!(
        target
            .issue_workload_certificate("cluster1", NS, "sleep")
            .await
            .is_err()
    );
    assert_eq!(target.root_configmap("cluster1", NS).await.unwrap(), None);
}
