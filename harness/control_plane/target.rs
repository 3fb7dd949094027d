//! [`IstiodTarget`]: the scenario interface on real istiod, etcd and kube-apiserver processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use rustls_pki_types::CertificateDer;

use super::api::ApiServer;
use super::istiod::{ISTIO_NAMESPACE, IstiodProcess, IstiodSpec, Started, write_cacerts};
use super::{Binaries, ControlPlaneError};
use crate::istio::reload;
use crate::kube::KubeError;
use crate::kube::cluster::{OwnedNamespaces, namespace};
use crate::kube::error::is_not_found;
use crate::kube::plugin::{self, ROOT_CONFIGMAP};
use crate::mesh::cluster::workload_error;
use crate::mesh::policy::Policies;
use crate::mesh::workload::{self, Mesh, Workload};
use crate::pki::KeyAlg;
use crate::scenario::target::{
    App, CapturedChain, DEFAULT_REVISION, InstallOptions, InstallOutcome, Milestone, Mode, Outcome,
    Target, TargetError, Transport, UpgradeOptions, WorkloadRef,
};

/// The audience of the tokens workloads present to istiod's CA (`TOKEN_AUDIENCES`' default,
/// `pkg/jwt`, every supported release).
pub const CA_AUDIENCE: &str = "istio-ca";
/// How long istiod gets to publish `istio-ca-root-cert` into a new namespace, or to answer a
/// change of its plugged files.
const ISTIOD_ANSWERS: Duration = Duration::from_secs(60);
/// How long a rotated Secret gets under `USE_REMOTE_CERTS` before the target says istiod did
/// not take it (it never does: see [`IstiodTarget::reload_cacerts`]); a mounted reload answers
/// within a second here.
const REMOTE_RELOAD_WAIT: Duration = Duration::from_secs(15);
/// Why a rotated Secret is not taken under `USE_REMOTE_CERTS`, in the words of Istio's code.
pub const REMOTE_CERTS_READ_ONCE: &str = "with USE_REMOTE_CERTS istiod reads Secret `cacerts` once, at start, into its cert directory and then watches only that directory (loadCACerts, pilot/pkg/bootstrap/istio_ca.go, Istio 1.30 and 1.31): a rotated Secret takes effect when istiod restarts";

/// Every cluster directory is `<temp>/meshtrust-istiod-<pid>-<cluster>.XXXXXX`.
pub const DIR_PREFIX: &str = "meshtrust-istiod-";

/// Removes the cluster directories in `temp` of meshtrust processes that are gone (killed by
/// SIGKILL, which no handler sees; their processes died with them: parent-death signal).
/// Returns the directories removed. A directory whose pid still runs is left alone.
pub fn sweep_stale_dirs(temp: &Path) -> Vec<PathBuf> {
    crate::scenario::runner::sweep_dead_dirs(temp, DIR_PREFIX, '-', |_| true)
}

