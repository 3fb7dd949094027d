//! The kind target: [`scenario::Target`](crate::scenario::Target) on real clusters and real
//! Istio, as thin glue over the kube pieces.
//!
//! Clusters are expensive (a kind create plus image pulls is most of a run), so one set of
//! clusters ([`KindClusters`]) serves every scenario of a run, and each scenario gets its own
//! [`KindTarget`] over it. A scenario's logical clusters are placed on the physical ones
//! (`cluster2` on the second, everything else on the first), and `teardown` resets what the
//! scenario used: `istioctl uninstall --purge`, then the namespaces it created (istio-system
//! with the cacerts Secret and any remote secrets, `foo` with the workloads), waiting until they
//! are gone. A scenario that places a second logical cluster on the same physical one (the
//! three `bad-*` clusters of bad-cacerts) resets it the same way in between.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use rustls_pki_types::CertificateDer;

use super::cluster::{ClusterRef, OwnedNamespaces};
use super::config::{KindRun, ProbeDelivery};
use super::error::{KubeError, is_not_found};
use super::istio::{self, CaMode, InstallSpec};
use super::kind::{self, Cleanup, ClusterGuard, ClusterSpec, Subnets};
use super::plugin::{self, ISTIO_NAMESPACE};
use super::probe::{self, ProbeOutput};
use super::process::{self, Cmd};
use super::registry;
use super::tools::{Scope, ToolSearch, Toolbox, preflight, preflight_for};
use super::wait::{self, Check, Patience};
use super::workloads::{self, HTTPBIN_CONTAINER_PORT, HTTPBIN_SERVICE_PORT, MtlsMode};
use crate::mesh::grpc::{self, CaClient};
use crate::pki::KeyAlg;
use crate::scenario::target::{
    App, CaSource, CapturedChain, Handshake, InstallOptions, InstallOutcome, Mode, Outcome, Target,
    TargetError, Transport, UpgradeOptions, WorkloadRef,
};

/// istiod's CA port (ISTIO-FACTS §5).
pub const CA_PORT: u16 = 15012;
/// The agent's requested TTL (`SECRET_TTL`), as the local target asks.
const AGENT_TTL_SECONDS: i64 = 24 * 3600;
/// istiod picks up a replaced Secret once the kubelet has synced the mounted files (up to its
/// sync period, a minute by default) and its file watcher fired.
pub const RELOAD: Patience = Patience::new(Duration::from_secs(180), Duration::from_secs(5));
/// Namespace deletion waits for every pod's termination and every finalizer.
pub const NAMESPACES_GONE: Patience =
    Patience::new(Duration::from_secs(180), Duration::from_secs(2));
/// Remote endpoints appear once istiod has read the other cluster through its remote secret and
/// pushed them to the client's sidecar.
pub const CROSS_CLUSTER: Patience = Patience::new(Duration::from_secs(180), Duration::from_secs(5));
/// After a PeerAuthentication change istiod debounces (100 ms by default, more under load) and
/// pushes new listeners to every sidecar; until the push lands, the old filter chains answer.
pub const POLICY_PUSH: Patience = Patience::new(Duration::from_secs(60), Duration::from_secs(2));
/// What cross-cluster traffic needs on clusters meshtrust did not make.
pub const EXISTING_CLUSTERS_CONNECTED: &str = "on existing clusters meshtrust connects nothing: \
    they must already reach each other (one network, or east-west gateways) and hold each \
    other's remote secrets, as Istio's multicluster install makes them";

/// curl's own budget in the pod, and the exec deadline around it.
const CURL_MAX_TIME: &str = "10";
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// One physical cluster.
pub struct KindCluster {
    pub cluster: ClusterRef,
    pub client: kube::Client,
}

/// The clusters of a run, shared by every scenario's [`KindTarget`]. Dropping the last handle
/// (or [`finish`](Self::finish)) deletes the clusters this run created, unless kept.
pub struct KindClusters {
    pub run: KindRun,
    pub tools: Toolbox,
    pub clusters: Vec<KindCluster>,
    guard: ClusterGuard,
    probe: Vec<u8>,
    _workdir: tempfile::TempDir,
    registry_container: tokio::sync::Mutex<Option<registry::Registry>>,
    /// How long preflight and cluster creation took (the scenarios' phases are in the report).
    pub timings: Vec<(String, Duration)>,
    /// This run created the clusters (kind), rather than attaching to them (kubeconfig).
    created: bool,
}

/// `--istio-version X.Y` against the install-phase istioctl preflight found: `X.Y` must be
/// its release (`1.32` takes `1.32.0` and `1.32.1-rc.0`, not `1.3` for `1.32.0`).
pub fn check_istio_version(want: Option<&str>, tools: &Toolbox) -> Result<(), KubeError> {
    let (Some(want), Some(tool)) = (want, tools.istioctl.first()) else {
        return Ok(());
    };
    let want = want.trim_start_matches('v');
    let have = tool.version.trim_start_matches('v');
    let matches = have == want
        || have
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with(['.', '-', '+']));
    if matches {
        Ok(())
    } else {
        Err(KubeError::IstioVersion {
            want: want.to_owned(),
            path: tool.path.clone(),
            have: tool.version.clone(),
        })
    }
}

