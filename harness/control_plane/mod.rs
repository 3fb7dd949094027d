//! The istiod target: the real control plane as local processes, no Docker.
//!
//! Per cluster, etcd and kube-apiserver on loopback ([`api`]), and istiod (`pilot-discovery`)
//! run out of cluster from the cluster's kubeconfig ([`istiod`]), as Istio's developers run it.
//! The `cacerts` Secret is created through the API with the kind target's plug-in code and
//! written into istiod's cert directory the way the kubelet mounts it. Workloads are the
//! harness's own sidecar stand-ins ([`crate::mesh::workload`]): each gets a ServiceAccount
//! token from a real TokenRequest (audience `istio-ca`), asks istiod's CA on its secure gRPC
//! port (15012 in a cluster) for a certificate, and trusts the roots istiod published in
//! `istio-ca-root-cert`. Only Envoy is replaced.
//!
//! The binaries are built from the Go module proxy by `just e2e-tools` into
//! `target/e2e-tools/` ([`Binaries`]). Every process runs in a process group of its own,
//! registered with [`crate::kube::process`] so that a signal handler stops it; dropping the
//! target kills them and removes every directory it made.

pub mod api;
pub mod daemon;
pub mod istiod;
pub mod target;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use target::IstiodTarget;

/// The command that builds the binaries.
pub const BUILD_HINT: &str = "just e2e-tools";

/// What went wrong starting or driving the control plane.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error(
        "no `{name}` binary at {} (hint: build the control plane with `{BUILD_HINT}`, or pass `--control-plane DIR` where etcd, kube-apiserver and pilot-discovery-* are)",
        path.display()
    )]
    MissingBinary { name: &'static str, path: PathBuf },
    #[error(
        "`{}` is not executable (hint: `chmod +x {}`, or rebuild it with `{BUILD_HINT}`)",
        path.display(), path.display()
    )]
    NotExecutable { path: PathBuf },
    #[error(
        "the control-plane directory {} does not exist (hint: build it with `{BUILD_HINT}`, or pass `--control-plane DIR` / `MESHTRUST_CONTROL_PLANE` where etcd, kube-apiserver and pilot-discovery-* are)",
        path.display()
    )]
    NoDirectory { path: PathBuf },
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("cannot make the API server's certificates: {0}")]
    Certs(#[from] rcgen::Error),
    #[error("{what} exited ({status}); the end of its log:\n{tail}")]
    Exited {
        what: String,
        status: String,
        tail: String,
    },
    #[error("{what} within {}s; the end of its log:\n{tail}", waited.as_secs())]
    NotReady {
        what: String,
        waited: Duration,
        tail: String,
    },
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
}

impl ControlPlaneError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |cause| ControlPlaneError::Io { what, cause }
    }
}

/// The control plane's binaries: etcd, kube-apiserver and pilot-discovery (istiod).
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    /// istiod, one per pinned Istio release (`pilot-discovery-<release>`), oldest first.
    pub pilot_discovery: Vec<PathBuf>,
}

impl Binaries {
    /// The binaries `just e2e-tools` builds into `dir` (`target/e2e-tools`). A missing one is
    /// an error naming it and the build command.
    pub fn find(dir: &Path) -> Result<Binaries, ControlPlaneError> {
        // Absolute: istiod runs in a working directory of its own.
        let dir = &std::path::absolute(dir)
            .map_err(ControlPlaneError::io(format!("resolve {}", dir.display())))?;
        if !dir.is_dir() {
            return Err(ControlPlaneError::NoDirectory { path: dir.clone() });
        }
        let one = |name: &'static str| {
            let path = dir.join(name);
            if path.is_file() {
                executable(path)
            } else {
                Err(ControlPlaneError::MissingBinary { name, path })
            }
        };
        let etcd = one("etcd")?;
        let kube_apiserver = one("kube-apiserver")?;
        let mut pilot_discovery: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("pilot-discovery-"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        pilot_discovery.sort_by_key(|p| release_of(p));
        let pilot_discovery = pilot_discovery
            .into_iter()
            .map(executable)
            .collect::<Result<Vec<_>, _>>()?;
        if pilot_discovery.is_empty() {
            return Err(ControlPlaneError::MissingBinary {
                name: "pilot-discovery-<release>",
                path: dir.join("pilot-discovery-*"),
            });
        }
        Ok(Binaries {
            etcd,
            kube_apiserver,
            pilot_discovery,
        })
    }

