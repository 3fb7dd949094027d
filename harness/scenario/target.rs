//! The target interface: what a scenario can ask of a mesh, local or on kind.
//!
//! Every verb returns data as observed (a captured chain, an HTTP outcome, the
//! bytes of a ConfigMap), never a verdict. Nothing here names a local-only
//! type, so that the kind target implements the same trait.

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use rustls_pki_types::CertificateDer;

pub use crate::istio::IstioVersion;

/// What `install` is given.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub version: IstioVersion,
    /// The mesh's trust domain (`meshConfig.trustDomain`).
    pub trust_domain: String,
    /// `ISTIO_MULTIROOT_MESH=true`: a hot-reloaded root bundle may replace the root.
    pub multi_root: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            version: IstioVersion::LATEST,
            trust_domain: "cluster.local".into(),
            multi_root: false,
        }
    }
}

/// What `upgrade` is given: the version to move to and, for targets that run istioctl, which
/// one (`None`: the target's configured second istioctl).
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    pub version: IstioVersion,
    pub istioctl: Option<std::path::PathBuf>,
}

/// Where istiod's signing CA came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaSource {
    /// The plugged `cacerts` bundle ("Use local CA certificate").
    PluggedIn,
    /// istiod's own root in `istio-ca-secret` ("Use self-signed certificate as the CA certificate").
    SelfSigned,
}

/// The result of `install`: istiod running (with which CA), or istiod refusing to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    Installed {
        ca: CaSource,
        /// istiod's log lines about its CA, as it prints them.
        log: Vec<String>,
    },
    Refused {
        /// istiod's reason, verbatim.
        reason: String,
        log: Vec<String>,
    },
}

/// The sample applications of the doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Httpbin,
    Sleep,
}

impl App {
    /// The deployment's name, which is also its service account's.
    pub fn name(self) -> &'static str {
        match self {
            App::Httpbin => "httpbin",
            App::Sleep => "sleep",
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A deployed workload: cluster, namespace, name (= service account).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct WorkloadRef {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

impl WorkloadRef {
    pub fn new(cluster: &str, namespace: &str, app: App) -> Self {
        WorkloadRef {
            cluster: cluster.into(),
            namespace: namespace.into(),
            name: app.name().into(),
        }
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}

/// PeerAuthentication `mtls.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    Strict,
    /// Istio's default when no PeerAuthentication exists.
    Permissive,
}

/// How a request leaves the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Through the client's sidecar: mTLS with its workload certificate.
    Mtls,
    /// Straight to the server's port, no TLS (a workload without a sidecar).
    Plaintext,
}

/// How the capturing handshake ended. The chain is recorded either way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", content = "error", rename_all = "lowercase")]
pub enum Handshake {
    Completed,
    Failed(String),
}

/// The certificates a workload presented during a TLS handshake, in the order it sent them.
#[derive(Debug, Clone)]
pub struct CapturedChain {
    pub chain: Vec<CertificateDer<'static>>,
    /// The workload whose chain this is.
    pub server: WorkloadRef,
    /// The workload the probe stood beside.
    pub client: WorkloadRef,
    /// The negotiated TLS version (`TLSv1.3`), when the server got that far.
    pub protocol: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub handshake: Handshake,
}

/// What a request observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response {
        status: u16,
        body: Vec<u8>,
    },
    /// No HTTP response: the connection was refused, reset, or the handshake failed.
    Refused {
        reason: String,
    },
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            Outcome::Refused { .. } => None,
        }
    }

    pub fn body_text(&self) -> Option<String> {
        match self {
            Outcome::Response { body, .. } => Some(String::from_utf8_lossy(body).into_owned()),
            Outcome::Refused { .. } => None,
        }
    }
}

/// The revision of the control plane installed without `--revision`, where revisions are
/// named: Istio's charts label its istiod pods `istio.io/rev=default`, and `istio.io/rev=default`
/// on a namespace selects it (`manifests/charts/istio-control/istio-discovery`, every release
/// since revisions exist; the e2e-tools tier checks it against the real istioctl 1.31).
pub const DEFAULT_REVISION: &str = "default";

/// The revision a canary upgrade installs beside the running control plane.
pub const CANARY_REVISION: &str = "canary";