impl KindClusters {
    /// Preflight (fails in seconds when a tool is missing), then every cluster in parallel.
    pub async fn start(mut run: KindRun, search: &ToolSearch) -> Result<KindClusters, KubeError> {
        let started = Instant::now();
        let tools = preflight(search).await?;
        check_istio_version(run.expect_istio_version.as_deref(), &tools)?;
        let mut timings = vec![("preflight".to_owned(), started.elapsed())];
        run.istioctl = tools.istioctl.iter().map(|t| t.path.clone()).collect();
        run.istio_versions = tools.istioctl.iter().map(|t| t.version.clone()).collect();
        let probe = probe::read_probe_binary(&run.probe_binary)?;
        let workdir = tempfile::Builder::new()
            .prefix("meshtrust-kind-")
            .tempdir()
            .map_err(KubeError::io("create a temp dir in", std::env::temp_dir()))?;
        run.workdir = workdir.path().to_owned();
        // Each run names its clusters and its artifacts for itself (see `kind::run_prefix`).
        if kind::run_stamp(&run.prefix).is_none() {
            run.prefix = kind::run_prefix(&run.prefix, std::time::SystemTime::now());
        }
        run.artifacts = run_artifacts(&run.artifacts, &run.prefix);
        let kind_bin = tools
            .kind
            .as_ref()
            .map(|t| t.path.clone())
            .unwrap_or_default();
        let guard = ClusterGuard::new(&kind_bin, &run.artifacts, run.keep);
        guard.cleanup_on_signal();
        let specs: Vec<ClusterSpec> = run
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| ClusterSpec {
                cluster: c.clone(),
                index: i + 1,
            })
            .collect();
        let base_config = match &run.kind_config {
            Some(path) => path.clone(),
            None => {
                let path = workdir.path().join("kind-config.yaml");
                std::fs::write(&path, super::config::KIND_CONFIG)
                    .map_err(KubeError::io("write", &path))?;
                path
            }
        };
        let started = Instant::now();
        let created = kind::create_clusters(
            &kind_bin,
            &guard,
            &run.prefix,
            &base_config,
            &specs,
            workdir.path(),
        )
        .await;
        let refs = created.inspect_err(|_| guard.mark_failed())?;
        timings.push(("clusters".to_owned(), started.elapsed()));
        let started = Instant::now();
        preload_images(&tools, &kind_bin, &run).await;
        timings.push(("images".to_owned(), started.elapsed()));
        let mut clusters = Vec::new();
        for r in refs {
            let client = r.client().await.inspect_err(|_| guard.mark_failed())?;
            clusters.push(KindCluster { cluster: r, client });
        }
        Ok(KindClusters {
            run,
            tools,
            clusters,
            guard,
            probe,
            _workdir: workdir,
            registry_container: tokio::sync::Mutex::new(None),
            timings,
            created: true,
        })
    }

    /// Target `kubeconfig`: existing clusters, by context. Needs only istioctl; the guard owns
    /// no cluster, and each scenario deletes only the namespaces it created.
    pub async fn attach(
        mut run: KindRun,
        search: &ToolSearch,
        clusters: Vec<ClusterRef>,
    ) -> Result<KindClusters, KubeError> {
        let started = Instant::now();
        let tools = preflight_for(Scope::Kubeconfig, search).await?;
        check_istio_version(run.expect_istio_version.as_deref(), &tools)?;
        let timings = vec![("preflight".to_owned(), started.elapsed())];
        run.istioctl = tools.istioctl.iter().map(|t| t.path.clone()).collect();
        run.clusters = clusters.iter().map(|c| c.cluster.clone()).collect();
        let probe = probe::read_probe_binary(&run.probe_binary)?;
        let workdir = tempfile::Builder::new()
            .prefix("meshtrust-kubeconfig-")
            .tempdir()
            .map_err(KubeError::io("create a temp dir in", std::env::temp_dir()))?;
        run.workdir = workdir.path().to_owned();
        run.artifacts = run_artifacts(&run.artifacts, &run.prefix);
        // No cluster is adopted: this guard deletes nothing.
        let guard = ClusterGuard::new("kind", &run.artifacts, true);
        let mut attached = Vec::new();
        for r in clusters {
            let client = r.client().await?;
            attached.push(KindCluster { cluster: r, client });
        }
        Ok(KindClusters {
            run,
            tools,
            clusters: attached,
            guard,
            probe,
            _workdir: workdir,
            registry_container: tokio::sync::Mutex::new(None),
            timings,
            created: false,
        })
    }

    /// Marks the run failed: `kind export logs` runs before the clusters go.
    pub fn failed(&self) {
        self.guard.mark_failed();
    }

    /// After a failure, with kubectl: `<dir>/<cluster>-pods-events.txt` per cluster (`dir` is
    /// the failed scenario's own directory under the run's). Best effort: a dump that fails is
    /// logged, never an error of the run.
    pub async fn dump_pods(&self, dir: &Path) {
        let Some(kubectl) = &self.tools.kubectl else {
            return;
        };
        for c in &self.clusters {
            let file = dir.join(format!("{}-pods-events.txt", c.cluster.cluster));
            let dumped = process::run(&kubectl_dump_cmd(&kubectl.path, &c.cluster)).await;
            let written = match dumped {
                Ok(out) => std::fs::create_dir_all(dir)
                    .and_then(|()| std::fs::write(&file, out.stdout))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = written {
                tracing::warn!(cluster = %c.cluster.cluster, "no pod dump: {e}");
            }
        }
    }

    /// Exports logs (after a failure) and deletes the clusters this run created, unless kept.
    /// Blocking.
    pub fn finish(&self) -> Cleanup {
        self.guard.cleanup()
    }

    /// docker and kind, which only the kind target has.
    fn kind_tools(&self, what: &str) -> Result<(PathBuf, PathBuf), KubeError> {
        match (&self.tools.docker, &self.tools.kind) {
            (Some(d), Some(k)) => Ok((d.path.clone(), k.path.clone())),
            _ => Err(KubeError::Workload {
                what: what.to_owned(),
                namespace: "-".into(),
                reason: "it needs docker and kind, which target `kubeconfig` does not use \
                         (hint: use `--target kind`)"
                    .into(),
            }),
        }
    }

    /// The istioctl of `phase` (0: install, 1: upgrade). With one istioctl the upgrade installs
    /// that same one again, and says so.
    fn istioctl(&self, phase: usize) -> Result<PathBuf, KubeError> {
        if phase > 0 && self.tools.istioctl.len() == 1 {
            tracing::warn!(
                "one istioctl: the upgrade installs `{}` again over itself (hint: `--istioctl A --istioctl B` for an upgrade from A to B)",
                self.tools.istioctl[0].path.display()
            );
        }
        self.tools
            .istioctl
            .get(phase)
            .or_else(|| self.tools.istioctl.last())
            .map(|t| t.path.clone())
            .ok_or_else(|| KubeError::Workload {
                what: format!("istioctl for phase {phase}"),
                namespace: "-".into(),
                reason:
                    "not given (hint: pass `--istioctl PATH` once per phase: install, then upgrade)"
                        .into(),
            })
    }

    /// Serves the probe image to `kind_name`'s node: the local registry (started once per
    /// run), the node wired to it, the image built and pushed; `kind load docker-image` if the
    /// registry cannot be had or the push fails. The order is the plan's.
    async fn probe_image(&self, kind_name: &str) -> Result<String, KubeError> {
        let (docker, kind_bin) = self.kind_tools("the probe image (distroless proxy)")?;
        let image = registry::probe_image("dev");
        let mut wired = {
            let mut reg = self.registry_container.lock().await;
            if reg.is_none() {
                *reg = registry::start()
                    .await
                    .inspect_err(|e| {
                        tracing::warn!("{e}; falling back to `kind load docker-image`")
                    })
                    .ok();
            }
            reg.is_some()
        };
        if wired {
            for cmd in registry::wire_node_cmds(&docker, &kind::control_plane(kind_name)) {
                if let Err(e) = process::run(&cmd).await {
                    tracing::warn!("{e}");
                    wired = false;
                    break;
                }
            }
        }
        let context = self.run.workdir.join("probe-image");
        std::fs::create_dir_all(&context).map_err(KubeError::io("create", &context))?;
        registry::write_context(&context, &self.probe)?;
        let [build, push] = registry::build_and_push_cmds(&docker, &context, &image);
        process::run(&build).await?;
        let pushed = wired
            && process::run(&push)
                .await
                .inspect_err(|e| tracing::warn!("{e}"))
                .is_ok();
        if !pushed {
            process::run(&kind::load_image_cmd(&kind_bin, &image, kind_name)).await?;
        }
        Ok(image)
    }
}

/// Pulls every image of the run once on the host and loads it into every node. Best effort:
/// an image that cannot be had here (a dev build's version tag, a registry that is down) is
/// said on stderr and left to the node to pull, which fails the scenario with the pod's own
/// event if it cannot either.
async fn preload_images(tools: &Toolbox, kind_bin: &Path, run: &KindRun) {
    let Some(docker) = &tools.docker else { return };
    let mut images = kind::run_images(
        &run.istio_versions,
        &[workloads::HTTPBIN_YAML, workloads::SLEEP_YAML],
    );
    let mut pulled = Vec::new();
    for image in images.drain(..) {
        match process::run(&kind::pull_cmd(&docker.path, &image)).await {
            Ok(_) => pulled.push(image),
            Err(e) => {
                crate::say!("meshtrust: not preloading `{image}`; the nodes will pull it: {e}")
            }
        }
    }
    if pulled.is_empty() {
        return;
    }
    for c in &run.clusters {
        let name = kind::cluster_name(&run.prefix, c);
        if let Err(e) = process::run(&kind::load_images_cmd(kind_bin, &pulled, &name)).await {
            crate::say!("meshtrust: the nodes will pull the images themselves: {e}");
        }
    }
}

/// What one scenario did to one physical cluster.
#[derive(Default)]
struct SlotState {
    /// The logical cluster placed here.
    occupant: Option<String>,
    namespaces: OwnedNamespaces,
    /// The cacerts Secret was applied (deleted at reset if istio-system was not ours).
    plugged: bool,
    installed: bool,
    trust_domain: Option<String>,
    deployed: BTreeSet<(String, String)>,
}

/// One scenario's view of the run's clusters.
pub struct KindTarget {
    shared: Arc<KindClusters>,
    slots: Vec<SlotState>,
    /// Routes and remote secrets, made on the first cross-cluster request.
    connected: tokio::sync::OnceCell<()>,
    /// PeerAuthentications applied and not yet seen in effect, by (slot, namespace): the next
    /// request into that namespace polls until its outcome is what the mode makes of it.
    policy_pending: std::sync::Mutex<BTreeMap<(usize, String), Mode>>,
}

