//! The real control plane's pieces, one at a time (the e2e-tools tier): etcd and kube-apiserver
//! ([`ApiServer`]) and istiod ([`IstiodProcess`]) as plain processes, no Docker, each built
//! from the Go module proxy into `target/e2e-tools/` (`just e2e-tools`). istiod runs out of
//! cluster from a kubeconfig, in a directory whose `etc/cacerts/` holds the plugged files.
//!
//! What this proves with real Istio code, against a bundle made by Istio's Makefile recipe
//! (openssl), for every pinned istiod: it takes the plugged CA, and the `istio-ca-root-cert`
//! it writes into every namespace is the plugged root. Its negative twin: a key that is not
//! the intermediate's makes istiod exit with its own error, which `meshtrust check` quotes.
//! The whole scenarios on these pieces are `istiod_target.rs`. A missing binary FAILS,
//! naming `just e2e-tools`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use meshtrust::check::{CheckOptions, check};
use meshtrust::control_plane::Binaries;
use meshtrust::control_plane::api::ApiServer;
use meshtrust::control_plane::istiod::{IstiodProcess, IstiodSpec, Started};
use meshtrust::kube::cluster::namespace;
use meshtrust::kube::plugin::root_configmap;
use meshtrust::scenario::{CaSource, InstallOptions};
use serial_test::file_serial;

use crate::support::openssl::{makefile_bundle, openssl};

fn bins() -> Binaries {
    let dir = std::env::var_os("MESHTRUST_E2E_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-tools"));
    Binaries::find(&dir).unwrap_or_else(|e| panic!("{e}"))
}

/// etcd and kube-apiserver in `dir`, with namespaces `istio-system` and `others`.
async fn api(dir: &Path, others: &[&str]) -> ApiServer {
    let b = bins();
    let api = ApiServer::start(&b.etcd, &b.kube_apiserver, "cluster1", dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("etcd and kube-apiserver ready in {:?}", api.ready_in);
    let namespaces = Api::<Namespace>::all(api.client());
    for ns in std::iter::once(&"istio-system").chain(others) {
        namespaces
            .create(&PostParams::default(), &namespace(ns, &[]))
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace `{ns}`: {e}"));
    }
    api
}

/// istiod `binary` with `bundle`'s files where the kubelet mounts `cacerts`.
async fn istiod(binary: &Path, api: &ApiServer, dir: &Path, bundle: &Path) -> Started {
    let cacerts: BTreeMap<String, Vec<u8>> = [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ]
    .into_iter()
    .map(|f| (f.to_owned(), std::fs::read(bundle.join(f)).unwrap()))
    .collect();
    IstiodProcess::start(IstiodSpec {
        binary,
        kubeconfig: api.kubeconfig(),
        dir: dir.join("istiod"),
        cluster_id: "cluster1",
        revision: "default",
        options: &InstallOptions::default(),
        cacerts,
        remote_certs: false,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn der(pem: &[u8], what: &str) -> Vec<Vec<u8>> {
    meshtrust::pki::parse_certs(pem, Path::new(what))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|c| c.as_ref().to_vec())
        .collect()
}

#[tokio::test]
#[file_serial(control_plane)]
async fn every_pinned_istiod_takes_a_makefile_bundle_and_publishes_its_root_in_every_namespace() {
    let certs = tempfile::tempdir().unwrap();
    makefile_bundle(certs.path(), "cluster1");
    let bundle = certs.path().join("cluster1");
    for binary in bins().pilot_discovery {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), &["foo"]).await;
        let Started::Serving { istiod, ca, log } = istiod(&binary, &api, dir.path(), &bundle).await
        else {
            panic!("{} refused the Makefile bundle", binary.display());
        };
        assert_eq!(ca, CaSource::PluggedIn, "{}: {log:?}", binary.display());
        assert!(
            !istiod
                .log()
                .contains(meshtrust::kube::istio::SELF_SIGNED_LINE),
            "istiod also self-signed:\n{}",
            istiod.tail(30)
        );
        // The plugged root, byte for byte (as DER), in the workload namespace.
        let started = Instant::now();
        let published = loop {
            if let Some(pem) = root_configmap(&api.client(), "foo").await.unwrap() {
                break pem;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no istio-ca-root-cert in foo:\n{}",
                istiod.tail(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let plugged = std::fs::read(bundle.join("root-cert.pem")).unwrap();
        assert_eq!(
            der(published.as_bytes(), "istio-ca-root-cert"),
            der(&plugged, "root-cert.pem"),
            "{}: istio-ca-root-cert in foo is not the plugged root",
            binary.display()
        );
    }
    // meshtrust's check agrees: nothing stops istiod here.
    let report = check(&[bundle], &CheckOptions::default()).unwrap();
    assert!(
        !report.findings.iter().any(|f| f.istiod_error.is_some()),
        "check predicts a refusal istiod did not make: {:?}",
        report.findings
    );
}

#[tokio::test]
#[file_serial(control_plane)]
async fn every_pinned_istiod_refuses_a_key_that_is_not_the_intermediates_and_check_quotes_it() {
    let certs = tempfile::tempdir().unwrap();
    makefile_bundle(certs.path(), "cluster1");
    let bundle = certs.path().join("cluster1");
    openssl(&bundle, &["genrsa", "-out", "ca-key.pem", "2048"]);
    let report = check(std::slice::from_ref(&bundle), &CheckOptions::default()).unwrap();
    let predicted: Vec<&str> = report
        .findings
        .iter()
        .filter_map(|f| f.istiod_error.as_deref())
        .collect();
    assert!(
        !predicted.is_empty(),
        "check predicts no refusal: {:?}",
        report.findings
    );
    for binary in bins().pilot_discovery {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), &[]).await;
        // istiod logs "Use local CA certificate" before it builds the key/cert bundle, then
        // exits: the line alone does not mean the bundle was taken.
        match istiod(&binary, &api, dir.path(), &bundle).await {
            Started::Refused { reason, log } => {
                for text in &predicted {
                    assert!(
                        reason.contains(text),
                        "{}: check says istiod fails with `{text}`, but istiod said `{reason}`",
                        binary.display()
                    );
                }
                assert!(
                    !log.iter()
                        .any(|l| l.contains(meshtrust::kube::istio::SELF_SIGNED_LINE)),
                    "istiod fell back to a self-signed root instead of refusing: {log:?}"
                );
            }
            Started::Serving { istiod, .. } => panic!(
                "{} took a key that is not the intermediate's:\n{}",
                binary.display(),
                istiod.tail(30)
            ),
        }
    }
}
