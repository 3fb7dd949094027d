//! One local "cluster": the `cacerts` secret (a directory or none), istiod (its
//! CA loaded by istiod's rules and served over gRPC), the namespaces' mTLS
//! policies, and the workloads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::authority::{Authority, Reload};
use super::ca::Identity;
use super::grpc::CaServer;
use super::istiod::{self, Loaded};
use super::policy::Policies;
use super::workload::{Mesh, Workload, WorkloadError};
use crate::pki::{Bundle, KeyAlg, PkiError};
use crate::scenario::target::{
    App, InstallOptions, InstallOutcome, Mode, TargetError, WorkloadRef,
};

use crate::scenario::target::DEFAULT_REVISION;

/// Namespaces istiod does not publish `istio-ca-root-cert` into.
const NO_ROOT_CONFIGMAP: [&str; 3] = ["kube-public", "kube-node-lease", "local-path-storage"];

/// istiod, running.
struct Istiod {
    authority: Arc<Authority>,
    server: CaServer,
    options: InstallOptions,
}

/// The state of istiod in a cluster.
enum State {
    NotInstalled,
    /// istiod exited at start-up with this reason.
    Refused(String),
    Running(Istiod),
}

pub struct Cluster {
    name: String,
    cacerts: Option<PathBuf>,
    state: State,
    policies: Arc<Policies>,
    workloads: BTreeMap<(String, String), Workload>,
    log: Vec<String>,
    workload_key: KeyAlg,
    /// Control planes installed beside the default one (a canary upgrade), by revision.
    revisions: BTreeMap<String, Istiod>,
    /// `istio.io/rev` of each namespace moved off the default control plane.
    namespace_revisions: BTreeMap<String, String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("cacerts", &self.cacerts)
            .field("workloads", &self.workloads.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Cluster {
    pub fn new(name: impl Into<String>, workload_key: KeyAlg) -> Self {
        Cluster {
            name: name.into(),
            cacerts: None,
            state: State::NotInstalled,
            policies: Arc::new(Policies::default()),
            workloads: BTreeMap::new(),
            log: Vec::new(),
            workload_key,
            revisions: BTreeMap::new(),
            namespace_revisions: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// istiod's log lines so far (CA mode, refusals, reloads).
    pub fn istiod_log(&self) -> &[String] {
        &self.log
    }

    /// The `cacerts` secret: its files, or none.
    pub fn plug_in(&mut self, dir: Option<&Path>) {
        self.cacerts = dir.map(Path::to_owned);
    }

    fn read_cacerts(&self) -> Result<Option<Bundle>, TargetError> {
        let Some(dir) = &self.cacerts else {
            return Ok(None);
        };
        match Bundle::read(dir) {
            Ok(b) => Ok(Some(b)),
            // An empty secret mounts no files: istiod sees nothing to plug in.
            Err(PkiError::NotABundle { .. }) => Ok(None),
            Err(source) => Err(TargetError::Bundle {
                dir: dir.display().to_string(),
                cause: source,
            }),
        }
    }

    /// Starts istiod: plug-in mode with a complete, valid bundle; self-signed without one;
    /// a refusal (istiod exits) when the bundle fails istiod's checks.
    pub async fn install(
        &mut self,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        self.workloads.clear();
        let (outcome, istiod) = self.start_istiod(options).await?;
        self.state = match (istiod, &outcome) {
            (Some(istiod), _) => State::Running(istiod),
            (None, InstallOutcome::Refused { reason, .. }) => State::Refused(reason.clone()),
            (None, InstallOutcome::Installed { .. }) => State::NotInstalled,
        };
        Ok(outcome)
    }

    /// Starts a second istiod, `revision`, beside the running one, from the same plugged
    /// files (a canary upgrade); it serves the namespaces moved to it.
    pub async fn install_revision(
        &mut self,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let (outcome, istiod) = self.start_istiod(options).await?;
        if let Some(istiod) = istiod {
            self.revisions.insert(revision.to_owned(), istiod);
        }
        Ok(outcome)
    }

    /// Points `namespace` at `revision`; workloads (re)started there use its istiod.
    pub fn set_namespace_revision(
        &mut self,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        if revision != DEFAULT_REVISION && !self.revisions.contains_key(revision) {
            return Err(TargetError::UnknownRevision {
                cluster: self.name.clone(),
                revision: revision.to_owned(),
            });
        }
        self.namespace_revisions
            .insert(namespace.to_owned(), revision.to_owned());
        Ok(())
    }

    /// Stops `revision`'s istiod (`default`: the unrevisioned one).
    pub fn uninstall_revision(&mut self, revision: &str) -> Result<(), TargetError> {
        if revision == DEFAULT_REVISION {
            if !matches!(self.state, State::Running(_)) {
                return Err(TargetError::NotInstalled(self.name.clone()));
            }
            self.state = State::NotInstalled;
            return Ok(());
        }
        self.revisions
            .remove(revision)
            .map(|_| ())
            .ok_or_else(|| TargetError::UnknownRevision {
                cluster: self.name.clone(),
                revision: revision.to_owned(),
            })
    }

    /// istiod as the plugged files make it start: running (with its log) or refusing.
    async fn start_istiod(
        &mut self,
        options: &InstallOptions,
    ) -> Result<(InstallOutcome, Option<Istiod>), TargetError> {
        let now = OffsetDateTime::now_utc();
        let loaded = match self.read_cacerts()? {
            Some(bundle) => match istiod::load(&bundle, now, options.version) {
                Ok(loaded) => loaded,
                Err(refusal) => {
                    let mut log = Vec::new();
                    if refusal.rule != istiod::Rule::CompleteBundle {
                        log.push(istiod::LOG_PLUGGED_IN.to_owned());
                    }
                    // What pilot-discovery logs as it exits: its command and bootstrap wrap
                    // the CA's error (pilot/cmd/pilot-discovery/app/cmd.go, "failed to create
                    // discovery service"; pilot/pkg/bootstrap/server.go maybeCreateCA, "failed
                    // to create CA"; Istio 1.30 and 1.31).
                    log.push(format!(
                        "failed to create discovery service: failed to create CA: {}",
                        refusal.reason
                    ));
                    self.log.extend(log.iter().cloned());
                    return Ok((
                        InstallOutcome::Refused {
                            reason: refusal.reason,
                            log,
                        },
                        None,
                    ));
                }
            },
            None => Loaded::Ignored,
        };
        let signer = match loaded {
            Loaded::PluggedIn(signer) => *signer,
            Loaded::Ignored => {
                let td = options.trust_domain.clone();
                tokio::task::spawn_blocking(move || istiod::self_signed(&td, now))
                    .await
                    .expect("root generation does not panic")
                    .map_err(|source| TargetError::Bundle {
                        dir: "istio-ca-secret".into(),
                        cause: source,
                    })?
            }
        };
        let source = signer.source();
        let authority = Arc::new(Authority::new(signer, options.trust_domain.clone()));
        let server =
            CaServer::start(authority.clone())
                .await
                .map_err(|source| TargetError::Io {
                    what: format!("start istiod's CA server in cluster `{}`", self.name),
                    cause: source,
                })?;
        let log = vec![istiod::log_line(source).to_owned()];
        self.log.extend(log.iter().cloned());
        Ok((
            InstallOutcome::Installed { ca: source, log },
            Some(Istiod {
                authority,
                server,
                options: options.clone(),
            }),
        ))
    }

    /// The istiod serving `namespace`: its revision's, else the default one.
    fn istiod_for(&self, namespace: &str) -> Result<&Istiod, TargetError> {
        match self.namespace_revisions.get(namespace) {
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

    /// The istiod that writes `istio-ca-root-cert` into every namespace: one istiod per cluster
    /// does, whatever the namespaces' revisions, because the namespace controller runs under
    /// one leader election shared by all revisions (`istio-namespace-controller-election`, not
    /// per revision; `pilot/pkg/leaderelection/leaderelection.go` and
    /// `pilot/pkg/serviceregistry/kube/controller/multicluster.go`, Istio 1.31). The first
    /// istiod keeps it (no default revision tag here to prioritise another): the default one
    /// while it runs, then a revision. Seen with real istiod: a canary that self-signs does not
    /// replace the published root (the istiod target's canary twin).
    fn publisher(&self) -> Option<&Istiod> {
        match &self.state {
            State::Running(i) => Some(i),
            _ => self.revisions.values().next(),
        }
    }

    /// What a workload in `namespace` is given: its istiod's CA address, the roots of
    /// `istio-ca-root-cert` (which the agent trusts for istiod and the sidecar for peers:
    /// the publisher's, see [`publisher`](Self::publisher)), the trust domain.
    pub fn mesh_for(&self, namespace: &str) -> Result<Mesh, TargetError> {
        let istiod = self.istiod_for(namespace)?;
        let publisher = self.publisher().unwrap_or(istiod);
        Ok(Mesh {
            ca_addr: istiod.server.addr(),
            roots: publisher.authority.signer().roots().to_vec(),
            trust_domain: istiod.options.trust_domain.clone(),
            policies: self.policies.clone(),
        })
    }

    pub fn mint_token_for(
        &self,
        namespace: &str,
        identity: Identity,
    ) -> Result<String, TargetError> {
        Ok(self.istiod_for(namespace)?.authority.mint_token(identity))
    }

    fn istiod(&self) -> Result<&Istiod, TargetError> {
        match &self.state {
            State::Running(i) => Ok(i),
            State::NotInstalled => Err(TargetError::NotInstalled(self.name.clone())),
            State::Refused(reason) => Err(TargetError::IstiodDown {
                cluster: self.name.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The running CA, for tests that call it directly.
    pub fn authority(&self) -> Result<Arc<Authority>, TargetError> {
        Ok(self.istiod()?.authority.clone())
    }

    /// The loopback address of istiod's CA port.
    pub fn ca_addr(&self) -> Result<std::net::SocketAddr, TargetError> {
        Ok(self.istiod()?.server.addr())
    }

    /// A service-account token for `identity`, as the kubelet projects one into a pod.
    pub fn mint_token(&self, identity: Identity) -> Result<String, TargetError> {
        Ok(self.istiod()?.authority.mint_token(identity))
    }

    /// The roots workloads trust: `istio-ca-root-cert`'s.
    pub fn roots(&self) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        Ok(self.istiod()?.authority.signer().roots().to_vec())
    }

    pub fn mesh(&self) -> Result<Mesh, TargetError> {
        let istiod = self.istiod()?;
        Ok(Mesh {
            ca_addr: istiod.server.addr(),
            roots: istiod.authority.signer().roots().to_vec(),
            trust_domain: istiod.options.trust_domain.clone(),
            policies: self.policies.clone(),
        })
    }

    pub async fn deploy(&mut self, namespace: &str, app: App) -> Result<(), TargetError> {
        let id = WorkloadRef::new(&self.name, namespace, app);
        let token = self.mint_token_for(namespace, Identity::new(namespace, app.name()))?;
        let workload = Workload::start(
            id.clone(),
            app,
            self.workload_key,
            &token,
            self.mesh_for(namespace)?,
        )
        .await
        .map_err(|e| workload_error(&id, e))?;
        self.workloads
            .insert((namespace.to_owned(), app.name().to_owned()), workload);
        Ok(())
    }

    /// Restarts istiod (same plugged files, `version`'s rules) and then every workload, in
    /// place, as `istioctl upgrade` and a rollout restart do.
    pub async fn upgrade(
        &mut self,
        version: crate::scenario::IstioVersion,
    ) -> Result<InstallOutcome, TargetError> {
        let mut options = self.istiod()?.options.clone();
        options.version = version;
        let deployed: Vec<(String, App)> = self
            .workloads
            .iter()
            .map(|((ns, _), w)| (ns.clone(), w.app()))
            .collect();
        let outcome = self.install(&options).await?;
        if matches!(outcome, InstallOutcome::Installed { .. }) {
            for (ns, app) in deployed {
                self.deploy(&ns, app).await?;
            }
        }
        Ok(outcome)
    }

    pub fn workload(&self, id: &WorkloadRef) -> Result<&Workload, TargetError> {
        self.workloads
            .get(&(id.namespace.clone(), id.name.clone()))
            .ok_or_else(|| TargetError::UnknownWorkload(id.clone()))
    }

    pub fn set_peer_authentication(&self, namespace: &str, mode: Mode) {
        self.policies.set(namespace, mode);
    }

    /// ConfigMap `istio-ca-root-cert`'s `root-cert.pem` in `namespace`, while an istiod runs:
    /// the publisher's root, whichever revision serves the namespace.
    pub fn root_configmap(&self, namespace: &str) -> Option<Vec<u8>> {
        if NO_ROOT_CONFIGMAP.contains(&namespace) {
            return None;
        }
        self.publisher()
            .map(|i| i.authority.signer().root_pem().to_vec())
    }

    /// New files in the secret: istiod hot-reloads them (or ignores or rejects them).
    pub fn reload_cacerts(&mut self, dir: &Path) -> Result<Reload, TargetError> {
        let istiod = self.istiod()?;
        let bundle = Bundle::read(dir).map_err(|source| TargetError::Bundle {
            dir: dir.display().to_string(),
            cause: source,
        })?;
        let reload =
            istiod
                .authority
                .reload(&bundle, istiod.options.version, istiod.options.multi_root);
        // istiod's own lines (pilot/pkg/bootstrap istio_ca.go handleEvent).
        self.log.push(crate::istio::reload::LOG_UPDATE.to_owned());
        self.log.push(reload.log_line());
        self.cacerts = Some(dir.to_owned());
        Ok(reload)
    }
}

/// A CA that refused the agent is a signing failure; anything else is the backend's.
pub(crate) fn workload_error(id: &WorkloadRef, e: WorkloadError) -> TargetError {
    match e {
        WorkloadError::Refused { status, .. } => TargetError::Signing {
            identity: id.to_string(),
            reason: status.message().to_owned(),
        },
        other => TargetError::Backend {
            what: format!("start `{id}`"),
            cause: Box::new(other),
        },
    }
}