/// The directories of live clusters, for a signal handler to remove.
static LIVE_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every cluster directory this process made that still exists (the processes are
/// killed by [`crate::kube::process::kill_live_groups`] first); for a signal handler, which
/// exits without running `Drop`. Returns how many it removed.
pub fn remove_live_dirs() -> usize {
    let dirs = match LIVE_DIRS.lock() {
        Ok(mut d) => std::mem::take(&mut *d),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    dirs.iter()
        .filter(|dir| dir.exists() && std::fs::remove_dir_all(dir).is_ok())
        .count()
}

/// The target's milestones, in the order they happened; shared by its clusters.
type Milestones = Arc<Mutex<Vec<Milestone>>>;

fn record(milestones: &Milestones, milestone: Milestone) {
    if let Ok(mut m) = milestones.lock() {
        m.push(milestone);
    }
}

/// The state of istiod in a cluster.
#[derive(Debug)]
enum State {
    NotInstalled,
    Refused(String),
    Running(IstiodProcess),
}

/// One cluster: its API, its istiod, its workloads. Fields drop in order: the workloads stop,
/// istiod is killed, then the API server and etcd, then the directory goes.
#[derive(Debug)]
struct Cluster {
    name: String,
    workloads: BTreeMap<(String, String), Workload>,
    state: State,
    options: InstallOptions,
    policies: Arc<Policies>,
    namespaces: OwnedNamespaces,
    starts: u32,
    /// istiod reads `cacerts` from the API (`USE_REMOTE_CERTS`).
    remote_certs: bool,
    /// Control planes beside the default one (a canary upgrade), by revision.
    revisions: BTreeMap<String, IstiodProcess>,
    /// `istio.io/rev` of each namespace moved off the default control plane.
    namespace_revisions: BTreeMap<String, String>,
    milestones: Milestones,
    /// When istiod last started (its release and revision), until its first workload
    /// certificate.
    awaiting_first_certificate: Option<(Instant, String, String)>,
    api: ApiServer,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The namespaces go with the API server. The directory stays registered: it is
        // removed after this (the fields drop in order), and a signal in between must still
        // find it; removing a directory that is already gone is harmless.
        self.namespaces.forget();
    }
}

fn backend(
    what: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> TargetError {
    TargetError::Backend {
        what: what.into(),
        cause: Box::new(e),
    }
}

impl Cluster {
    fn client(&self) -> kube::Client {
        self.api.client()
    }

    fn istiod(&self) -> Result<&IstiodProcess, TargetError> {
        match &self.state {
            State::Running(i) => Ok(i),
            State::NotInstalled => Err(TargetError::NotInstalled(self.name.clone())),
            State::Refused(reason) => Err(TargetError::IstiodDown {
                cluster: self.name.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The istiod serving `ns`: its revision's, else the default one.
    fn istiod_for(&self, ns: &str) -> Result<&IstiodProcess, TargetError> {
        match self.namespace_revisions.get(ns) {
            Some(rev) if rev != DEFAULT_REVISION => {
                self.revisions
                    .get(rev)
                    .ok_or_else(|| TargetError::UnknownRevision {
                        cluster: self.name.clone(),
                        revision: rev.clone(),
                    })
            }
            _ => self.istiod(),
        }
    }

    /// The Secret `cacerts`' data, as the kubelet would mount it (empty: no Secret).
    async fn cacerts(&self) -> Result<BTreeMap<String, Vec<u8>>, TargetError> {
        let secret = Api::<Secret>::namespaced(self.client(), ISTIO_NAMESPACE)
            .get_opt("cacerts")
            .await
            .map_err(|e| backend(format!("read Secret cacerts in `{}`", self.name), e))?;
        Ok(secret
            .and_then(|s| s.data)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect())
    }

    /// Starts istiod with `binary`, reading the Secret as it is now.
    async fn start_istiod(
        &mut self,
        binary: &Path,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        self.workloads.clear();
        self.state = State::NotInstalled;
        let (outcome, istiod) = self
            .start_revision(binary, DEFAULT_REVISION, options)
            .await?;
        self.options = options.clone();
        self.state = match (istiod, &outcome) {
            (Some(istiod), _) => State::Running(istiod),
            (None, InstallOutcome::Refused { reason, .. }) => State::Refused(reason.clone()),
            (None, InstallOutcome::Installed { .. }) => State::NotInstalled,
        };
        Ok(outcome)
    }

    /// Starts istiod of `revision` from the Secret as it is now: its outcome, and the process
    /// when it serves.
    async fn start_revision(
        &mut self,
        binary: &Path,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<(InstallOutcome, Option<IstiodProcess>), TargetError> {
        let cacerts = self.cacerts().await?;
        self.starts += 1;
        let spec = IstiodSpec {
            binary,
            kubeconfig: self.api.kubeconfig(),
            dir: self.dir.path().join(format!("istiod-{}", self.starts)),
            cluster_id: &self.name,
            revision,
            options,
            cacerts,
            remote_certs: self.remote_certs,
        };
        let started = Instant::now();
        // Ports are picked free, then handed to istiod: another process may take one in
        // between (seen once in CI). That is not istiod's answer to the bundle: pick again.
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let outcome = IstiodProcess::start(spec.clone())
                .await
                .map_err(|e| backend(format!("start istiod in `{}`", self.name), e))?;
            match &outcome {
                Started::Refused { reason, .. }
                    if attempts < 3 && reason.contains("address already in use") => {}
                _ => break outcome,
            }
        };
        Ok(match outcome {
            Started::Serving { istiod, ca, log } => {
                let release = binary
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("pilot-discovery-"))
                    .unwrap_or("?");
                record(
                    &self.milestones,
                    Milestone::istiod_ready(&self.name, release, revision, istiod.ready_in),
                );
                self.awaiting_first_certificate =
                    Some((started, release.to_owned(), revision.to_owned()));
                (InstallOutcome::Installed { ca, log }, Some(istiod))
            }
            Started::Refused { reason, log } => (InstallOutcome::Refused { reason, log }, None),
        })
    }

    /// A ServiceAccount token for `ns/service_account` (audience `istio-ca`), the namespace
    /// created if missing (and then deleted with the cluster).
    async fn token(&mut self, ns: &str, service_account: &str) -> Result<String, TargetError> {
        let client = self.client();
        self.namespaces
            .ensure(&client, &namespace(ns, &[]))
            .await
            .map_err(|e| backend(format!("create namespace `{ns}` in `{}`", self.name), e))?;
        token_for(&client, ns, service_account).await
    }

    /// The roots of `istio-ca-root-cert` in `ns`, once istiod has written it (as the agent
    /// reads them from the mounted ConfigMap).
    async fn roots(&mut self, ns: &str) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        let started = Instant::now();
        loop {
            if let Some(pem) = plugin::root_configmap(&self.client(), ns)
                .await
                .map_err(|e| backend(format!("read {ROOT_CONFIGMAP} in `{ns}`"), e))?
            {
                return published_roots(&pem, &self.name, ns);
            }
            if let State::Running(istiod) = &mut self.state
                && let Err(e) = istiod.check_running()
            {
                return Err(backend(format!("istiod in `{}`", self.name), e));
            }
            self.istiod_for(ns)?;
            if started.elapsed() > ISTIOD_ANSWERS {
                return Err(backend(
                    format!("read {ROOT_CONFIGMAP} in `{ns}`"),
                    ControlPlaneError::NotReady {
                        what: format!("istiod wrote no {ROOT_CONFIGMAP} into `{ns}`"),
                        waited: ISTIOD_ANSWERS,
                        tail: self.istiod_for(ns)?.tail(20),
                    },
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What a workload in `ns` is given: istiod's CA address, the published roots, the trust
    /// domain, the namespace's policy.
    async fn mesh(&mut self, ns: &str) -> Result<Mesh, TargetError> {
        let roots = self.roots(ns).await?;
        Ok(Mesh {
            ca_addr: self.istiod_for(ns)?.ca_addr(),
            roots,
            trust_domain: self.options.trust_domain.clone(),
            policies: self.policies.clone(),
        })
    }

    fn first_certificate(&mut self) {
        if let Some((since, release, revision)) = self.awaiting_first_certificate.take() {
            record(
                &self.milestones,
                Milestone::first_certificate(&self.name, &release, &revision, since.elapsed()),
            );
        }
    }
}

/// Clusters by name, each created (its API server started) on first mention.
#[derive(Debug)]
pub struct IstiodTarget {
    bins: Binaries,
    workload_key: KeyAlg,
    clusters: BTreeMap<String, Cluster>,
    timings: Milestones,
    remote_certs: bool,
    /// Where a failed scenario's control-plane logs go (`--artifacts`).
    evidence: Option<PathBuf>,
}

impl IstiodTarget {
    /// Workloads with RSA 2048 keys, the agent's default. Sweeps the directories of earlier
    /// runs that were killed (see [`sweep_stale_dirs`]), saying so in the log.
    pub fn new(bins: Binaries) -> IstiodTarget {
        for dir in sweep_stale_dirs(&std::env::temp_dir()) {
            tracing::warn!(dir = %dir.display(), "removed the directory of a killed run");
        }
        IstiodTarget {
            bins,
            workload_key: KeyAlg::Rsa2048,
            clusters: BTreeMap::new(),
            timings: Milestones::default(),
            remote_certs: false,
            evidence: None,
        }
    }

    /// A failed scenario's control-plane logs (every cluster's etcd, kube-apiserver and each
    /// istiod it started, exited ones included) are copied into
    /// `<dir>/<scenario>/<cluster>/` before teardown removes them. Logs only: never a key.
    pub fn with_evidence_dir(mut self, dir: PathBuf) -> IstiodTarget {
        self.evidence = Some(dir);
        self
    }

    /// istiod started with `USE_REMOTE_CERTS=true`: it reads Secret `cacerts` from the API
    /// server itself instead of a mounted directory.
    pub fn with_remote_certs(mut self) -> IstiodTarget {
        self.remote_certs = true;
        self
    }

    /// The time of each phase so far (`cluster1: etcd + API server ready`, `... istiod
    /// ready`, `... istiod start to first workload certificate`), in order.
    pub fn timings(&self) -> Vec<Milestone> {
        self.timings.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The directory and process ids of every live cluster (for the no-leftovers test).
    pub fn footprint(&self) -> (Vec<PathBuf>, Vec<u32>) {
        let mut dirs = Vec::new();
        let mut pids = Vec::new();
        for c in self.clusters.values() {
            dirs.push(c.dir.path().to_owned());
            pids.extend(c.api.pids());
            if let State::Running(i) = &c.state {
                pids.push(i.pid());
            }
            pids.extend(c.revisions.values().map(IstiodProcess::pid));
        }
        (dirs, pids)
    }

    /// istiod's whole log in `cluster` (the running one), for tests and evidence.
    pub fn istiod_log(&self, cluster: &str) -> Result<String, TargetError> {
        Ok(self.cluster(cluster)?.istiod()?.log())
    }

    fn cluster(&self, name: &str) -> Result<&Cluster, TargetError> {
        self.clusters
            .get(name)
            .ok_or_else(|| TargetError::UnknownCluster(name.to_owned()))
    }

    fn existing_mut(&mut self, name: &str) -> Result<&mut Cluster, TargetError> {
        self.clusters
            .get_mut(name)
            .ok_or_else(|| TargetError::UnknownCluster(name.to_owned()))
    }

    /// The cluster `name`, its etcd and API server started if this is its first mention.
    async fn cluster_mut(&mut self, name: &str) -> Result<&mut Cluster, TargetError> {
        if !self.clusters.contains_key(name) {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{DIR_PREFIX}{}-{name}.", std::process::id()))
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(
                    crate::pki::layout::KEY_DIR_MODE,
                ))
                .tempdir()
                .map_err(|cause| TargetError::Io {
                    what: format!("create the directory of cluster `{name}`"),
                    cause,
                })?;
            if let Ok(mut dirs) = LIVE_DIRS.lock() {
                dirs.push(dir.path().to_owned());
            }
            let api = match ApiServer::start(
                &self.bins.etcd,
                &self.bins.kube_apiserver,
                name,
                dir.path(),
            )
            .await
            {
                Ok(api) => api,
                // The directory goes with `dir`; it stays registered (see `Cluster`'s drop).
                Err(e) => return Err(backend(format!("start the API server of `{name}`"), e)),
            };
            record(
                &self.timings,
                Milestone::api_server_ready(name, api.ready_in),
            );
            self.clusters.insert(
                name.to_owned(),
                Cluster {
                    name: name.to_owned(),
                    workloads: BTreeMap::new(),
                    state: State::NotInstalled,
                    options: InstallOptions::default(),
                    policies: Arc::new(Policies::default()),
                    namespaces: OwnedNamespaces::default(),
                    starts: 0,
                    milestones: self.timings.clone(),
                    remote_certs: self.remote_certs,
                    revisions: BTreeMap::new(),
                    namespace_revisions: BTreeMap::new(),
                    awaiting_first_certificate: None,
                    api,
                    dir,
                },
            );
        }
        self.existing_mut(name)
    }

    fn workload(&self, id: &WorkloadRef) -> Result<&Workload, TargetError> {
        self.cluster(&id.cluster)?
            .workloads
            .get(&(id.namespace.clone(), id.name.clone()))
            .ok_or_else(|| TargetError::UnknownWorkload(id.clone()))
    }

    async fn deploy_in(&mut self, cluster: &str, ns: &str, app: App) -> Result<(), TargetError> {
        let key_alg = self.workload_key;
        let c = self.existing_mut(cluster)?;
        c.istiod_for(ns)?;
        let token = c.token(ns, app.name()).await?;
        let mesh = c.mesh(ns).await?;
        let id = WorkloadRef::new(cluster, ns, app);
        let w = Workload::start(id.clone(), app, key_alg, &token, mesh)
            .await
            .map_err(|e| workload_error(&id, e))?;
        c.workloads
            .insert((ns.to_owned(), app.name().to_owned()), w);
        c.first_certificate();
        Ok(())
    }
}

#[async_trait]
impl Target for IstiodTarget {
    /// The first pinned istiod's release (installs start there).
    fn istio_version(&self) -> crate::istio::IstioVersion {
        self.bins
            .istiod_release()
            .unwrap_or(crate::istio::IstioVersion::LATEST)
    }

    fn name(&self) -> &'static str {
        "istiod"
    }

    /// The kind target's plug-in code against this cluster's API server; `None` deletes a
    /// `cacerts` Secret if one exists.
    async fn plug_in(&mut self, cluster: &str, bundle: Option<&Path>) -> Result<(), TargetError> {
        let c = self.cluster_mut(cluster).await?;
        let client = c.client();
        match bundle {
            Some(dir) => {
                plugin::plug_in(&client, &mut c.namespaces, dir)
                    .await
                    .map_err(|e| plug_in_error(cluster, e))?;
            }
            None => {
                c.namespaces
                    .ensure(&client, &namespace(ISTIO_NAMESPACE, &[]))
                    .await
                    .map_err(|e| plug_in_error(cluster, e))?;
                match Api::<Secret>::namespaced(client, ISTIO_NAMESPACE)
                    .delete("cacerts", &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(backend("delete Secret cacerts", e)),
                }
            }
        }
        Ok(())
    }

    async fn install(
        &mut self,
        cluster: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let binary = self.bins.istiod().to_owned();
        self.cluster_mut(cluster)
            .await?
            .start_istiod(&binary, options)
            .await
    }

    async fn deploy(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        self.deploy_in(cluster, namespace, app).await
    }

    /// The workloads enforce the namespace's mode as the local target's do (no Envoy here, so
    /// no PeerAuthentication object is applied).
    async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        namespace: &str,
        mode: Mode,
    ) -> Result<(), TargetError> {
        self.cluster(cluster)?.policies.set(namespace, mode);
        Ok(())
    }

    async fn capture_chain(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
    ) -> Result<CapturedChain, TargetError> {
        Ok(self.workload(from)?.capture_from(self.workload(to)?).await)
    }

    async fn request(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        transport: Transport,
        path: &str,
    ) -> Result<Outcome, TargetError> {
        Ok(self
            .workload(from)?
            .request_to(self.workload(to)?, transport, path)
            .await)
    }

    async fn issue_workload_certificate(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        let c = self.cluster(cluster)?;
        let istiod = c.istiod_for(namespace)?;
        // `&self`: the ServiceAccount and token go through a throwaway handle on the same API.
        let id = WorkloadRef {
            cluster: cluster.to_owned(),
            namespace: namespace.to_owned(),
            name: service_account.to_owned(),
        };
        OwnedNamespaces::default()
            .ensure(
                &c.client(),
                &crate::kube::cluster::namespace(namespace, &[]),
            )
            .await
            .map_err(|e| backend(format!("create namespace `{namespace}`"), e))?;
        let token = token_for(&c.client(), namespace, service_account).await?;
        let roots = match plugin::root_configmap(&c.client(), namespace)
            .await
            .map_err(|e| backend(format!("read {ROOT_CONFIGMAP} in `{namespace}`"), e))?
        {
            Some(pem) => published_roots(&pem, cluster, namespace)?,
            None => {
                return Err(TargetError::Signing {
                    identity: id.to_string(),
                    reason: format!("istiod has not published {ROOT_CONFIGMAP} in `{namespace}`"),
                });
            }
        };
        let alg = self.workload_key;
        let key = tokio::task::spawn_blocking(move || alg.generate())
            .await
            .expect("key generation does not panic")
            .map_err(|cause| TargetError::Bundle {
                dir: "<workload key>".into(),
                cause,
            })?;
        let spiffe_id = crate::mesh::Identity::new(namespace, service_account)
            .spiffe_id(&c.options.trust_domain);
        workload::request_certificate(&id, &key, &spiffe_id, &token, istiod.ca_addr(), &roots)
            .await
            .map_err(|e| workload_error(&id, e))
    }

    async fn root_configmap(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        let c = self.cluster(cluster)?;
        Ok(plugin::root_configmap(&c.client(), namespace)
            .await
            .map_err(|e| backend(format!("read {ROOT_CONFIGMAP} in `{namespace}`"), e))?
            .map(String::into_bytes))
    }

    /// The Secret is re-applied through the API (as `kubectl` would), and its new data written
    /// into istiod's cert directory (as the kubelet updates a mounted Secret); then this waits
    /// until istiod has logged what it did with the new files.
    async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<(), TargetError> {
        let c = self.existing_mut(cluster)?;
        let istiod = c.istiod()?;
        let before = reload_answers(&istiod.log());
        let secret = plugin::cacerts_secret(dir).map_err(|e| plug_in_error(cluster, e))?;
        plugin::apply_secret(&c.client(), &secret)
            .await
            .map_err(|e| plug_in_error(cluster, e))?;
        // The kubelet rewrites a mounted Secret's files; with USE_REMOTE_CERTS nothing is
        // mounted, and only the Secret changes.
        if !c.remote_certs {
            let data = c.cacerts().await?;
            let istiod = c.istiod()?;
            write_cacerts(&istiod.cacerts_dir(), &data)
                .map_err(|e| backend(format!("update istiod's cacerts in `{cluster}`"), e))?;
        }
        let started = Instant::now();
        let (deadline, what) = match c.remote_certs {
            false => (
                ISTIOD_ANSWERS,
                "istiod logged nothing about the new cacerts".to_owned(),
            ),
            true => (
                REMOTE_RELOAD_WAIT,
                format!("istiod logged nothing about the new cacerts: {REMOTE_CERTS_READ_ONCE}"),
            ),
        };
        loop {
            let istiod = c.istiod()?;
            if reload_answers(&istiod.log()) > before {
                return Ok(());
            }
            if started.elapsed() > deadline {
                return Err(backend(
                    format!("reload cacerts in `{cluster}`"),
                    ControlPlaneError::NotReady {
                        what,
                        waited: deadline,
                        tail: istiod.tail(20),
                    },
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// istiod restarts (with the newest built release, or the same binary when one is built)
    /// on the same Secret, then every workload restarts with a fresh certificate.
    async fn upgrade(
        &mut self,
        cluster: &str,
        options: &UpgradeOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let binary = self.bins.istiod_upgrade().to_owned();
        if self.bins.pilot_discovery.len() < 2 {
            tracing::warn!(
                istiod = %binary.display(),
                "one istiod release is built: the upgrade restarts the same release (build both pins with `just e2e-tools`)"
            );
        }
        let c = self.existing_mut(cluster)?;
        c.istiod()?;
        let mut install = c.options.clone();
        install.version = options.version;
        let deployed: Vec<(String, App)> = c
            .workloads
            .iter()
            .map(|((ns, _), w)| (ns.clone(), w.app()))
            .collect();
        let c = self.existing_mut(cluster)?;
        let outcome = c.start_istiod(&binary, &install).await?;
        if matches!(outcome, InstallOutcome::Installed { .. }) {
            for (ns, app) in deployed {
                self.deploy_in(cluster, &ns, app).await?;
            }
        }
        Ok(outcome)
    }

    async fn restart(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        self.workload(&WorkloadRef::new(cluster, namespace, app))?;
        self.deploy_in(cluster, namespace, app).await
    }

    /// A second istiod with `REVISION` set, beside the running one, from the same Secret.
    async fn install_revision(
        &mut self,
        cluster: &str,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let binary = self.bins.istiod_upgrade().to_owned();
        let (outcome, istiod) = self
            .existing_mut(cluster)?
            .start_revision(&binary, revision, options)
            .await?;
        if let Some(istiod) = istiod {
            self.existing_mut(cluster)?
                .revisions
                .insert(revision.to_owned(), istiod);
        }
        Ok(outcome)
    }

    /// The namespace is relabelled through the API (as on kind); the workloads (re)started
    /// there afterwards ask that revision's istiod.
    async fn set_namespace_revision(
        &mut self,
        cluster: &str,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        let c = self.existing_mut(cluster)?;
        if revision != DEFAULT_REVISION && !c.revisions.contains_key(revision) {
            return Err(TargetError::UnknownRevision {
                cluster: cluster.to_owned(),
                revision: revision.to_owned(),
            });
        }
        crate::kube::workloads::set_namespace_revision(&c.client(), namespace, revision)
            .await
            .map_err(|e| backend(format!("move `{namespace}` to revision {revision}"), e))?;
        c.namespace_revisions
            .insert(namespace.to_owned(), revision.to_owned());
        Ok(())
    }

    /// Stops that revision's istiod (`default`: the unrevisioned one).
    async fn uninstall_revision(
        &mut self,
        cluster: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        let c = self.existing_mut(cluster)?;
        if revision == DEFAULT_REVISION {
            c.istiod()?;
            c.state = State::NotInstalled;
            return Ok(());
        }
        c.revisions
            .remove(revision)
            .map(drop)
            .ok_or_else(|| TargetError::UnknownRevision {
                cluster: cluster.to_owned(),
                revision: revision.to_owned(),
            })
    }

    /// istiod's last log lines, into the run's log; with an evidence directory, every log of
    /// the control plane copied there (the cluster directories go at teardown).
    async fn keep_evidence(&mut self, scenario: &str) {
        for c in self.clusters.values() {
            if let State::Running(istiod) = &c.state {
                tracing::warn!(
                    scenario,
                    cluster = %c.name,
                    "the end of istiod's log:\n{}",
                    istiod.tail(30)
                );
            }
            let Some(base) = &self.evidence else {
                continue;
            };
            let to = base.join(scenario).join(&c.name);
            match copy_logs(c.dir.path(), &to) {
                Ok(n) => {
                    tracing::info!(cluster = %c.name, "{n} control-plane log(s) in {}", to.display())
                }
                Err(e) => {
                    tracing::warn!(cluster = %c.name, "cannot keep the control plane's logs: {e}")
                }
            }
        }
    }

    fn milestones(&self) -> Vec<Milestone> {
        self.timings()
    }

    async fn teardown(&mut self) -> Result<(), TargetError> {
        self.clusters.clear();
        Ok(())
    }
}

/// Copies every `*.log` in `dir` and its subdirectories (one level: `istiod-<n>/istiod.log`)
/// into `to` as `<subdirectory>_<name>`; nothing else (the directory holds keys). Returns how
/// many.
pub fn copy_logs(dir: &Path, to: &Path) -> std::io::Result<usize> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let sub = entry.file_name().to_string_lossy().into_owned();
            for inner in std::fs::read_dir(&path)?.flatten() {
                let p = inner.path();
                if p.extension().is_some_and(|e| e == "log") && p.is_file() {
                    logs.push((format!("{sub}_{}", inner.file_name().to_string_lossy()), p));
                }
            }
        } else if path.extension().is_some_and(|e| e == "log") {
            logs.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    if !logs.is_empty() {
        std::fs::create_dir_all(to)?;
    }
    for (name, from) in &logs {
        std::fs::copy(from, to.join(name))?;
    }
    Ok(logs.len())
}

/// A TokenRequest for `ns/service_account` with audience `istio-ca`, as the kubelet projects
/// one into a pod (the ServiceAccount is created if missing; the namespace must exist).
async fn token_for(
    client: &kube::Client,
    ns: &str,
    service_account: &str,
) -> Result<String, TargetError> {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), ns);
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(service_account.to_owned());
    match accounts.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            return Err(backend(
                format!("create ServiceAccount `{ns}/{service_account}`"),
                e,
            ));
        }
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![CA_AUDIENCE.to_owned()]),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(service_account, &PostParams::default(), &request)
        .await
        .map_err(|e| backend(format!("request a token for `{ns}/{service_account}`"), e))?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| TargetError::Signing {
            identity: format!("{ns}/{service_account}"),
            reason: "the API server returned a TokenRequest without a token".into(),
        })
}

/// The certificates of `istio-ca-root-cert`'s `root-cert.pem` in `cluster`/`ns`.
fn published_roots(
    pem: &str,
    cluster: &str,
    ns: &str,
) -> Result<Vec<CertificateDer<'static>>, TargetError> {
    crate::pki::parse_certs(pem.as_bytes(), Path::new(ROOT_CONFIGMAP)).map_err(|cause| {
        TargetError::Bundle {
            dir: format!("{cluster}/{ns}/{ROOT_CONFIGMAP}"),
            cause,
        }
    })
}

fn plug_in_error(cluster: &str, e: KubeError) -> TargetError {
    backend(format!("plug in cacerts in `{cluster}`"), e)
}

/// How many times istiod has answered a change of its plugged files (taken, ignored or
/// refused; `pilot/pkg/bootstrap/istio_ca.go`, Istio 1.31).
fn reload_answers(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains(reload::LOG_APPLIED)
                || l.contains(reload::LOG_MULTI_ROOT_DISABLED)
                || l.contains(reload::LOG_ROOT_NOT_SUPPORTED)
                || l.contains(reload::LOG_FAILED_PREFIX)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clusters_logs_are_copied_and_its_keys_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("etcd.log"), "etcd up").unwrap();
        std::fs::write(d.join("kube-apiserver.log"), "serving").unwrap();
        std::fs::create_dir(d.join("istiod-1")).unwrap();
        std::fs::write(d.join("istiod-1/istiod.log"), "Use local CA certificate").unwrap();
        std::fs::create_dir_all(d.join("istiod-1/etc/cacerts")).unwrap();
        std::fs::write(d.join("istiod-1/etc/cacerts/ca-key.pem"), "KEY").unwrap();
        std::fs::write(d.join("sa.key"), "KEY").unwrap();
        std::fs::write(d.join("apiserver.key"), "KEY").unwrap();
        let to = tempfile::tempdir().unwrap();
        let out = to.path().join("plugin-ca/cluster1");
        assert_eq!(copy_logs(d, &out).unwrap(), 3);
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["etcd.log", "istiod-1_istiod.log", "kube-apiserver.log"]
        );
        assert_eq!(
            std::fs::read_to_string(out.join("istiod-1_istiod.log")).unwrap(),
            "Use local CA certificate"
        );
        // The twin: a cluster directory without logs makes no evidence directory.
        let empty = tempfile::tempdir().unwrap();
        let none = to.path().join("none");
        assert_eq!(copy_logs(empty.path(), &none).unwrap(), 0);
        assert!(!none.exists());
    }

    #[test]
    fn the_sweep_removes_the_directories_of_dead_runs_only() {
        let temp = tempfile::tempdir().unwrap();
        // pid 1 always runs; 4194305 is above Linux's largest pid.
        let live = temp.path().join(format!("{DIR_PREFIX}1-cluster1.abc"));
        let dead = temp
            .path()
            .join(format!("{DIR_PREFIX}4194305-cluster1.abc"));
        let other = temp.path().join("meshtrust-run.abc");
        for d in [&live, &dead, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("ca-key.pem"), b"k").unwrap();
        }
        assert_eq!(sweep_stale_dirs(temp.path()), std::slice::from_ref(&dead));
        assert!(live.exists() && other.exists() && !dead.exists());
    }
}
