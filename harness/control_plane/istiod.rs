//! istiod (`pilot-discovery discovery`) out of cluster, as Istio's developers run it: from a
//! kubeconfig, in a working directory of its own whose `etc/cacerts/` holds the files of the
//! `cacerts` Secret (where the kubelet mounts it in a pod; `ROOT_CA_DIR` points there), with
//! the mesh config in `etc/istio/config/mesh` (`--meshConfig`). Every port is a free loopback
//! port; the CA API listens on the secure gRPC address (`--secureGRPCAddr`, 15012 in a pod).
//!
//! istiod's facts used here (Istio 1.31, `pilot/cmd/pilot-discovery/app/cmd.go`,
//! `pilot/pkg/bootstrap/options.go` and `istio_ca.go`): the flags named below; `/ready` on the
//! HTTP address answers 200 once istiod serves; a bundle it cannot use makes it log its error
//! and exit non-zero; "Use local CA certificate" is logged BEFORE the key is checked, so that
//! line alone does not mean the bundle was taken (seen with the real binary: the e2e-tools
//! tier's `control_plane` tests).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::ControlPlaneError;
use super::api::free_port;
use super::daemon::Daemon;
use crate::kube::istio::{CaMode, ca_log_lines, refusal_in_log};
use crate::scenario::target::{CaSource, DEFAULT_REVISION, InstallOptions};

/// How long istiod gets to serve or exit (about 3 s on an idle 2-core machine).
pub const ISTIOD_READY: Duration = Duration::from_secs(120);

/// istiod's namespace.
pub const ISTIO_NAMESPACE: &str = "istio-system";

/// The cacerts files a Secret's keys become, relative to istiod's working directory.
pub const CACERTS_DIR: &str = "etc/cacerts";

/// How istiod came up.
#[derive(Debug)]
pub enum Started {
    Serving {
        istiod: IstiodProcess,
        ca: CaSource,
        /// Its log lines about its CA.
        log: Vec<String>,
    },
    /// It exited with this error (its CA's, without pilot-discovery's wrapping).
    Refused { reason: String, log: Vec<String> },
}

/// A running istiod.
#[derive(Debug)]
pub struct IstiodProcess {
    daemon: Daemon,
    dir: PathBuf,
    grpc: SocketAddr,
    /// From start to serving.
    pub ready_in: Duration,
}

/// What istiod is started with.
#[derive(Debug, Clone)]
pub struct IstiodSpec<'a> {
    pub binary: &'a Path,
    pub kubeconfig: &'a Path,
    /// Its working directory (created; removed with the cluster's).
    pub dir: PathBuf,
    pub cluster_id: &'a str,
    pub revision: &'a str,
    pub options: &'a InstallOptions,
    /// The `cacerts` Secret's data by key, as the kubelet would mount it; empty: no Secret.
    pub cacerts: BTreeMap<String, Vec<u8>>,
    /// `USE_REMOTE_CERTS=true`: nothing is mounted; istiod reads Secret `cacerts` from the API
    /// server itself and saves its contents into its cert directory (Istio 1.31,
    /// `pilot/pkg/bootstrap/istio_ca.go`).
    pub remote_certs: bool,
}