    /// The default place: `target/e2e-tools` under the current directory, or
    /// `MESHTRUST_CONTROL_PLANE` when set.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("MESHTRUST_CONTROL_PLANE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/e2e-tools"))
    }

    /// The istiod an install starts: the oldest pinned release (1.30 when both are built, so
    /// that `istio-upgrade` and the canary move from it to the newest).
    pub fn istiod(&self) -> &Path {
        &self.pilot_discovery[0]
    }

    /// The release of [`Binaries::istiod`], from its name (`pilot-discovery-1.30` is 1.30).
    pub fn istiod_release(&self) -> Option<crate::istio::IstioVersion> {
        self.istiod()
            .file_name()?
            .to_str()?
            .strip_prefix("pilot-discovery-")?
            .parse()
            .ok()
    }

    /// The istiod an upgrade moves to: the newest pinned release (the same one when only one
    /// is built: the upgrade is then a restart of istiod and every workload).
    pub fn istiod_upgrade(&self) -> &Path {
        self.pilot_discovery.last().expect("at least one istiod")
    }
}

/// `path`, if its mode lets anyone execute it.
fn executable(path: PathBuf) -> Result<PathBuf, ControlPlaneError> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::metadata(&path) {
        Ok(m) if m.permissions().mode() & 0o111 != 0 => Ok(path),
        _ => Err(ControlPlaneError::NotExecutable { path }),
    }
}

/// `(major, minor)` of `pilot-discovery-1.31` (`(0, 0)` when the name has none), to order
/// releases numerically (1.9 before 1.31).
fn release_of(path: &Path) -> (u32, u32) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let release = name.trim_start_matches("pilot-discovery-");
    let mut parts = release.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(name);
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn finds_every_binary_and_orders_istiod_releases_numerically() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "etcd",
            "kube-apiserver",
            "pilot-discovery-1.31",
            "pilot-discovery-1.9",
            "istioctl",
        ] {
            touch(dir.path(), name);
        }
        let bins = Binaries::find(dir.path()).unwrap();
        assert!(bins.istiod().is_absolute());
        assert_eq!(bins.etcd, dir.path().join("etcd"));
        assert_eq!(bins.kube_apiserver, dir.path().join("kube-apiserver"));
        assert_eq!(bins.istiod(), dir.path().join("pilot-discovery-1.9"));
        assert_eq!(
            bins.istiod_upgrade(),
            dir.path().join("pilot-discovery-1.31")
        );
        // The install's release is the first pin's: what `check` predicts refusals by.
        assert_eq!(
            bins.istiod_release(),
            Some(crate::istio::IstioVersion::new(1, 9))
        );
    }

    #[test]
    fn a_missing_binary_is_named_with_the_build_command() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "etcd");
        touch(dir.path(), "kube-apiserver");
        let e = Binaries::find(dir.path()).unwrap_err().to_string();
        assert!(e.contains("pilot-discovery-<release>"), "{e}");
        assert!(e.contains(BUILD_HINT), "{e}");
        touch(dir.path(), "pilot-discovery-1.31");
        std::fs::remove_file(dir.path().join("kube-apiserver")).unwrap();
        let e = Binaries::find(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no `kube-apiserver` binary"), "{e}");
        touch(dir.path(), "kube-apiserver");
        assert!(Binaries::find(dir.path()).is_ok());
        use std::os::unix::fs::PermissionsExt as _;
        let istiod = dir.path().join("pilot-discovery-1.31");
        std::fs::set_permissions(&istiod, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Binaries::find(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is not executable (hint: `chmod +x"), "{e}");
        let e = Binaries::find(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