impl KindTarget {
    pub fn new(shared: Arc<KindClusters>) -> KindTarget {
        let slots = shared
            .clusters
            .iter()
            .map(|_| SlotState::default())
            .collect();
        KindTarget {
            shared,
            slots,
            connected: tokio::sync::OnceCell::new(),
            policy_pending: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The physical cluster a logical one is placed on, if it has been.
    fn slot(&self, logical: &str) -> Result<usize, TargetError> {
        self.slots
            .iter()
            .position(|s| s.occupant.as_deref() == Some(logical))
            .ok_or_else(|| TargetError::UnknownCluster(logical.to_owned()))
    }

    fn client(&self, slot: usize) -> &kube::Client {
        &self.shared.clusters[slot].client
    }

    /// Places `logical` on its physical cluster, resetting it first if another logical cluster
    /// of this scenario is there.
    async fn place(&mut self, logical: &str) -> Result<usize, TargetError> {
        if let Ok(i) = self.slot(logical) {
            return Ok(i);
        }
        let physical: Vec<String> = self
            .shared
            .clusters
            .iter()
            .map(|c| c.cluster.cluster.clone())
            .collect();
        let i = placement(logical, &physical).ok_or_else(|| TargetError::Backend {
            what: format!("place cluster `{logical}`"),
            cause: "this run has no clusters".into(),
        })?;
        if self.slots[i].occupant.is_some() {
            self.reset(i).await?;
        }
        self.slots[i].occupant = Some(logical.to_owned());
        Ok(i)
    }

    /// Uninstalls Istio and deletes what this scenario created on physical cluster `i`.
    async fn reset(&mut self, i: usize) -> Result<(), TargetError> {
        let client = self.client(i).clone();
        let cluster = self.shared.clusters[i].cluster.clone();
        let slot = std::mem::take(&mut self.slots[i]);
        if let Ok(mut pending) = self.policy_pending.lock() {
            pending.retain(|(slot, _), _| *slot != i);
        }
        let mut namespaces = slot.namespaces;
        if slot.installed {
            let istioctl = self.shared.istioctl(0).map_err(backend("reset"))?;
            process::run(&istio::uninstall_cmd(&istioctl, &cluster))
                .await
                .map_err(|e| backend("reset")(e.into()))?;
        }
        let mut owned: Vec<String> = namespaces.names().to_vec();
        // istioctl creates istio-system when no cacerts were plugged (default-ca), and leaves
        // it behind with istiod's self-signed root (`istio-ca-secret`) in it: on clusters this
        // run made, it goes too, so the next scenario's istiod cannot find that root.
        let mut extra = Vec::new();
        if self.shared.created && slot.installed && !owned.iter().any(|n| n == ISTIO_NAMESPACE) {
            extra.push(ISTIO_NAMESPACE.to_owned());
        }
        if slot.plugged && !owned.iter().any(|n| n == ISTIO_NAMESPACE) {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
            match secrets.delete("cacerts", &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(backend("reset")(KubeError::api(
                        "delete secret `istio-system/cacerts`",
                    )(e)));
                }
            }
        }
        let mut problems = namespaces.delete_all(&client).await;
        let api: Api<Namespace> = Api::all(client.clone());
        for ns in &extra {
            match api.delete(ns, &DeleteParams::background()).await {
                Ok(_) => owned.push(ns.clone()),
                Err(e) if is_not_found(&e) => {}
                Err(e) => problems.push(format!("cannot delete namespace `{ns}`: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(TargetError::Backend {
                what: format!("reset cluster `{}`", cluster.cluster),
                cause: problems.join("; ").into(),
            });
        }
        wait_namespaces_gone(&client, &owned)
            .await
            .map_err(backend("reset"))?;
        Ok(())
    }

    /// istioctl install (phase 0), upgrade (phase 1) or a canary revision on slot `i`,
    /// watching the istiod of the revision it installs.
    async fn install_with(
        &mut self,
        i: usize,
        istioctl: &Path,
        step: InstallStep<'_>,
    ) -> Result<InstallOutcome, TargetError> {
        let r = &self.shared.clusters[i].cluster;
        let spec = install_spec(
            &self.shared.run,
            r,
            i,
            self.slots[i].trust_domain.clone(),
            step,
        );
        let cmd = match step {
            InstallStep::Upgrade => istio::upgrade_cmd(istioctl, r, &spec),
            InstallStep::Install | InstallStep::Revision(_) => {
                istio::install_cmd(istioctl, r, &spec)
            }
        };
        self.slots[i].installed = true;
        let what = match step {
            InstallStep::Install => "install",
            InstallStep::Upgrade => "upgrade",
            InstallStep::Revision(_) => "install a revision",
        };
        install_observed(&cmd, self.client(i), spec.revision())
            .await
            .map_err(backend(what))
    }

    /// The upgrade's istioctl: the second given, or the only one (which then says so).
    fn upgrade_istioctl(&self) -> Result<PathBuf, TargetError> {
        self.shared
            .istioctl(1)
            .map_err(backend("install a revision"))
    }

    /// Makes the clusters reach each other: routes between the kind nodes' pod networks
    /// (Istio's own kind provisioner does the same), and each cluster's remote secret in the
    /// others, so each istiod discovers the others' endpoints.
    async fn connect(&self) -> Result<(), KubeError> {
        let (docker, _) = self.shared.kind_tools(
            "cross-cluster traffic (on existing clusters, connect them yourself: one network, \
             remote secrets)",
        )?;
        let run = &self.shared.run;
        let names: Vec<String> = self
            .shared
            .clusters
            .iter()
            .map(|c| kind::cluster_name(&run.prefix, &c.cluster.cluster))
            .collect();
        let mut ips = Vec::new();
        for name in &names {
            let out = process::run(&kind::node_ip_cmd(&docker, &kind::control_plane(name))).await?;
            ips.push(out.stdout.trim().to_owned());
        }
        for (i, name) in names.iter().enumerate() {
            for (j, ip) in ips.iter().enumerate() {
                if let (true, Some(s)) = (i != j, Subnets::for_cluster(j + 1)) {
                    let node = kind::control_plane(name);
                    process::run(&kind::route_cmd(&docker, &node, &s.pod, ip)).await?;
                }
            }
        }
        let istioctl = self.shared.istioctl(0)?;
        for (i, name) in names.iter().enumerate() {
            let server = format!("https://{}:6443", kind::control_plane(name));
            let secret = process::run(&istio::create_remote_secret_cmd(
                &istioctl,
                &self.shared.clusters[i].cluster,
                &server,
            ))
            .await?;
            let objects =
                workloads::parse_manifest("istioctl create-remote-secret output", &secret.stdout)?;
            for (j, other) in self.shared.clusters.iter().enumerate() {
                if i != j {
                    workloads::apply(&other.client, ISTIO_NAMESPACE, &objects).await?;
                }
            }
        }
        Ok(())
    }

    /// sleep@from -> `<to>-<cluster>` across clusters, polled until the other cluster's
    /// endpoints have reached the client's sidecar.
    async fn request_across(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        path: &str,
    ) -> Result<Outcome, TargetError> {
        let (fi, ti) = (self.slot(&from.cluster)?, self.slot(&to.cluster)?);
        // Clusters this run made are connected here; existing ones (`--target kubeconfig`) are
        // the user's to connect (their nodes are not kind's, their network is theirs).
        if self.shared.created {
            self.connected
                .get_or_try_init(|| self.connect())
                .await
                .map_err(backend("connect the clusters"))?;
        }
        let home = workloads::cluster_alias_service(&to.name, &to.cluster, &to.namespace, true);
        let away = workloads::cluster_alias_service(&to.name, &to.cluster, &to.namespace, false);
        workloads::apply(self.client(ti), &to.namespace, &[home])
            .await
            .map_err(backend("expose the server"))?;
        workloads::apply(self.client(fi), &to.namespace, &[away])
            .await
            .map_err(backend("expose the server"))?;
        let url = format!(
            "http://{}-{}.{}:{HTTPBIN_SERVICE_PORT}{path}",
            to.name, to.cluster, to.namespace
        );
        let client = self.client(fi).clone();
        let waited = wait::poll(
            format!("{to}'s endpoints to reach {from}'s sidecar ({url})"),
            CROSS_CLUSTER.scaled(),
            || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    match curl_in(&client, from, &from.name, &url).await {
                        Ok(Ok(outcome)) if not_discovered_yet(&outcome) => {
                            Check::NotYet(format!("{outcome:?}"))
                        }
                        Ok(Ok(outcome)) => Check::Done(Ok(outcome)),
                        // DNS of the alias Service in the client's cluster: not there yet.
                        Ok(Err(e)) if e.contains("exited 6") => Check::NotYet(e),
                        Ok(Err(e)) => Check::Done(Err(e)),
                        Err(e) => Check::NotYet(e.to_string()),
                    }
                }
            },
        )
        .await
        .map_err(|e| match self.shared.created {
            true => backend("cross-cluster request")(e.into()),
            false => TargetError::Backend {
                what: "cross-cluster request".into(),
                cause: format!("{e} (hint: {EXISTING_CLUSTERS_CONNECTED})").into(),
            },
        })?;
        waited.map_err(|e| TargetError::Backend {
            what: format!("request {from} -> {to}"),
            cause: e.into(),
        })
    }

