//! What a kind run is asked to do: clusters, Istio versions (one istioctl per phase), how the
//! probe gets into the pod, where things go. The plan and the run read the same value.

use std::path::PathBuf;

use super::istio::Profile;

/// How the probe reaches the sleep pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeDelivery {
    /// Streamed into istio-proxy over exec stdin (the default proxyv2 image has a shell).
    Exec,
    /// An image from the local registry, run as an ephemeral container (distroless proxies).
    Image,
}

#[derive(Debug, Clone)]
pub struct KindRun {
    /// kind cluster names are `<prefix>-<cluster>`.
    pub prefix: String,
    /// Logical cluster names, each with an intermediate under `certs_dir` (`cluster1`, ...).
    pub clusters: Vec<String>,
    /// The `meshtrust certs` directory: `root-cert.pem` and one directory per cluster.
    pub certs_dir: PathBuf,
    /// `false`: the default-CA scenario (no cacerts; istiod must say it is self-signed).
    pub plug_in: bool,
    /// The shared kind config, patched per cluster.
    pub kind_config: PathBuf,
    /// Patched kind configs and kubeconfigs (a temp dir in a real run).
    pub workdir: PathBuf,
    /// `kind export logs` and reports go here.
    pub artifacts: PathBuf,
    pub profile: Profile,
    /// `[install]` or `[install, upgrade]`: the tool paths of each phase.
    pub istioctl: Vec<PathBuf>,
    /// The in-place upgrade (scenario `istio-upgrade`) is in the run: its phase installs the
    /// upgrade's istioctl over the first (the same one again when only one is given).
    pub in_place_upgrade: bool,
    /// The canary upgrade (scenario `istio-canary-upgrade`) is in the run: its phase installs
    /// a second control plane with the upgrade's istioctl (the last given), moves `foo` to it,
    /// and removes the first.
    pub canary: bool,
    /// Each istioctl's version, once preflight has asked (empty in a dry run): Istio's images
    /// are tagged with it.
    pub istio_versions: Vec<String>,
    /// The static probe (`just probe-static`).
    pub probe_binary: PathBuf,
    pub delivery: ProbeDelivery,
    /// `--keep` / `MESHTRUST_KEEP`: leave the clusters.
    pub keep: bool,
    /// `--istio-version X.Y`: the install-phase istioctl must be that release; checked right
    /// after preflight, before any cluster exists.
    pub expect_istio_version: Option<String>,
}

impl KindRun {
    /// One cluster, plugged in, exec delivery, paths relative to the repository.
    pub fn single(prefix: &str) -> Self {
        KindRun {
            prefix: prefix.to_owned(),
            clusters: vec!["cluster1".into()],
            certs_dir: "certs".into(),
            plug_in: true,
            kind_config: "kind-config.yaml".into(),
            workdir: "$WORKDIR".into(),
            artifacts: "target/meshtrust/artifacts".into(),
            profile: Profile::Demo,
            istioctl: vec!["istioctl".into()],
            in_place_upgrade: false,
            canary: false,
            istio_versions: Vec::new(),
            probe_binary: "target/x86_64-unknown-linux-gnu/release/meshtrust-probe".into(),
            delivery: ProbeDelivery::Exec,
            keep: false,
            expect_istio_version: None,
        }
    }

    /// Istio's `network` for cluster `i` (0-based): the same for every kind cluster, whose pod
    /// networks the harness routes to each other (see `InstallSpec::network`).
    pub fn network(_i: usize) -> String {
        "network1".to_owned()
    }

    /// The istioctl of `phase` (0: install, 1: upgrade): with one istioctl, the upgrade
    /// installs that same one again.
    pub fn phase_istioctl(&self, phase: usize) -> Option<&PathBuf> {
        self.istioctl.get(phase).or_else(|| self.istioctl.last())
    }
}