/// A target could not carry out a verb (as opposed to observing a refusal, which is data).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no cluster `{0}` (hint: `plug_in` or `install` it first)")]
    UnknownCluster(String),
    #[error("istio is not installed in cluster `{0}` (hint: call `install` first)")]
    NotInstalled(String),
    #[error("istiod refused to start in cluster `{cluster}`: {reason}")]
    IstiodDown { cluster: String, reason: String },
    #[error("no workload `{0}` (hint: `deploy` it first)")]
    UnknownWorkload(WorkloadRef),
    #[error(
        "no control plane of revision `{revision}` in cluster `{cluster}` (hint: `install_revision` it first)"
    )]
    UnknownRevision { cluster: String, revision: String },
    #[error(
        "the {target} target cannot {verb} yet (hint: run this scenario on the local target: `--target local`)"
    )]
    Unsupported {
        target: &'static str,
        verb: &'static str,
    },
    #[error("cannot read the cacerts bundle `{dir}`: {cause}")]
    Bundle {
        dir: String,
        cause: crate::pki::PkiError,
    },
    #[error("the CA refused to sign for `{identity}`: {reason}")]
    Signing { identity: String, reason: String },
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("{what}: {cause}")]
    Backend {
        what: String,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One of a target's own timings, for the report: what happened, in which cluster, to which
/// istiod, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Milestone {
    /// The whole story in one line: `cluster1: istiod 1.30 (default) ready`.
    pub name: String,
    /// What happened: [`Milestone::API_SERVER_READY`], [`Milestone::ISTIOD_READY`] or
    /// [`Milestone::FIRST_CERTIFICATE`].
    pub event: &'static str,
    /// The logical cluster (`cluster1`).
    pub cluster: String,
    /// The istiod's Istio release (`1.30`), for istiod's events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The istiod's revision (`default`, `canary`), for istiod's events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// From the event's start (the process's spawn, istiod's start) to it; milliseconds in
    /// JSON.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: std::time::Duration,
}

fn millis<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Milestone {
    /// etcd and kube-apiserver answer (from their start).
    pub const API_SERVER_READY: &'static str = "api-server-ready";
    /// istiod serves (from its start).
    pub const ISTIOD_READY: &'static str = "istiod-ready";
    /// The first workload certificate istiod signed (from its start).
    pub const FIRST_CERTIFICATE: &'static str = "first-workload-certificate";

    /// `cluster: etcd + API server ready`.
    pub fn api_server_ready(cluster: &str, took: std::time::Duration) -> Milestone {
        Milestone {
            name: format!("{cluster}: etcd + API server ready"),
            event: Self::API_SERVER_READY,
            cluster: cluster.to_owned(),
            release: None,
            revision: None,
            duration: took,
        }
    }

    /// `cluster: istiod <release> (<revision>) ready`.
    pub fn istiod_ready(
        cluster: &str,
        release: &str,
        revision: &str,
        took: std::time::Duration,
    ) -> Milestone {
        let name = format!("{cluster}: istiod {release} ({revision}) ready");
        Self::of_istiod(name, Self::ISTIOD_READY, cluster, (release, revision), took)
    }

    /// `cluster: istiod start to first workload certificate`.
    pub fn first_certificate(
        cluster: &str,
        release: &str,
        revision: &str,
        took: std::time::Duration,
    ) -> Milestone {
        let name = format!("{cluster}: istiod start to first workload certificate");
        Self::of_istiod(
            name,
            Self::FIRST_CERTIFICATE,
            cluster,
            (release, revision),
            took,
        )
    }

    fn of_istiod(
        name: String,
        event: &'static str,
        cluster: &str,
        (release, revision): (&str, &str),
        took: std::time::Duration,
    ) -> Milestone {
        Milestone {
            name,
            event,
            cluster: cluster.to_owned(),
            release: Some(release.to_owned()),
            revision: Some(revision.to_owned()),
            duration: took,
        }
    }
}

/// A mesh the scenarios can drive. Implementations: `mesh::LocalTarget` (embedded), kind (e2e).
#[async_trait]
pub trait Target: Send + Sync {
    /// `local` or `kind`, for reports.
    fn name(&self) -> &'static str;

    /// `kubectl create secret generic cacerts -n istio-system --from-file=DIR`, or
    /// with `None` no secret at all (istiod will self-sign).
    async fn plug_in(&mut self, cluster: &str, bundle: Option<&Path>) -> Result<(), TargetError>;