    /// A certificate from istiod's CA API, through a port-forward to 15012.
    async fn issue(
        &self,
        i: usize,
        namespace: &str,
        sa: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        let client = self.client(i).clone();
        let logical = self.slots[i].occupant.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
        let istiod = match workloads::pod_ip(&client, ISTIO_NAMESPACE, "app=istiod").await {
            Ok((name, _)) => name,
            Err(e) => {
                return Err(
                    match istio::refusal_now(&pods, istio::DEFAULT_REVISION).await {
                        Some((reason, _)) => TargetError::IstiodDown {
                            cluster: logical,
                            reason,
                        },
                        None => backend("find a Ready istiod")(e),
                    },
                );
            }
        };
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec!["istio-ca".into()]),
                expiration_seconds: Some(600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let token = sas
            .create_token_request(sa, &PostParams::default(), &request)
            .await
            .map_err(|e| {
                backend("issue a workload certificate")(KubeError::api(format!(
                    "request a token for `{namespace}/{sa}`"
                ))(e))
            })?
            .status
            .and_then(|s| s.token)
            .unwrap_or_default();
        let root_pem = plugin::root_configmap(&client, ISTIO_NAMESPACE)
            .await
            .map_err(backend("read istio-ca-root-cert"))?
            .ok_or_else(|| TargetError::Backend {
                what: "issue a workload certificate".into(),
                cause: "istiod has not written `istio-system/istio-ca-root-cert` yet".into(),
            })?;
        let roots = crate::pki::parse_certs(root_pem.as_bytes(), Path::new("istio-ca-root-cert"))
            .map_err(|source| TargetError::Bundle {
            dir: "istio-system/istio-ca-root-cert".into(),
            cause: source,
        })?;
        let forward = Forward::start(pods, istiod, CA_PORT)
            .await
            .map_err(|source| TargetError::Io {
                what: "listen for the port-forward to istiod".into(),
                cause: source,
            })?;
        let key = tokio::task::spawn_blocking(|| KeyAlg::Rsa2048.generate())
            .await
            .expect("key generation does not panic")
            .map_err(|source| TargetError::Bundle {
                dir: "<workload key>".into(),
                cause: source,
            })?;
        let td = self.slots[i]
            .trust_domain
            .clone()
            .unwrap_or_else(|| "cluster.local".into());
        let identity = format!("spiffe://{td}/ns/{namespace}/sa/{sa}");
        let csr = grpc::agent_csr(&key, &identity).map_err(|e| TargetError::Signing {
            identity: identity.clone(),
            reason: format!("cannot make a CSR: {e}"),
        })?;
        let mut ca =
            CaClient::connect(forward.addr, &roots)
                .await
                .map_err(|e| TargetError::Backend {
                    what: format!("connect to istiod's CA on {CA_PORT} through a port-forward"),
                    cause: Box::new(e),
                })?;
        let cluster_id = &self.shared.clusters[i].cluster.cluster;
        let pems = ca
            .create_certificate_in(&csr, AGENT_TTL_SECONDS, Some(&token), Some(cluster_id))
            .await
            .map_err(|status| TargetError::Signing {
                identity: identity.clone(),
                reason: status.message().to_owned(),
            })?;
        crate::pki::parse_certs(pems.concat().as_bytes(), Path::new("<CA response>")).map_err(
            |source| TargetError::Bundle {
                dir: "<CA response>".into(),
                cause: source,
            },
        )
    }

    /// The first workload this scenario deployed on slot `i` (namespace, service account), or
    /// istiod's own service account.
    fn some_identity(&self, i: usize) -> (String, String) {
        self.slots[i]
            .deployed
            .iter()
            .next()
            .cloned()
            .unwrap_or_else(|| (ISTIO_NAMESPACE.into(), "istiod".into()))
    }
}

/// Where a logical cluster goes: the physical cluster of the same name, else the first.
pub fn placement(logical: &str, physical: &[String]) -> Option<usize> {
    physical
        .iter()
        .position(|p| p == logical)
        .or((!physical.is_empty()).then_some(0))
}

/// Which install [`KindTarget::install_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStep<'a> {
    /// The first control plane (the default revision).
    Install,
    /// The in-place upgrade over it.
    Upgrade,
    /// A second control plane beside it (`--revision`): the canary of a canary upgrade. It
    /// installs istiod only (profile `minimal`): gateways stay with the first control plane, as
    /// Istio's canary upgrade guide has it.
    Revision(&'a str),
}

/// The install of cluster `r` (slot `i`) for `step`: the plan and the run make it here, so that
/// they cannot differ.
pub fn install_spec(
    run: &KindRun,
    r: &ClusterRef,
    i: usize,
    trust_domain: Option<String>,
    step: InstallStep<'_>,
) -> InstallSpec {
    let (profile, revision) = match step {
        InstallStep::Revision(rev) => (istio::Profile::Minimal, Some(rev.to_owned())),
        InstallStep::Install | InstallStep::Upgrade => (run.profile, None),
    };
    InstallSpec {
        profile,
        cluster_name: r.cluster.clone(),
        network: KindRun::network(i),
        trust_domain,
        multi_root: false,
        revision,
    }
}

/// The kind install does not set `ISTIO_MULTIROOT_MESH` yet: asked for, it is refused.
pub(crate) fn refuse_multi_root(options: &InstallOptions, what: &str) -> Result<(), TargetError> {
    if options.multi_root {
        return Err(TargetError::Backend {
            what: what.into(),
            cause: "ISTIO_MULTIROOT_MESH is not wired into the kind install yet".into(),
        });
    }
    Ok(())
}

fn backend(what: &str) -> impl FnOnce(KubeError) -> TargetError {
    let what = what.to_owned();
    move |e| TargetError::Backend {
        what,
        cause: Box::new(e),
    }
}

/// Runs istioctl while watching the istiod of `revision`: a refusal (istiod crash-looping with
/// an error in its log) ends the install at once, rather than after istioctl's readiness
/// timeout; otherwise that istiod must become Ready and its log must name its CA.
pub async fn install_observed(
    cmd: &Cmd,
    client: &kube::Client,
    revision: &str,
) -> Result<InstallOutcome, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    let refused = tokio::select! {
        ran = process::run(cmd) => match ran {
            Ok(_) => None,
            Err(e) => match istio::refusal_now(&pods, revision).await {
                Some(r) => Some(r),
                None => return Err(e.into()),
            },
        },
        r = istio::watch_for_refusal(client, revision) => Some(r),
    };
    if let Some((reason, log)) = refused {
        return Ok(InstallOutcome::Refused { reason, log });
    }
    istio::wait_istiod(client, revision).await?;
    let log = istio::istiod_log(client, revision).await?;
    install_outcome(&log)
}

/// What a Ready istiod's log says about its CA.
pub fn install_outcome(log: &str) -> Result<InstallOutcome, KubeError> {
    let ca = match CaMode::detect(log) {
        Some(CaMode::PluggedIn) => CaSource::PluggedIn,
        Some(CaMode::SelfSigned) => CaSource::SelfSigned,
        None => {
            return Err(KubeError::Workload {
                what: "istiod".into(),
                namespace: ISTIO_NAMESPACE.into(),
                reason: format!(
                    "it is Ready but its log names neither `{}` nor `{}`",
                    istio::PLUGGED_IN_LINE,
                    istio::SELF_SIGNED_LINE
                ),
            });
        }
    };
    Ok(InstallOutcome::Installed {
        ca,
        log: istio::ca_log_lines(log),
    })
}

