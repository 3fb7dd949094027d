//! Traffic through the local mesh: what workloads serve, who they accept under
//! STRICT and PERMISSIVE, across clusters, and across a hot reload.

use std::path::Path;

use meshtrust::mesh::LocalTarget;
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::{
    App, Handshake, InstallOptions, InstallOutcome, Mode, Outcome, Target, Transport, WorkloadRef,
};

use crate::support::mesh::{self as support, Certs, NS, der, spiffe};

/// Plugs `dir` into `cluster`, installs, deploys httpbin and sleep in `foo`.
async fn cluster(target: &mut LocalTarget, cluster: &str, dir: &Path) {
    target.plug_in(cluster, Some(dir)).await.unwrap();
    let outcome = target
        .install(cluster, &InstallOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(outcome, InstallOutcome::Installed { .. }),
        "{outcome:?}"
    );
    target.deploy(cluster, NS, App::Httpbin).await.unwrap();
    target.deploy(cluster, NS, App::Sleep).await.unwrap();
}

fn at(cluster: &str, app: App) -> WorkloadRef {
    WorkloadRef::new(cluster, NS, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpbin_serves_leaf_then_the_plugged_intermediate_then_the_root_twice() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    let mut target = LocalTarget::new();
    cluster(&mut target, "cluster1", &dir).await;
    target
        .set_peer_authentication("cluster1", NS, Mode::Strict)
        .await
        .unwrap();
    let captured = target
        .capture_chain(&at("cluster1", App::Sleep), &at("cluster1", App::Httpbin))
        .await
        .unwrap();
    assert_eq!(captured.handshake, Handshake::Completed);
    assert_eq!(captured.chain.len(), 4);
    assert_eq!(support::uris(&captured.chain[0]), vec![spiffe("httpbin")]);
    assert_eq!(captured.chain[1], der(&dir, "ca-cert.pem"));
    assert_eq!(captured.chain[2], der(&dir, "root-cert.pem"));
    assert_eq!(captured.chain[3], der(&dir, "root-cert.pem"));
    assert_eq!(captured.protocol.as_deref(), Some("TLSv1.3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_plaintext_and_permissive_accepts_it() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    cluster(&mut target, "cluster1", &dir).await;
    let (sleep, httpbin) = (at("cluster1", App::Sleep), at("cluster1", App::Httpbin));

    target
        .set_peer_authentication("cluster1", NS, Mode::Permissive)
        .await
        .unwrap();
    let plain = target
        .request(&sleep, &httpbin, Transport::Plaintext, "/status/200")
        .await
        .unwrap();
    assert_eq!(plain.status(), Some(200), "{plain:?}");

    target
        .set_peer_authentication("cluster1", NS, Mode::Strict)
        .await
        .unwrap();
    let plain = target
        .request(&sleep, &httpbin, Transport::Plaintext, "/status/200")
        .await
        .unwrap();
    assert!(
        matches!(plain, Outcome::Refused { .. }),
        "STRICT answered plaintext: {plain:?}"
    );
    let mtls = target
        .request(&sleep, &httpbin, Transport::Mtls, "/status/200")
        .await
        .unwrap();
    assert_eq!(mtls.status(), Some(200), "{mtls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpbin_headers_name_the_mtls_caller_like_envoys_xfcc() {
    let certs = Certs::new();
    let dir = certs.cacerts(&support::root(), "cluster1");
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    cluster(&mut target, "cluster1", &dir).await;
    target
        .set_peer_authentication("cluster1", NS, Mode::Strict)
        .await
        .unwrap();
    let outcome = target
        .request(
            &at("cluster1", App::Sleep),
            &at("cluster1", App::Httpbin),
            Transport::Mtls,
            "/headers",
        )
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&outcome.body_text().unwrap()).unwrap();
    let xfcc = body["headers"]["X-Forwarded-Client-Cert"].as_str().unwrap();
    assert!(
        xfcc.starts_with(&format!("By={};Hash=", spiffe("httpbin"))),
        "{xfcc}"
    );
    assert!(
        xfcc.ends_with(&format!(";Subject=\"\";URI={}", spiffe("sleep"))),
        "{xfcc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_cluster_mtls_works_when_the_clusters_share_a_root() {
    let certs = Certs::new();
    let root = support::root();
    let (dir1, dir2) = (
        certs.cacerts(&root, "cluster1"),
        certs.cacerts(&root, "cluster2"),
    );
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    cluster(&mut target, "cluster1", &dir1).await;
    cluster(&mut target, "cluster2", &dir2).await;
    target
        .set_peer_authentication("cluster2", NS, Mode::Strict)
        .await
        .unwrap();
    let outcome = target
        .request(
            &at("cluster1", App::Sleep),
            &at("cluster2", App::Httpbin),
            Transport::Mtls,
            "/status/200",
        )
        .await
        .unwrap();
    assert_eq!(outcome.status(), Some(200), "{outcome:?}");
    let captured = target
        .capture_chain(&at("cluster1", App::Sleep), &at("cluster2", App::Httpbin))
        .await
        .unwrap();
    assert_eq!(
        captured.chain[1],
        der(&dir2, "ca-cert.pem"),
        "cluster2's own intermediate"
    );
    assert_eq!(
        captured.chain[2],
        der(&dir1, "root-cert.pem"),
        "the shared root"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_cluster_mtls_is_refused_when_the_roots_differ() {
    let certs = Certs::new();
    let (dir1, dir2) = (
        certs.cacerts(&support::root(), "cluster1"),
        certs.cacerts(&support::root(), "cluster2"),
    );
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    cluster(&mut target, "cluster1", &dir1).await;
    cluster(&mut target, "cluster2", &dir2).await;
    target
        .set_peer_authentication("cluster2", NS, Mode::Strict)
        .await
        .unwrap();
    let outcome = target
        .request(
            &at("cluster1", App::Sleep),
            &at("cluster2", App::Httpbin),
            Transport::Mtls,
            "/status/200",
        )
        .await
        .unwrap();
    let Outcome::Refused { reason } = outcome else {
        panic!("a foreign root was accepted: {outcome:?}");
    };
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    // The probe trusts nothing, so it still sees the chain; httpbin then rejects the probe's
    // client certificate from the foreign root.
    let captured = target
        .capture_chain(&at("cluster1", App::Sleep), &at("cluster2", App::Httpbin))
        .await
        .unwrap();
    assert_eq!(captured.chain[1], der(&dir2, "ca-cert.pem"));
    assert!(
        matches!(captured.handshake, Handshake::Failed(_)),
        "{:?}",
        captured.handshake
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_takes_a_new_intermediate_under_the_same_root_at_once() {
    let certs = Certs::new();
    let root = support::root();
    let (old, new) = (
        certs.cacerts(&root, "cluster1"),
        certs.cacerts(&root, "cluster1-rotated"),
    );
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    target.plug_in("cluster1", Some(&old)).await.unwrap();
    target
        .install("cluster1", &InstallOptions::default())
        .await
        .unwrap();
    let before = target
        .issue_workload_certificate("cluster1", NS, "sleep")
        .await
        .unwrap();
    assert_eq!(before[1], der(&old, "ca-cert.pem"));

    target.reload_cacerts("cluster1", &new).await.unwrap();
    let after = target
        .issue_workload_certificate("cluster1", NS, "sleep")
        .await
        .unwrap();
    assert_eq!(after[1], der(&new, "ca-cert.pem"));
    assert_eq!(
        after[2],
        der(&old, "root-cert.pem"),
        "the root is unchanged"
    );
    assert_eq!(
        target.root_configmap("cluster1", NS).await.unwrap(),
        Some(support::read(&old, "root-cert.pem"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_ignores_an_intermediate_under_a_different_root() {
    let certs = Certs::new();
    let (old, foreign) = (
        certs.cacerts(&support::root(), "cluster1"),
        certs.cacerts(&support::root(), "elsewhere"),
    );
    let mut target = LocalTarget::with_workload_key(KeyAlg::P256);
    target.plug_in("cluster1", Some(&old)).await.unwrap();
    target
        .install("cluster1", &InstallOptions::default())
        .await
        .unwrap();
    target.reload_cacerts("cluster1", &foreign).await.unwrap();
    let after = target
        .issue_workload_certificate("cluster1", NS, "sleep")
        .await
        .unwrap();
    assert_eq!(
        after[1],
        der(&old, "ca-cert.pem"),
        "the new root was not taken"
    );
    let log = target.cluster("cluster1").unwrap().istiod_log().join("\n");
    assert!(
        log.contains("Multi root is disabled, updating new ROOT-CA not supported"),
        "{log}"
    );
}
