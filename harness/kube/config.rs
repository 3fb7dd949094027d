//! What a kind run is asked to do: clusters, Istio versions (one istioctl per phase), how the
//! probe gets into the pod, where things go. The plan and the run read the same value.

use std::path::PathBuf;

use super::istio::Profile;
use crate::scenario::Scenario;

/// How the probe reaches the sleep pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeDelivery {
    /// Streamed into istio-proxy over exec stdin (the default proxyv2 image has a shell).
    Exec,
    /// An image from the local registry, run as an ephemeral container (distroless proxies).
    Image,
}

/// The kind cluster config meshtrust creates each cluster from unless `--kind-config` names
/// another: one control-plane node, cluster 1's subnets, and containerd reading registry hosts
/// from `/etc/containerd/certs.d` (kind's local-registry pattern). Built in from
/// `kind-config.yaml`.
pub const KIND_CONFIG: &str = include_str!("../../kind-config.yaml");

#[derive(Debug, Clone)]
pub struct KindRun {
    /// kind cluster names are `<prefix>-<cluster>`.
    pub prefix: String,
    /// The physical clusters (`cluster1`, and `cluster2` when a multi-cluster scenario runs);
    /// every logical cluster of a scenario is placed on one of them.
    pub clusters: Vec<String>,
    /// The scenarios the run takes, in order (the plan is theirs).
    pub scenarios: Vec<Scenario>,
    /// The shared kind config, patched per cluster; `None`: the built-in one
    /// ([`KIND_CONFIG`], the repository's `kind-config.yaml`), so that a run works from any
    /// directory.
    pub kind_config: Option<PathBuf>,
    /// Patched kind configs and kubeconfigs (a temp dir in a real run).
    pub workdir: PathBuf,
    /// `kind export logs` and reports go here.
    pub artifacts: PathBuf,
    pub profile: Profile,
    /// `[install]` or `[install, upgrade]`: the tool paths of each phase. The in-place upgrade
    /// installs the upgrade's istioctl over the first (the same one again when only one is
    /// given); the canary upgrade's revision comes from the last.
    pub istioctl: Vec<PathBuf>,
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
    /// How the plan and the logs name the base kind config.
    pub fn kind_config_name(&self) -> String {
        match &self.kind_config {
            Some(p) => p.display().to_string(),
            None => "the built-in kind-config.yaml".to_owned(),
        }
    }

    /// One cluster, every single-cluster scenario, exec delivery.
    pub fn single(prefix: &str) -> Self {
        KindRun {
            prefix: prefix.to_owned(),
            clusters: vec!["cluster1".into()],
            scenarios: Scenario::ALL
                .into_iter()
                .filter(|s| !s.is_multicluster())
                .collect(),
            kind_config: None,
            workdir: "$WORKDIR".into(),
            artifacts: "target/meshtrust/artifacts".into(),
            profile: Profile::Demo,
            istioctl: vec!["istioctl".into()],
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