async fn wait_namespaces_gone(client: &kube::Client, names: &[String]) -> Result<(), KubeError> {
    if names.is_empty() {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    wait::poll(
        format!("namespaces {} to be deleted", names.join(", ")),
        NAMESPACES_GONE.scaled(),
        || {
            let api = api.clone();
            async move {
                let mut left = Vec::new();
                for n in names {
                    match api.get_opt(n).await {
                        Ok(None) => {}
                        Ok(Some(_)) => left.push(n.clone()),
                        Err(e) => left.push(format!("{n} (api error: {e})")),
                    }
                }
                if left.is_empty() {
                    Check::Done(())
                } else {
                    Check::NotYet(format!("still there: {}", left.join(", ")))
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// A local listener whose every connection is a kube-rs port-forward to `pod:port`: the CA
/// client needs an address, the API gives a stream per forward.
struct Forward {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Forward {
    async fn start(pods: Api<Pod>, pod: String, port: u16) -> std::io::Result<Forward> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (pods, pod) = (pods.clone(), pod.clone());
                tokio::spawn(async move {
                    let mut forwarder = match pods.portforward(&pod, &[port]).await {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::warn!("port-forward to `{pod}:{port}`: {e}");
                            return;
                        }
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
                    }
                    let _ = forwarder.join().await;
                });
            }
        });
        Ok(Forward { addr, task })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// curl in `container` of `from`'s pod: the body, then the status code on a line of its own.
pub fn curl_argv(url: &str) -> Vec<String> {
    [
        "curl",
        "-sS",
        "--max-time",
        CURL_MAX_TIME,
        "-w",
        "\n%{http_code}",
        url,
    ]
    .map(String::from)
    .to_vec()
}

/// What curl's exit code and output mean. `Err` when the request could not be made at all
/// (curl missing, a bad URL, a name that does not resolve): that is not the server's answer.
pub fn curl_outcome(code: i32, stdout: &str, stderr: &str) -> Result<Outcome, String> {
    match code {
        0 => {
            let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", stdout));
            let status: u16 = status
                .trim()
                .parse()
                .map_err(|_| format!("curl printed no status code: `{}`", stdout.trim()))?;
            // The client's sidecar answers 503 itself when it could not connect upstream: a
            // refused or failed mTLS handshake shows up here, not as a curl error.
            if status == 503
                && (body.contains("upstream connect error") || body.contains("no healthy upstream"))
            {
                return Ok(Outcome::Refused {
                    reason: format!("HTTP 503 from the client's sidecar: {}", body.trim()),
                });
            }
            Ok(Outcome::Response {
                status,
                body: body.as_bytes().to_vec(),
            })
        }
        // connect refused, TLS error, empty reply, recv failure (reset), send failure, timeout.
        7 | 16 | 28 | 35 | 52 | 55 | 56 => Ok(Outcome::Refused {
            reason: format!("curl exited {code}: {}", stderr.trim()),
        }),
        _ => Err(format!("curl exited {code}: {}", stderr.trim())),
    }
}

/// Whether `outcome` is what `mode` makes of a request over `transport`: STRICT refuses
/// plaintext, PERMISSIVE answers it, mTLS is answered under both.
pub fn in_effect(mode: Mode, transport: Transport, outcome: &Outcome) -> bool {
    match (transport, mode) {
        (Transport::Plaintext, Mode::Strict) => matches!(outcome, Outcome::Refused { .. }),
        (Transport::Plaintext, Mode::Permissive) | (Transport::Mtls, _) => {
            matches!(outcome, Outcome::Response { .. })
        }
    }
}

/// The first observation after a policy change that shows the policy in effect, polled up to
/// the deadline. When it never does, the LAST outcome seen is returned as data (the scenario
/// judges it: a plaintext 200 under STRICT fails there, with this outcome as the reason) and
/// the wait is logged. An observation that fails outright ends the poll with its error.
pub async fn observe_after_policy<F, Fut>(
    what: &str,
    mode: Mode,
    transport: Transport,
    patience: Patience,
    mut observe: F,
) -> Result<Outcome, TargetError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome, TargetError>>,
{
    let last: std::sync::Mutex<Option<Outcome>> = std::sync::Mutex::new(None);
    let failed: std::sync::Mutex<Option<TargetError>> = std::sync::Mutex::new(None);
    let waited = wait::poll(
        format!("{what}: the PeerAuthentication to reach the sidecars"),
        patience,
        || {
            let look = observe();
            let (last, failed) = (&last, &failed);
            async move {
                match look.await {
                    Ok(outcome) if in_effect(mode, transport, &outcome) => Check::Done(outcome),
                    Ok(outcome) => {
                        let seen = format!("{outcome:?}");
                        if let Ok(mut l) = last.lock() {
                            *l = Some(outcome);
                        }
                        Check::NotYet(seen)
                    }
                    Err(e) => {
                        let seen = e.to_string();
                        if let Ok(mut f) = failed.lock() {
                            *f = Some(e);
                        }
                        // Ends the poll at once: an error is not a policy still on its way.
                        Check::Done(Outcome::Refused { reason: seen })
                    }
                }
            }
        },
    )
    .await;
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    match waited {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            tracing::warn!("{e}");
            last.into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| TargetError::Backend {
                    what: what.to_owned(),
                    cause: Box::new(e),
                })
        }
    }
}

/// Before remote endpoints arrive, the client's sidecar has none for the name.
fn not_discovered_yet(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Refused { reason } if reason.contains("no healthy upstream"))
}

/// Runs curl in `container` of `from`'s (first Ready) pod.
async fn curl_in(
    client: &kube::Client,
    from: &WorkloadRef,
    container: &str,
    url: &str,
) -> Result<Result<Outcome, String>, KubeError> {
    let (pod, _) =
        workloads::pod_ip(client, &from.namespace, &format!("app={}", from.name)).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &from.namespace);
    let out = probe::exec(&pods, &pod, container, curl_argv(url), None, EXEC_TIMEOUT).await?;
    Ok(curl_outcome(out.code, &out.stdout, &out.stderr))
}

/// The probe's output as the scenarios' [`CapturedChain`].
pub fn captured_chain(
    out: &ProbeOutput,
    from: &WorkloadRef,
    to: &WorkloadRef,
) -> Result<CapturedChain, KubeError> {
    Ok(CapturedChain {
        chain: out
            .chain_der()?
            .into_iter()
            .map(CertificateDer::from)
            .collect(),
        server: to.clone(),
        client: from.clone(),
        protocol: Some(out.tls_version.clone()),
        alpn: out.alpn.as_ref().map(|a| a.as_bytes().to_vec()),
        handshake: match &out.error_after_chain {
            Some(e) => Handshake::Failed(e.clone()),
            None => Handshake::Completed,
        },
    })
}

fn mtls_mode(mode: Mode) -> MtlsMode {
    match mode {
        Mode::Strict => MtlsMode::Strict,
        Mode::Permissive => MtlsMode::Permissive,
    }
}

#[async_trait]
impl Target for KindTarget {
    /// The install istioctl's release, as preflight read it.
    fn istio_version(&self) -> crate::istio::IstioVersion {
        self.shared
            .tools
            .istioctl
            .first()
            .and_then(|t| t.version.parse().ok())
            .unwrap_or(crate::istio::IstioVersion::LATEST)
    }

