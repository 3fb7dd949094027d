//! The real control plane as plain processes, no Docker (the e2e-tools tier; the first step of
//! issue 16): etcd, kube-apiserver and istiod (`pilot-discovery`), each built from the Go
//! module proxy into `target/e2e-tools/` (`just e2e-tools`; `.ci/run` builds them). istiod runs
//! out of cluster as Istio's developers run it: from a kubeconfig, in a directory whose
//! `etc/cacerts/` holds the plugged files, where the kubelet would mount the `cacerts` Secret.
//!
//! What this proves with real Istio code, against a bundle made by Istio's Makefile recipe
//! (openssl): istiod takes the plugged CA, and the `istio-ca-root-cert` it writes into every
//! namespace is the plugged root. Its negative twin: a key that is not the intermediate's makes
//! istiod exit with its own error, and `meshtrust check` quotes that same text.
//!
//! Every process is killed and every file removed when a test ends, passed or failed (the
//! [`ControlPlane`] guard). A missing binary FAILS, naming `just e2e-tools`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use meshtrust::check::{CheckOptions, check};
use meshtrust::kube::cluster::{ClusterRef, namespace};
use serial_test::file_serial;

use super::e2e_tools::real;
use crate::support::openssl::{makefile_bundle, openssl};

/// istiod's binary, at the oracle's Istio commit.
const ISTIOD: &str = "pilot-discovery-1.31";
/// How long each process gets to come up on a loaded 2-core machine.
const READY: Duration = Duration::from_secs(90);

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The processes of one test and their directory; dropping it kills them and removes it.
struct ControlPlane {
    dir: tempfile::TempDir,
    children: Vec<(String, Child)>,
    kubeconfig: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl ControlPlane {
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The last lines of `name`'s log, for a failure message.
    fn tail(&self, name: &str) -> String {
        let log = self.log(name);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.children.push((name.to_owned(), child));
    }

    /// Whether `name` has exited, and how.
    fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        let (_, child) = self.children.iter_mut().find(|(n, _)| n == name)?;
        child.try_wait().ok().flatten()
    }