    /// Installs istiod; a refusal to start is an outcome, not an error.
    async fn install(
        &mut self,
        cluster: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError>;

    /// Deploys `app` (with a sidecar) in `namespace`, and waits until it serves.
    async fn deploy(&mut self, cluster: &str, namespace: &str, app: App)
    -> Result<(), TargetError>;

    /// Applies a namespace-wide PeerAuthentication.
    async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        namespace: &str,
        mode: Mode,
    ) -> Result<(), TargetError>;

    /// The chain `to` presents to a probe beside `from` (which trusts nothing and records all).
    async fn capture_chain(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
    ) -> Result<CapturedChain, TargetError>;

    /// An HTTP GET of `path` from `from` to `to`.
    async fn request(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        transport: Transport,
        path: &str,
    ) -> Result<Outcome, TargetError>;

    /// A fresh workload certificate chain for `service_account`, as istiod returns it (leaf first).
    async fn issue_workload_certificate(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError>;

    /// The `root-cert.pem` key of ConfigMap `istio-ca-root-cert` in `namespace`, if it exists.
    async fn root_configmap(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<Option<Vec<u8>>, TargetError>;

    /// Replaces the plugged files with those of `dir` while istiod runs (istiod watches them).
    async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<(), TargetError>;

    /// Upgrades Istio in place (the same plugged cacerts), then restarts the workloads so that
    /// they run the new sidecar with freshly issued certificates. A refusal is an outcome.
    async fn upgrade(
        &mut self,
        cluster: &str,
        options: &UpgradeOptions,
    ) -> Result<InstallOutcome, TargetError>;

    /// Installs a second control plane beside the running one, as a canary upgrade does
    /// (`istioctl install --revision REVISION`), reading the same plugged `cacerts`. It
    /// serves no namespace until one is moved to it. A refusal is an outcome.
    async fn install_revision(
        &mut self,
        cluster: &str,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let _ = (cluster, revision, options);
        Err(TargetError::Unsupported {
            target: self.name(),
            verb: "install a control plane revision",
        })
    }

    /// Points `namespace` at `revision` (label `istio.io/rev=REVISION`, no
    /// `istio-injection`); pods started afterwards get that revision's sidecar and
    /// certificates. `default` is the unrevisioned control plane.
    async fn set_namespace_revision(
        &mut self,
        cluster: &str,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        let _ = (cluster, namespace, revision);
        Err(TargetError::Unsupported {
            target: self.name(),
            verb: "move a namespace to a revision",
        })
    }

    /// Restarts `app` (`kubectl rollout restart`): a new pod, injected by its namespace's
    /// revision, with a freshly issued certificate; waits until it serves.
    async fn restart(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        let _ = (cluster, namespace, app);
        Err(TargetError::Unsupported {
            target: self.name(),
            verb: "restart a workload",
        })
    }

    /// Removes one control plane revision (`istioctl uninstall --revision REVISION`);
    /// `default` is the unrevisioned one.
    async fn uninstall_revision(
        &mut self,
        cluster: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        let _ = (cluster, revision);
        Err(TargetError::Unsupported {
            target: self.name(),
            verb: "uninstall a control plane revision",
        })
    }

    /// The scenario `scenario` failed: keep what explains it (the kind target writes the pods
    /// and events of its clusters into the run's artifacts, one directory per scenario) before
    /// [`teardown`](Self::teardown) removes it. Nothing to keep by default.
    async fn keep_evidence(&mut self, scenario: &str) {
        let _ = scenario;
    }

    /// The target's own milestones so far, in order (the istiod target: `cluster1: etcd + API
    /// server ready`, `cluster1: istiod 1.31 (default) ready`, `cluster1: istiod start to first
    /// workload certificate`), for the report. None by default.
    fn milestones(&self) -> Vec<Milestone> {
        Vec::new()
    }

    /// The Istio release this target's install runs (what `meshtrust check` predicts istiod's
    /// refusals by): the istiod target's first pinned istiod, the kind target's install
    /// istioctl; the local model's is [`IstioVersion::LATEST`] unless asked otherwise.
    fn istio_version(&self) -> IstioVersion {
        IstioVersion::LATEST
    }

    /// Removes everything this target created.
    async fn teardown(&mut self) -> Result<(), TargetError>;
}