    fn name(&self) -> &'static str {
        "kind"
    }

    async fn plug_in(&mut self, cluster: &str, bundle: Option<&Path>) -> Result<(), TargetError> {
        let i = self.place(cluster).await?;
        let Some(dir) = bundle else {
            return Ok(());
        };
        let client = self.client(i).clone();
        let slot = &mut self.slots[i];
        plugin::plug_in(&client, &mut slot.namespaces, dir)
            .await
            .map_err(backend("plug in cacerts"))?;
        slot.plugged = true;
        Ok(())
    }

    async fn install(
        &mut self,
        cluster: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let i = self.place(cluster).await?;
        refuse_multi_root(options, "install")?;
        self.slots[i].trust_domain =
            (options.trust_domain != "cluster.local").then(|| options.trust_domain.clone());
        let istioctl = self.shared.istioctl(0).map_err(backend("install"))?;
        self.install_with(i, &istioctl, InstallStep::Install).await
    }

    async fn deploy(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        let i = self.slot(cluster)?;
        let client = self.client(i).clone();
        let slot = &mut self.slots[i];
        workloads::deploy_app(&client, &mut slot.namespaces, namespace, app.name())
            .await
            .map_err(backend(&format!("deploy {app}")))?;
        slot.deployed
            .insert((namespace.to_owned(), app.name().to_owned()));
        Ok(())
    }

    async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        namespace: &str,
        mode: Mode,
    ) -> Result<(), TargetError> {
        let i = self.slot(cluster)?;
        workloads::set_peer_authentication_in(self.client(i), namespace, mtls_mode(mode))
            .await
            .map_err(backend("apply the PeerAuthentication"))?;
        if let Ok(mut pending) = self.policy_pending.lock() {
            pending.insert((i, namespace.to_owned()), mode);
        }
        Ok(())
    }

    async fn capture_chain(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
    ) -> Result<CapturedChain, TargetError> {
        if from.cluster != to.cluster {
            return Err(TargetError::Backend {
                what: format!("capture {to} from beside {from}"),
                cause: "the in-pod probe dials a pod IP in its own cluster only".into(),
            });
        }
        let i = self.slot(&from.cluster)?;
        let client = self.client(i).clone();
        let capture = async {
            let (_, ip) =
                workloads::pod_ip(&client, &to.namespace, &format!("app={}", to.name)).await?;
            let (pod, _) =
                workloads::pod_ip(&client, &from.namespace, &format!("app={}", from.name)).await?;
            let addr = format!("{ip}:{HTTPBIN_CONTAINER_PORT}");
            let pods: Api<Pod> = Api::namespaced(client.clone(), &from.namespace);
            let use_exec = self.shared.run.delivery == ProbeDelivery::Exec
                && probe::proxy_has_shell(&pods, &pod).await?;
            if use_exec {
                return probe::capture_via_exec(
                    &client,
                    &from.namespace,
                    &pod,
                    &self.shared.probe,
                    &addr,
                )
                .await;
            }
            let kind_name = kind::cluster_name(
                &self.shared.run.prefix,
                &self.shared.clusters[i].cluster.cluster,
            );
            let image = self.shared.probe_image(&kind_name).await?;
            let name = format!("meshtrust-probe-{}", std::process::id());
            probe::capture_via_ephemeral(&client, &from.namespace, &pod, &image, &addr, &name).await
        };
        let out = capture.await.map_err(backend("capture the chain"))?;
        captured_chain(&out, from, to).map_err(backend("read the probe's chain"))
    }

    async fn request(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        transport: Transport,
        path: &str,
    ) -> Result<Outcome, TargetError> {
        if from.cluster != to.cluster {
            if transport == Transport::Plaintext {
                return Err(TargetError::Backend {
                    what: format!("plaintext request {from} -> {to}"),
                    cause: "plaintext requests go to a pod IP in the client's own cluster only"
                        .into(),
                });
            }
            return self.request_across(from, to, path).await;
        }
        let i = self.slot(&from.cluster)?;
        let client = self.client(i);
        let (container, url) = match transport {
            // Through sleep's sidecar: mTLS with sleep's certificate.
            Transport::Mtls => (
                from.name.clone(),
                format!(
                    "http://{}.{}:{HTTPBIN_SERVICE_PORT}{path}",
                    to.name, to.namespace
                ),
            ),
            // From istio-proxy (UID 1337, not captured outbound) straight to the pod: plaintext
            // into httpbin's inbound capture, which STRICT refuses and PERMISSIVE accepts.
            Transport::Plaintext => {
                let (_, ip) = workloads::pod_ip(client, &to.namespace, &format!("app={}", to.name))
                    .await
                    .map_err(backend("find the server pod"))?;
                (
                    probe::PROXY_CONTAINER.to_owned(),
                    format!("http://{ip}:{HTTPBIN_CONTAINER_PORT}{path}"),
                )
            }
        };
        let once = || async {
            curl_in(client, from, &container, &url)
                .await
                .map_err(backend(&format!("request {from} -> {to}")))?
                .map_err(|e| TargetError::Backend {
                    what: format!("request {from} -> {to} with curl in container `{container}`"),
                    cause: e.into(),
                })
        };
        let key = (i, to.namespace.clone());
        let pending = self
            .policy_pending
            .lock()
            .ok()
            .and_then(|p| p.get(&key).copied());
        let Some(mode) = pending else {
            return once().await;
        };
        let outcome = observe_after_policy(
            &format!("{transport:?} {from} -> {to} under {mode:?}"),
            mode,
            transport,
            POLICY_PUSH.scaled(),
            once,
        )
        .await?;
        // A plaintext request shows whether the push landed (an mTLS one is answered under
        // both modes): once it has been seen in effect, or given up on (said in the log),
        // later requests go out once.
        if transport == Transport::Plaintext
            && let Ok(mut p) = self.policy_pending.lock()
        {
            p.remove(&key);
        }
        Ok(outcome)
    }

    /// Through the real CA API: a TokenRequest for the service account (audience `istio-ca`,
    /// as the agent's projected token), a kube-rs port-forward to istiod:15012, and the same
    /// gRPC client and CSR as the local target's agent.
    async fn issue_workload_certificate(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        let i = self.slot(cluster)?;
        self.issue(i, namespace, service_account).await
    }

    async fn root_configmap(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        let i = self.slot(cluster)?;
        Ok(plugin::root_configmap(self.client(i), namespace)
            .await
            .map_err(backend("read istio-ca-root-cert"))?
            .map(String::into_bytes))
    }

    /// Replaces the Secret, then waits until istiod signs with the new intermediate (the
    /// kubelet's secret sync plus istiod's file watch).
    async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<(), TargetError> {
        let i = self.slot(cluster)?;
        let secret = plugin::cacerts_secret(dir).map_err(backend("reload cacerts"))?;
        plugin::apply_secret(self.client(i), &secret)
            .await
            .map_err(backend("reload cacerts"))?;
        let want = std::fs::read(dir.join("ca-cert.pem"))
            .ok()
            .and_then(|pem| {
                crate::pki::parse_certs(&pem, &dir.join("ca-cert.pem"))
                    .ok()?
                    .into_iter()
                    .next()
            })
            .ok_or_else(|| TargetError::Backend {
                what: "reload cacerts".into(),
                cause: format!("`{}` has no certificate", dir.join("ca-cert.pem").display()).into(),
            })?;
        let (ns, sa) = self.some_identity(i);
        let this = &*self;
        wait::poll(
            format!("istiod in `{cluster}` to sign with the new intermediate"),
            RELOAD.scaled(),
            || {
                let (want, ns, sa) = (want.clone(), ns.clone(), sa.clone());
                async move {
                    match this.issue(i, &ns, &sa).await {
                        Ok(chain) if chain.get(1) == Some(&want) => Check::Done(()),
                        Ok(chain) => Check::NotYet(format!(
                            "a {}-certificate chain still under the old intermediate",
                            chain.len()
                        )),
                        Err(e) => Check::NotYet(e.to_string()),
                    }
                }
            },
        )
        .await
        .map_err(|e| backend("reload cacerts")(e.into()))
    }

    /// `istioctl install` with the second istioctl over the first (istio::upgrade_cmd), then a
    /// rollout restart of every deployment this scenario made, so that the workloads run the
    /// new sidecar with fresh certificates.
    async fn upgrade(
        &mut self,
        cluster: &str,
        options: &UpgradeOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let i = self.slot(cluster)?;
        let istioctl = match &options.istioctl {
            Some(p) => p.clone(),
            None => self.shared.istioctl(1).map_err(backend("upgrade"))?,
        };
        let outcome = self
            .install_with(i, &istioctl, InstallStep::Upgrade)
            .await?;
        if matches!(outcome, InstallOutcome::Installed { .. }) {
            let client = self.client(i).clone();
            let namespaces: BTreeSet<String> = self.slots[i]
                .deployed
                .iter()
                .map(|(ns, _)| ns.clone())
                .collect();
            for ns in namespaces {
                istio::restart_workloads(&client, &ns)
                    .await
                    .map_err(backend("restart the workloads"))?;
            }
            for (ns, app) in self.slots[i].deployed.clone() {
                workloads::wait_pods_ready(
                    &client,
                    &ns,
                    &format!("app={app}"),
                    workloads::PODS_READY,
                )
                .await
                .map_err(backend("restart the workloads"))?;
            }
        }
        Ok(outcome)
    }

    /// `istioctl install --revision REVISION` with the upgrade's istioctl (istiod only), reading
    /// the same `cacerts`; the outcome is that revision's istiod's.
    async fn install_revision(
        &mut self,
        cluster: &str,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let i = self.slot(cluster)?;
        refuse_multi_root(options, "install a revision")?;
        let istioctl = self.upgrade_istioctl()?;
        self.install_with(i, &istioctl, InstallStep::Revision(revision))
            .await
    }

    /// Labels the namespace `istio.io/rev=REVISION` and drops `istio-injection` (which would
    /// win over the revision label), as Istio's canary upgrade guide does.
    async fn set_namespace_revision(
        &mut self,
        cluster: &str,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        let i = self.slot(cluster)?;
        workloads::set_namespace_revision(self.client(i), namespace, revision)
            .await
            .map_err(backend("move a namespace to a revision"))
    }

    /// `kubectl rollout restart` of one app, then its rollout and pods Ready.
    async fn restart(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        let i = self.slot(cluster)?;
        let client = self.client(i).clone();
        let what = format!("restart {app}");
        istio::restart_deployment(&client, namespace, app.name())
            .await
            .map_err(backend(&what))?;
        workloads::wait_pods_ready(
            &client,
            namespace,
            &format!("app={}", app.name()),
            workloads::PODS_READY,
        )
        .await
        .map_err(backend(&what))?;
        // The new pod must run the sidecar of the revision its namespace now names.
        workloads::check_app_revision(&client, namespace, app.name())
            .await
            .map_err(backend(&what))
    }

    /// `istioctl uninstall --revision REVISION -y` (the default revision with the istioctl that
    /// installed it, any other with the newest), then waits until its istiod is gone.
    async fn uninstall_revision(
        &mut self,
        cluster: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        let i = self.slot(cluster)?;
        let istioctl = if revision == istio::DEFAULT_REVISION {
            self.shared
                .istioctl(0)
                .map_err(backend("uninstall a revision"))?
        } else {
            self.upgrade_istioctl()?
        };
        let r = &self.shared.clusters[i].cluster;
        process::run(&istio::uninstall_revision_cmd(&istioctl, r, revision))
            .await
            .map_err(|e| backend("uninstall a revision")(e.into()))?;
        istio::wait_istiod_gone(self.client(i), revision)
            .await
            .map_err(backend("uninstall a revision"))
    }

    async fn keep_evidence(&mut self, scenario: &str) {
        self.shared.failed();
        self.shared
            .dump_pods(&scenario_artifacts(&self.shared.run.artifacts, scenario))
            .await;
    }

    async fn teardown(&mut self) -> Result<(), TargetError> {
        let mut problems = Vec::new();
        for i in 0..self.slots.len() {
            if self.slots[i].occupant.is_some()
                && let Err(e) = self.reset(i).await
            {
                problems.push(e.to_string());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            self.shared.failed();
            Err(TargetError::Backend {
                what: "teardown".into(),
                cause: problems.join("; ").into(),
            })
        }
    }
}