impl IstiodProcess {
    /// Starts istiod and waits until it serves or exits.
    pub async fn start(spec: IstiodSpec<'_>) -> Result<Started, ControlPlaneError> {
        let dir = spec.dir.clone();
        let cacerts = dir.join(CACERTS_DIR);
        std::fs::create_dir_all(&cacerts).map_err(ControlPlaneError::io(format!(
            "create {}",
            cacerts.display()
        )))?;
        if !spec.remote_certs {
            write_cacerts(&cacerts, &spec.cacerts)?;
        }
        let mesh = dir.join("etc/istio/config/mesh");
        std::fs::create_dir_all(mesh.parent().expect("a parent"))
            .map_err(ControlPlaneError::io(format!("create {}", mesh.display())))?;
        std::fs::write(
            &mesh,
            format!("trustDomain: {}\n", spec.options.trust_domain),
        )
        .map_err(ControlPlaneError::io(format!("write {}", mesh.display())))?;
        let grpc: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let http: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let mut cmd = Command::new(spec.binary);
        cmd.current_dir(&dir)
            .env("POD_NAMESPACE", ISTIO_NAMESPACE)
            .env("POD_NAME", format!("istiod-{}-meshtrust", spec.revision))
            .env("CLUSTER_ID", spec.cluster_id)
            .env("ROOT_CA_DIR", &cacerts)
            .arg("discovery")
            .arg("--kubeconfig")
            .arg(spec.kubeconfig)
            .arg("--meshConfig")
            .arg(&mesh)
            .args(["--httpAddr", &http.to_string()])
            .args(["--httpsAddr", &addr(free_port()?)])
            .args(["--grpcAddr", &addr(free_port()?)])
            .args(["--secureGRPCAddr", &grpc.to_string()])
            .args(["--monitoringAddr", &addr(free_port()?)])
            .args(["--ctrlz_port", &free_port()?.to_string()]);
        if spec.revision != DEFAULT_REVISION {
            cmd.env("REVISION", spec.revision);
        }
        if spec.remote_certs {
            cmd.env("USE_REMOTE_CERTS", "true");
        }
        if spec.options.multi_root {
            cmd.env("ISTIO_MULTIROOT_MESH", "true");
        }
        let name = format!("istiod ({}, revision {})", spec.cluster_id, spec.revision);
        let mut daemon = Daemon::spawn(&name, &mut cmd, dir.join("istiod.log"))?;
        let started = Instant::now();
        loop {
            if let Some(status) = daemon.exited() {
                let log = daemon.log();
                return match refusal_in_log(&log) {
                    Some((reason, _)) => Ok(Started::Refused {
                        reason: ca_error(&reason).to_owned(),
                        log: ca_log_lines(&log),
                    }),
                    None => Err(daemon.exited_error(status)),
                };
            }
            let log = daemon.log();
            if let Some(mode) = CaMode::detect(&log)
                && ready(http).await
            {
                let ready_in = started.elapsed();
                tracing::info!(%name, ?ready_in, "istiod serving");
                return Ok(Started::Serving {
                    ca: match mode {
                        CaMode::PluggedIn => CaSource::PluggedIn,
                        CaMode::SelfSigned => CaSource::SelfSigned,
                    },
                    log: ca_log_lines(&log),
                    istiod: IstiodProcess {
                        daemon,
                        dir,
                        grpc,
                        ready_in,
                    },
                });
            }
            if started.elapsed() > ISTIOD_READY {
                return Err(ControlPlaneError::NotReady {
                    what: format!("{name} neither served nor exited"),
                    waited: ISTIOD_READY,
                    tail: daemon.tail(20),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The CA API's address (the secure gRPC port).
    pub fn ca_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// Where istiod reads the plugged files.
    pub fn cacerts_dir(&self) -> PathBuf {
        self.dir.join(CACERTS_DIR)
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn tail(&self, n: usize) -> String {
        self.daemon.tail(n)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Whether it is still running (`Err` with the reason when it has exited).
    pub fn check_running(&mut self) -> Result<(), ControlPlaneError> {
        match self.daemon.exited() {
            Some(status) => Err(self.daemon.exited_error(status)),
            None => Ok(()),
        }
    }
}

/// Writes the Secret's keys as files, the way the kubelet mounts a Secret (the private key
/// 0600, the rest 0644), each replaced atomically so that istiod's watcher never reads half a
/// file. An empty map writes nothing.
pub fn write_cacerts(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<(), ControlPlaneError> {
    for (key, bytes) in data {
        let path = dir.join(key);
        let mode = if key.ends_with("key.pem") || key == "tls.key" {
            0o600
        } else {
            0o644
        };
        crate::pki::layout::write_atomic(&path, bytes, mode).map_err(|e| {
            ControlPlaneError::Io {
                what: format!("write {}", path.display()),
                cause: std::io::Error::other(e.to_string()),
            }
        })?;
    }
    Ok(())
}

/// istiod's CA error without pilot-discovery's wrapping (`failed to create discovery service:
/// failed to create CA: ...`, `pilot/cmd/pilot-discovery/app/cmd.go` and
/// `pilot/pkg/bootstrap/server.go`, Istio 1.30 and 1.31): what the local target reports.
pub fn ca_error(reason: &str) -> &str {
    let mut rest = reason;
    for wrapper in [
        "failed to create discovery service: ",
        "failed to create CA: ",
    ] {
        rest = rest.strip_prefix(wrapper).unwrap_or(rest);
    }
    rest
}

/// `GET /ready` on istiod's HTTP address answers 200.
async fn ready(http: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(http).await.ok()?;
        stream
            .write_all(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_error_loses_pilot_discoverys_wrapping_and_nothing_else() {
        assert_eq!(
            ca_error(
                "failed to create discovery service: failed to create CA: failed to create an istiod CA: incomplete signing CA bundle detected"
            ),
            "failed to create an istiod CA: incomplete signing CA bundle detected"
        );
        assert_eq!(
            ca_error("failed to create CA: x509: malformed certificate"),
            "x509: malformed certificate"
        );
        assert_eq!(
            ca_error("some other failure: failed to create CA: x"),
            "some other failure: failed to create CA: x"
        );
    }

    #[test]
    fn the_secret_becomes_files_with_the_key_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let data = BTreeMap::from([
            ("ca-key.pem".to_owned(), b"k".to_vec()),
            ("ca-cert.pem".to_owned(), b"c".to_vec()),
        ]);
        write_cacerts(dir.path(), &data).unwrap();
        let mode = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("ca-key.pem"), 0o600);
        assert_eq!(mode("ca-cert.pem"), 0o644);
        assert_eq!(std::fs::read(dir.path().join("ca-cert.pem")).unwrap(), b"c");
    }
}
