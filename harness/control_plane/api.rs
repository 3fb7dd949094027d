//! One cluster's API: etcd and kube-apiserver on loopback ports, with a CA, serving
//! certificate, admin client certificate and service-account signing key of their own (rcgen),
//! and a kubeconfig of the run's own. The API server issues and reviews ServiceAccount tokens
//! (`--service-account-*`), which is all istiod's CA needs to authenticate workloads.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::ControlPlaneError;
use super::daemon::Daemon;
use crate::kube::cluster::ClusterRef;

/// How long etcd and the API server get to answer (about 5 s on an idle 2-core machine).
pub const API_READY: Duration = Duration::from_secs(90);

/// The service-account token issuer, as a kind cluster's.
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A port nobody listens on now. (Another process may take it before ours binds it; the
/// daemon then exits and says so.)
pub fn free_port() -> Result<u16, ControlPlaneError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(ControlPlaneError::io("find a free loopback port"))
}

/// etcd and kube-apiserver, running. Dropping it stops both (the API server first).
pub struct ApiServer {
    apiserver: Daemon,
    etcd: Daemon,
    kubeconfig: PathBuf,
    client: kube::Client,
    /// From start to the API server listing namespace `default`.
    pub ready_in: Duration,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("etcd", &self.etcd)
            .field("apiserver", &self.apiserver)
            .field("kubeconfig", &self.kubeconfig)
            .finish()
    }
}

impl ApiServer {
    /// Starts both in `dir` (which must exist; its files are the caller's to remove) and
    /// waits until the API server answers.
    pub async fn start(
        etcd: &Path,
        kube_apiserver: &Path,
        cluster: &str,
        dir: &Path,
    ) -> Result<ApiServer, ControlPlaneError> {
        let started = Instant::now();
        write_certs(dir)?;
        let (client_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Daemon::spawn(
            "etcd",
            Command::new(etcd)
                .arg("--data-dir")
                .arg(dir.join("etcd"))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("default={peer_url}")]),
            dir.join("etcd.log"),
        )?;
        let mut apiserver = Daemon::spawn(
            "kube-apiserver",
            Command::new(kube_apiserver)
                .args(["--etcd-servers", &client_url])
                .args(["--bind-address", "127.0.0.1"])
                .args(["--secure-port", &api_port.to_string()])
                .arg("--cert-dir")
                .arg(dir.join("apiserver-certs"))
                .arg("--tls-cert-file")
                .arg(dir.join("apiserver.crt"))
                .arg("--tls-private-key-file")
                .arg(dir.join("apiserver.key"))
                .arg("--client-ca-file")
                .arg(dir.join("ca.crt"))
                .arg("--service-account-key-file")
                .arg(dir.join("sa.pub"))
                .arg("--service-account-signing-key-file")
                .arg(dir.join("sa.key"))
                .args(["--service-account-issuer", SERVICE_ACCOUNT_ISSUER])
                .args([
                    "--api-audiences",
                    &format!("{SERVICE_ACCOUNT_ISSUER},istio-ca"),
                ])
                .args(["--service-cluster-ip-range", "10.96.0.0/16"])
                .args(["--authorization-mode", "RBAC"]),
            dir.join("kube-apiserver.log"),
        )?;
        let kubeconfig = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: https://127.0.0.1:{api_port}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {crt}\n    client-key: {key}\ncontexts:\n- name: {cluster}\n  context: {{cluster: {cluster}, user: admin}}\ncurrent-context: {cluster}\n",
            ca = dir.join("ca.crt").display(),
            crt = dir.join("admin.crt").display(),
            key = dir.join("admin.key").display(),
        );
        crate::pki::layout::write_atomic(&kubeconfig, text.as_bytes(), 0o600).map_err(|e| {
            ControlPlaneError::Io {
                what: format!("write {}", kubeconfig.display()),
                cause: std::io::Error::other(e.to_string()),
            }
        })?;
        let cluster_ref = ClusterRef {
            cluster: cluster.to_owned(),
            kubeconfig: Some(kubeconfig.clone()),
            context: None,
        };
        loop {
            // Not before the port accepts: kube-rs logs every refused connection as an error.
            if tokio::net::TcpStream::connect(("127.0.0.1", api_port))
                .await
                .is_ok()
                && let Ok(client) = cluster_ref.client().await
                && Api::<Namespace>::all(client.clone())
                    .list(&ListParams::default())
                    .await
                    .is_ok_and(|l| {
                        l.items
                            .iter()
                            .any(|n| n.metadata.name.as_deref() == Some("default"))
                    })
            {
                let ready_in = started.elapsed();
                tracing::info!(cluster, ?ready_in, "etcd and kube-apiserver ready");
                return Ok(ApiServer {
                    apiserver,
                    etcd,
                    kubeconfig,
                    client,
                    ready_in,
                });
            }
            for daemon in [&mut etcd, &mut apiserver] {
                if let Some(status) = daemon.exited() {
                    return Err(daemon.exited_error(status));
                }
            }
            if started.elapsed() > API_READY {
                return Err(ControlPlaneError::NotReady {
                    what: format!("the API server of `{cluster}` did not answer"),
                    waited: API_READY,
                    tail: apiserver.tail(20),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The process ids of etcd and kube-apiserver (for the no-leftovers test).
    pub fn pids(&self) -> [u32; 2] {
        [self.etcd.pid(), self.apiserver.pid()]
    }
}

/// The API's CA, its serving certificate (127.0.0.1, localhost), an admin client certificate
/// (`O=system:masters`) and the service-account signing key, written into `dir` (keys 0600).
fn write_certs(dir: &Path) -> Result<(), ControlPlaneError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "meshtrust API server CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
    server
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    server
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let admin_key = KeyPair::generate()?;
    let mut admin = CertificateParams::new(Vec::<String>::new())?;
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin
        .distinguished_name
        .push(DnType::CommonName, "meshtrust");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &issuer)?;

    let sa_key = KeyPair::generate()?;
    for (file, bytes, mode) in [
        ("ca.crt", ca_cert.pem(), 0o644),
        ("apiserver.crt", server_cert.pem(), 0o644),
        ("apiserver.key", server_key.serialize_pem(), 0o600),
        ("admin.crt", admin_cert.pem(), 0o644),
        ("admin.key", admin_key.serialize_pem(), 0o600),
        ("sa.key", sa_key.serialize_pem(), 0o600),
        ("sa.pub", sa_key.public_key_pem(), 0o644),
    ] {
        let path = dir.join(file);
        crate::pki::layout::write_atomic(&path, bytes.as_bytes(), mode).map_err(|e| {
            ControlPlaneError::Io {
                what: format!("write {}", path.display()),
                cause: std::io::Error::other(e.to_string()),
            }
        })?;
    }
    Ok(())
}