/// A run's artifacts directory: `<base>/<run>`, where `<run>` is the run's stamped prefix
/// (`meshtrust-1796000000-4242`), so that no two runs write into the same place.
pub fn run_artifacts(base: &Path, prefix: &str) -> PathBuf {
    if kind::run_stamp(prefix).is_some() {
        base.join(prefix)
    } else {
        base.join(kind::run_prefix(prefix, std::time::SystemTime::now()))
    }
}

/// A failed scenario's own directory inside the run's.
pub fn scenario_artifacts(run_dir: &Path, scenario: &str) -> PathBuf {
    run_dir.join(scenario)
}

/// Every pod and event of a cluster, for the artifacts of a failed run (kubectl is optional).
pub fn kubectl_dump_cmd(kubectl: &Path, cluster: &ClusterRef) -> Cmd {
    Cmd::new(kubectl).args(cluster.cli_args()).args([
        "get",
        "pods,events",
        "--all-namespaces",
        "-o",
        "wide",
    ])
}

/// The physical clusters a set of scenarios needs: two if any of them is multi-cluster.
pub fn clusters_for(scenarios: &[crate::scenario::Scenario]) -> Vec<String> {
    let multi = scenarios.iter().any(|s| s.is_multicluster());
    let mut clusters = vec!["cluster1".to_owned()];
    if multi {
        clusters.push("cluster2".to_owned());
    }
    clusters
}