    /// etcd and kube-apiserver on loopback with serving and client certificates of their own
    /// (openssl), ready to answer.
    async fn start() -> ControlPlane {
        let (etcd_bin, apiserver_bin) = (real("etcd"), real("kube-apiserver"));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let mut cp = ControlPlane {
            kubeconfig: d.join("kubeconfig"),
            dir,
            children: Vec::new(),
        };
        for args in [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "1",
                "-subj",
                "/CN=meshtrust test API CA",
            ][..],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "apiserver.key",
                "-out",
                "apiserver.csr",
                "-subj",
                "/CN=kube-apiserver",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "apiserver.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "apiserver.crt",
                "-days",
                "1",
                "-extfile",
                "server.ext",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "admin.key",
                "-out",
                "admin.csr",
                "-subj",
                "/O=system:masters/CN=meshtrust",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "admin.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "admin.crt",
                "-days",
                "1",
                "-extfile",
                "client.ext",
            ],
            &["genrsa", "-out", "sa.key", "2048"],
        ] {
            std::fs::write(
                d.join("server.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
            openssl(d, args);
        }
        let (client, peer, api) = (free_port(), free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        cp.spawn(
            "etcd",
            Command::new(etcd_bin)
                .arg("--data-dir")
                .arg(d.join("etcd"))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("default={peer_url}")]),
        );
        cp.spawn(
            "kube-apiserver",
            Command::new(apiserver_bin)
                .args(["--etcd-servers", &client_url])
                .args(["--bind-address", "127.0.0.1"])
                .args(["--secure-port", &api.to_string()])
                .arg("--cert-dir")
                .arg(d.join("apiserver-certs"))
                .arg("--tls-cert-file")
                .arg(d.join("apiserver.crt"))
                .arg("--tls-private-key-file")
                .arg(d.join("apiserver.key"))
                .arg("--client-ca-file")
                .arg(d.join("ca.crt"))
                .arg("--service-account-key-file")
                .arg(d.join("sa.key"))
                .arg("--service-account-signing-key-file")
                .arg(d.join("sa.key"))
                .args([
                    "--service-account-issuer",
                    "https://kubernetes.default.svc.cluster.local",
                    "--api-audiences",
                    "https://kubernetes.default.svc.cluster.local,istio-ca",
                    "--service-cluster-ip-range",
                    "10.96.0.0/16",
                    "--authorization-mode",
                    "RBAC",
                ]),
        );
        std::fs::write(
            &cp.kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{api}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {crt}\n    client-key: {key}\ncontexts:\n- name: test\n  context: {{cluster: test, user: admin}}\ncurrent-context: test\n",
                ca = d.join("ca.crt").display(),
                crt = d.join("admin.crt").display(),
                key = d.join("admin.key").display(),
            ),
        )
        .unwrap();
        let started = Instant::now();
        loop {
            if let Ok(client) = cp.client().await
                && Api::<Namespace>::all(client)
                    .list(&ListParams::default())
                    .await
                    .is_ok_and(|l| {
                        l.items
                            .iter()
                            .any(|n| n.metadata.name.as_deref() == Some("default"))
                    })
            {
                break;
            }
            for name in ["etcd", "kube-apiserver"] {
                if let Some(status) = cp.exited(name) {
                    panic!("{name} exited ({status}):\n{}", cp.tail(name));
                }
            }
            assert!(
                started.elapsed() < READY,
                "the API server did not answer within {READY:?}:\n{}",
                cp.tail("kube-apiserver")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!("etcd and kube-apiserver ready in {:?}", started.elapsed());
        cp
    }

    async fn client(&self) -> Result<kube::Client, meshtrust::kube::KubeError> {
        ClusterRef {
            cluster: "cluster1".into(),
            kubeconfig: Some(self.kubeconfig.clone()),
            context: None,
        }
        .client()
        .await
    }

    /// istiod out of cluster, with `bundle`'s files where the kubelet mounts `cacerts`.
    fn start_istiod(&mut self, bundle: &Path) {
        let istiod = real(ISTIOD);
        let work = self.dir.path().join("istiod");
        let cacerts = work.join("etc/cacerts");
        std::fs::create_dir_all(&cacerts).unwrap();
        for file in [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem",
        ] {
            std::fs::copy(bundle.join(file), cacerts.join(file)).unwrap();
        }
        let addr = || format!("127.0.0.1:{}", free_port());
        let kubeconfig = self.kubeconfig.clone();
        self.spawn(
            "istiod",
            Command::new(istiod)
                .current_dir(&work)
                .env("POD_NAMESPACE", "istio-system")
                .env("POD_NAME", "istiod-meshtrust")
                .env("CLUSTER_ID", "cluster1")
                .arg("discovery")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(["--httpAddr", &addr()])
                .args(["--httpsAddr", &addr()])
                .args(["--grpcAddr", &addr()])
                .args(["--secureGRPCAddr", &addr()])
                .args(["--monitoringAddr", &addr()])
                .args(["--ctrlz_port", &free_port().to_string()]),
        );
    }

    /// Waits until istiod's log says `line`, or istiod exits (`Err` with its status).
    async fn istiod_says(&mut self, line: &str) -> Result<Duration, std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if self.log("istiod").contains(line) {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exited("istiod") {
                return Err(status);
            }
            assert!(
                started.elapsed() < READY,
                "istiod neither said `{line}` nor exited within {READY:?}:\n{}",
                self.tail("istiod")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until istiod exits; its status.
    async fn istiod_exit(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited("istiod") {
                return status;
            }
            assert!(
                started.elapsed() < READY,
                "istiod is still running after {READY:?}:\n{}",
                self.tail("istiod")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create_namespace(&self, name: &str) {
        let api = Api::<Namespace>::all(self.client().await.unwrap());
        api.create(&PostParams::default(), &namespace(name, &[]))
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace `{name}`: {e}"));
    }
}

/// The `root-cert.pem` of ConfigMap `istio-ca-root-cert` in `ns`, once istiod has written it.
async fn root_configmap(cp: &mut ControlPlane, ns: &str) -> String {
    let api = Api::<ConfigMap>::namespaced(cp.client().await.unwrap(), ns);
    let started = Instant::now();
    loop {
        if let Ok(Some(cm)) = api.get_opt("istio-ca-root-cert").await
            && let Some(pem) = cm.data.and_then(|d| d.get("root-cert.pem").cloned())
        {
            return pem;
        }
        if let Some(status) = cp.exited("istiod") {
            panic!("istiod exited ({status}):\n{}", cp.tail("istiod"));
        }
        assert!(
            started.elapsed() < READY,
            "istiod wrote no istio-ca-root-cert into `{ns}` within {READY:?}:\n{}",
            cp.tail("istiod")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
async fn real_istiod_takes_a_makefile_bundle_and_publishes_its_root_in_every_namespace() {
    let certs = tempfile::tempdir().unwrap();
    makefile_bundle(certs.path(), "cluster1");
    let bundle = certs.path().join("cluster1");
    let mut cp = ControlPlane::start().await;
    cp.create_namespace("istio-system").await;
    cp.create_namespace("foo").await;
    cp.start_istiod(&bundle);
    let took = cp
        .istiod_says(meshtrust::kube::istio::PLUGGED_IN_LINE)
        .await
        .unwrap_or_else(|status| panic!("istiod exited ({status}):\n{}", cp.tail("istiod")));
    eprintln!("istiod logged its plugged CA {took:?} after start");
    assert!(
        !cp.log("istiod")
            .contains(meshtrust::kube::istio::SELF_SIGNED_LINE),
        "istiod also self-signed:\n{}",
        cp.tail("istiod")
    );
    // The plugged root, byte for byte (as DER), in the workload namespace.
    let published = root_configmap(&mut cp, "foo").await;
    let plugged = std::fs::read(bundle.join("root-cert.pem")).unwrap();
    assert_eq!(
        der(published.as_bytes(), "istio-ca-root-cert"),
        der(&plugged, "root-cert.pem"),
        "istio-ca-root-cert in foo is not the plugged root"
    );
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
async fn real_istiod_refuses_a_key_that_is_not_the_intermediates_and_check_quotes_it() {
    let certs = tempfile::tempdir().unwrap();
    makefile_bundle(certs.path(), "cluster1");
    let bundle = certs.path().join("cluster1");
    openssl(&bundle, &["genrsa", "-out", "ca-key.pem", "2048"]);
    let mut cp = ControlPlane::start().await;
    cp.create_namespace("istio-system").await;
    cp.start_istiod(&bundle);
    // istiod logs "Use local CA certificate" before it builds the key/cert bundle, then exits:
    // the line alone does not mean the bundle was taken.
    let status = cp.istiod_exit().await;
    assert!(!status.success(), "istiod exited {status}");
    let log = cp.log("istiod");
    // What check predicts istiod says is in istiod's own error line.
    let report = check(&[bundle], &CheckOptions::default()).unwrap();
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
    for text in predicted {
        assert!(
            log.contains(text),
            "check says istiod fails with `{text}`, but istiod said:\n{}",
            cp.tail("istiod")
        );
    }
    assert!(
        !log.contains(meshtrust::kube::istio::SELF_SIGNED_LINE),
        "istiod fell back to a self-signed root instead of refusing"
    );
}

#[tokio::test]
#[file_serial(control_plane)]
async fn every_process_and_file_is_gone_when_the_control_plane_is_dropped() {
    let mut cp = ControlPlane::start().await;
    let dir = cp.dir.path().to_path_buf();
    let pids: Vec<u32> = cp.children.iter().map(|(_, c)| c.id()).collect();
    assert_eq!(pids.len(), 2);
    assert!(cp.exited("etcd").is_none() && cp.exited("kube-apiserver").is_none());
    drop(cp);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    for pid in pids {
        // A reaped child has no /proc entry (or one that is not ours any more).
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !cmdline.contains("etcd") && !cmdline.contains("kube-apiserver"),
            "process {pid} is still running: {cmdline}"
        );
    }
}