/// A map for tests and reports: logical cluster -> physical cluster.
pub fn placements(logical: &[&str], physical: &[String]) -> BTreeMap<String, String> {
    logical
        .iter()
        .filter_map(|l| placement(l, physical).map(|i| ((*l).to_owned(), physical[i].clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pod_dump_of_a_failed_run_covers_every_namespace_of_the_cluster() {
        let cluster = ClusterRef {
            cluster: "cluster1".into(),
            kubeconfig: Some("/w/meshtrust-cluster1.kubeconfig".into()),
            context: Some("kind-meshtrust-cluster1".into()),
        };
        assert_eq!(
            kubectl_dump_cmd(Path::new("kubectl"), &cluster).to_string(),
            "kubectl --kubeconfig /w/meshtrust-cluster1.kubeconfig --context kind-meshtrust-cluster1 get pods,events --all-namespaces -o wide"
        );
    }

    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn curl_prints_the_body_then_the_status_code_on_its_own_line() {
        assert_eq!(
            curl_argv("http://httpbin.foo:8000/headers"),
            [
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\n%{http_code}",
                "http://httpbin.foo:8000/headers"
            ]
        );
    }

    #[test]
    fn a_response_is_its_status_and_body() {
        let out = curl_outcome(0, "{\"headers\": {}}\n200", "").unwrap();
        assert_eq!(out.status(), Some(200));
        assert_eq!(out.body_text().unwrap(), "{\"headers\": {}}");
        // A body without a trailing newline, and an empty one.
        assert_eq!(curl_outcome(0, "\n404", "").unwrap().status(), Some(404));
        assert_eq!(curl_outcome(0, "403", "").unwrap().status(), Some(403));
    }

    #[test]
    fn the_sidecars_own_503_after_a_failed_handshake_is_a_refusal() {
        let body = "upstream connect error or disconnect/reset before headers. retried and the \
                    latest reset reason: remote connection failure, transport failure reason: \
                    TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED";
        match curl_outcome(0, &format!("{body}\n503"), "").unwrap() {
            Outcome::Refused { reason } => {
                assert!(reason.contains("CERTIFICATE_VERIFY_FAILED"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // httpbin's own 503 (/status/503) is a response.
        assert_eq!(curl_outcome(0, "\n503", "").unwrap().status(), Some(503));
    }

    #[test]
    fn connection_level_curl_failures_are_refusals_and_the_rest_are_errors() {
        for code in [7, 35, 52, 56] {
            let out = curl_outcome(
                code,
                "",
                "curl: (56) Recv failure: Connection reset by peer",
            );
            assert!(
                matches!(out, Ok(Outcome::Refused { .. })),
                "{code}: {out:?}"
            );
        }
        assert_eq!(
            curl_outcome(6, "", "curl: (6) Could not resolve host: httpbin.foo").unwrap_err(),
            "curl exited 6: curl: (6) Could not resolve host: httpbin.foo"
        );
        // exec could not start curl (distroless istio-proxy).
        assert!(curl_outcome(-1, "", "").is_err());
        assert!(curl_outcome(0, "garbage", "").is_err());
    }

    const QUICK: Patience = Patience::new(Duration::from_millis(800), Duration::from_millis(10));

    fn ok(status: u16) -> Result<Outcome, TargetError> {
        Ok(Outcome::Response {
            status,
            body: Vec::new(),
        })
    }

    fn refused() -> Result<Outcome, TargetError> {
        Ok(Outcome::Refused {
            reason: "curl exited 56: Connection reset by peer".into(),
        })
    }

    /// A target whose sidecars get the new policy only at the `flip`-th look.
    async fn scripted(
        mode: Mode,
        transport: Transport,
        flip: usize,
        before: fn() -> Result<Outcome, TargetError>,
        after: fn() -> Result<Outcome, TargetError>,
    ) -> (Result<Outcome, TargetError>, usize) {
        let looks = std::sync::atomic::AtomicUsize::new(0);
        let out =
            observe_after_policy("plaintext sleep -> httpbin", mode, transport, QUICK, || {
                let n = looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                async move { if n >= flip { after() } else { before() } }
            })
            .await;
        (out, looks.into_inner())
    }

    #[tokio::test]
    async fn under_strict_a_late_push_is_waited_for_and_the_refusal_is_reported() {
        let (out, looks) =
            scripted(Mode::Strict, Transport::Plaintext, 4, || ok(200), refused).await;
        assert!(matches!(out, Ok(Outcome::Refused { .. })), "{out:?}");
        assert_eq!(looks, 4);
    }

    #[tokio::test]
    async fn under_permissive_a_late_push_is_waited_for_and_the_200_is_reported() {
        let (out, looks) = scripted(Mode::Permissive, Transport::Plaintext, 3, refused, || {
            ok(200)
        })
        .await;
        assert_eq!(out.unwrap().status(), Some(200));
        assert_eq!(looks, 3);
    }

    #[tokio::test]
    async fn a_policy_that_never_lands_gives_up_with_the_last_outcome_seen() {
        let started = std::time::Instant::now();
        let (out, looks) = scripted(
            Mode::Strict,
            Transport::Plaintext,
            usize::MAX,
            || ok(200),
            refused,
        )
        .await;
        // The scenario then fails on this 200, as it must.
        assert_eq!(out.unwrap().status(), Some(200));
        assert!(looks > 2, "{looks}");
        assert!(started.elapsed() >= QUICK.deadline);
    }

    #[tokio::test]
    async fn an_answer_already_in_effect_is_looked_at_once() {
        let (out, looks) = scripted(Mode::Strict, Transport::Mtls, 1, refused, || ok(200)).await;
        assert_eq!(out.unwrap().status(), Some(200));
        assert_eq!(looks, 1);
    }

    #[tokio::test]
    async fn an_observation_that_fails_ends_the_poll_with_its_error() {
        let (out, looks) = scripted(
            Mode::Strict,
            Transport::Plaintext,
            2,
            || ok(200),
            || {
                Err(TargetError::Backend {
                    what: "request".into(),
                    cause: "curl exited 6: Could not resolve host".into(),
                })
            },
        )
        .await;
        assert!(out.unwrap_err().to_string().contains("request"));
        assert_eq!(looks, 2);
    }

    #[test]
    fn istio_version_is_a_release_of_the_install_istioctl_not_a_string_prefix() {
        use super::super::tools::{Tool, ToolName};
        let tools = |version: &str| Toolbox {
            docker: None,
            kind: None,
            istioctl: vec![Tool {
                name: ToolName::Istioctl,
                path: "/bin/istioctl".into(),
                version: version.into(),
            }],
            kubectl: None,
        };
        for (want, have) in [
            ("1.32", "1.32.0"),
            ("v1.32", "1.32.1-rc.0"),
            ("1.32.0", "1.32.0"),
        ] {
            assert!(
                check_istio_version(Some(want), &tools(have)).is_ok(),
                "{want} {have}"
            );
        }
        for (want, have) in [("1.3", "1.32.0"), ("1.31", "1.32.0"), ("1.32.1", "1.32.0")] {
            let e = check_istio_version(Some(want), &tools(have)).unwrap_err();
            assert!(matches!(e, KubeError::IstioVersion { .. }), "{e}");
            assert!(
                e.to_string().contains(&format!(
                    "`/bin/istioctl` is istioctl {have} (hint: `--istioctl PATH`"
                )),
                "{e}"
            );
        }
        assert!(check_istio_version(None, &tools("1.32.0")).is_ok());
    }

    #[test]
    fn each_run_and_each_failed_scenario_has_its_own_artifacts_directory() {
        let base = Path::new("target/meshtrust/artifacts");
        let one = run_artifacts(base, "meshtrust-e2e-1796000000-41");
        let two = run_artifacts(base, "meshtrust-e2e-1796000007-42");
        assert_eq!(one, base.join("meshtrust-e2e-1796000000-41"));
        assert_ne!(one, two);
        // An unstamped prefix (target kubeconfig) still gets a directory of its own.
        let attached = run_artifacts(base, "meshtrust");
        assert_ne!(attached, base.join("meshtrust"));
        assert!(kind::run_stamp(&attached.file_name().unwrap().to_string_lossy()).is_some());
        assert_ne!(
            scenario_artifacts(&one, "plugin-ca"),
            scenario_artifacts(&one, "strict-rejects-plaintext")
        );
    }

    #[test]
    fn no_healthy_upstream_means_the_remote_endpoints_are_not_there_yet() {
        let out = curl_outcome(0, "no healthy upstream\n503", "").unwrap();
        assert!(not_discovered_yet(&out));
        assert!(!not_discovered_yet(
            &curl_outcome(0, "upstream connect error\n503", "").unwrap()
        ));
    }

    #[test]
    fn logical_clusters_go_to_their_namesake_or_the_first_cluster() {
        let physical = ["cluster1".to_owned(), "cluster2".to_owned()];
        let placed = placements(
            &["cluster1", "cluster2", "bad-incomplete", "bad-not-a-ca"],
            &physical,
        );
        assert_eq!(placed["cluster2"], "cluster2");
        assert_eq!(placed["bad-incomplete"], "cluster1");
        assert_eq!(placed["bad-not-a-ca"], "cluster1");
        assert_eq!(placement("cluster1", &[]), None);
    }

    #[test]
    fn only_multicluster_scenarios_make_a_second_cluster() {
        assert_eq!(
            clusters_for(&[Scenario::PluginCa, Scenario::BadCacerts]),
            ["cluster1"]
        );
        assert_eq!(
            clusters_for(&Scenario::ALL),
            ["cluster1".to_owned(), "cluster2".to_owned()]
        );
    }

    #[test]
    fn a_ready_istiods_log_line_is_the_install_outcome() {
        let log = "2026-11-29T04:10:01.413Z\tinfo\tUse local CA certificate\n";
        assert_eq!(
            install_outcome(log).unwrap(),
            InstallOutcome::Installed {
                ca: CaSource::PluggedIn,
                log: vec!["Use local CA certificate".into()]
            }
        );
        let err = install_outcome("2026-11-29T04:10:01Z\tinfo\tready\n").unwrap_err();
        assert!(err.to_string().contains("names neither"), "{err}");
    }

    #[test]
    fn the_probes_json_becomes_the_captured_chain() {
        let pem = crate::pki::to_pem(&CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]));
        let out = ProbeOutput::parse(
            "sleep-1",
            &serde_json::json!({
                "peer": "10.11.0.7:8080", "chain": [pem], "tls_version": "TLSv1.3",
                "alpn": "istio", "client_cert_requested": true, "client_auth": null,
                "error_after_chain": "received fatal alert: CertificateRequired"
            })
            .to_string(),
        )
        .unwrap();
        let from = WorkloadRef::new("cluster1", "foo", App::Sleep);
        let to = WorkloadRef::new("cluster1", "foo", App::Httpbin);
        let c = captured_chain(&out, &from, &to).unwrap();
        assert_eq!(c.chain.len(), 1);
        assert_eq!(c.protocol.as_deref(), Some("TLSv1.3"));
        assert_eq!(c.alpn.as_deref(), Some(&b"istio"[..]));
        assert_eq!(
            c.handshake,
            Handshake::Failed("received fatal alert: CertificateRequired".into())
        );
        assert_eq!((c.client, c.server), (from, to));
    }
}
