//! The dry run: the ordered plan of a kind run, every process with its argv and every API
//! object with kind/namespace/name. The scenarios themselves drive it: each scenario's own
//! code runs against [`PlanTarget`], which emits, verb by verb, the steps the kind target takes
//! (from the same command and object builders), and answers as the local model does. So the
//! plan shows each scenario's steps in the order the run takes them, and a test compares it
//! with what the kind target ran against recording fakes. Secret data is shown as
//! `<redacted>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rustls_pki_types::CertificateDer;

use super::cluster::ClusterRef;
use super::config::{KindRun, ProbeDelivery};
use super::istio::{self, CaMode};
use super::kind::{self, Subnets};
use super::plugin::{ISTIO_NAMESPACE, ROOT_CONFIGMAP};
use super::probe;
use super::process::Cmd;
use super::registry;
use super::target::InstallStep;
use super::tools::ToolName;
use super::workloads::{self, HTTPBIN_CONTAINER_PORT, HTTPBIN_SERVICE_PORT, MtlsMode};
use crate::mesh::LocalTarget;
use crate::pki::KeyAlg;
use crate::pki::layout::CACERTS_FILES;
use crate::scenario::RunCerts;
use crate::scenario::record::Recorder;
use crate::scenario::target::{
    App, CaSource, CapturedChain, InstallOptions, InstallOutcome, Mode, Outcome, Target,
    TargetError, Transport, UpgradeOptions, WorkloadRef,
};

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStep {
    /// The start of a scenario's steps (a heading, not a step).
    Scenario { name: String, expect: String },
    /// A process, by its short command line.
    Run { phase: String, cmd: String },
    /// Server-side apply of an object.
    Apply {
        phase: String,
        cluster: String,
        object: String,
        /// Extra detail: labels, redacted data keys.
        detail: Option<String>,
    },
    Delete {
        phase: String,
        cluster: String,
        object: String,
    },
    Read {
        phase: String,
        cluster: String,
        object: String,
    },
    Exec {
        phase: String,
        cluster: String,
        target: String,
        argv: String,
        stdin: Option<String>,
    },
    Wait {
        phase: String,
        cluster: String,
        what: String,
        deadline_s: u64,
    },
    Check {
        phase: String,
        cluster: String,
        what: String,
    },
}

impl fmt::Display for PlanStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanStep::Scenario { name, expect } => {
                write!(f, "-- scenario {name} (expected: {expect})")
            }
            PlanStep::Run { phase, cmd } => write!(f, "[{phase}] run    {cmd}"),
            PlanStep::Apply {
                phase,
                cluster,
                object,
                detail,
            } => {
                write!(f, "[{phase}] apply  {cluster}: {object}")?;
                if let Some(d) = detail {
                    write!(f, " {d}")?;
                }
                Ok(())
            }
            PlanStep::Delete {
                phase,
                cluster,
                object,
            } => {
                write!(f, "[{phase}] delete {cluster}: {object} (if present)")
            }
            PlanStep::Read {
                phase,
                cluster,
                object,
            } => write!(f, "[{phase}] read   {cluster}: {object}"),
            PlanStep::Exec {
                phase,
                cluster,
                target,
                argv,
                stdin,
            } => {
                write!(f, "[{phase}] exec   {cluster}: {target}: {argv}")?;
                if let Some(s) = stdin {
                    write!(f, " < {s}")?;
                }
                Ok(())
            }
            PlanStep::Wait {
                phase,
                cluster,
                what,
                deadline_s,
            } => {
                write!(
                    f,
                    "[{phase}] wait   {cluster}: {what} (deadline {deadline_s}s)"
                )
            }
            PlanStep::Check {
                phase,
                cluster,
                what,
            } => write!(f, "[{phase}] check  {cluster}: {what}"),
        }
    }
}

/// Where the steps go: the plan's lines, and every command line with its phase (run, or
/// `<phase> (if)` when it runs only on a condition): what the e2e-tools tier checks against
/// the real kind and istioctl, and what a recorded run is compared with.
#[derive(Debug, Default)]
struct Planner {
    steps: Vec<PlanStep>,
    cmds: Vec<(String, Cmd)>,
}

impl Planner {
    fn run(&mut self, phase: &str, cmd: Cmd) {
        // The full program as configured: bare `kind`/`docker`, and each phase's istioctl path
        // (which one installs and which upgrades is the point of an upgrade plan).
        self.steps.push(PlanStep::Run {
            phase: phase.into(),
            cmd: cmd.to_string(),
        });
        self.cmds.push((phase.to_owned(), cmd));
    }

    /// A command that runs only on a condition, shown in a check step.
    fn maybe(&mut self, phase: &str, cmd: &Cmd) -> String {
        self.maybe_when(phase, "(if)", cmd)
    }

    /// [`Planner::maybe`] with its condition named (`(if <scenario> fails)`, `(if the run
    /// fails)`), so that a recorded run can be compared with the plan of its outcome.
    fn maybe_when(&mut self, phase: &str, condition: &str, cmd: &Cmd) -> String {
        self.cmds
            .push((format!("{phase} {condition}"), cmd.clone()));
        cmd.display_short()
    }
    fn apply(&mut self, phase: &str, cluster: &str, object: String, detail: Option<String>) {
        self.steps.push(PlanStep::Apply {
            phase: phase.into(),
            cluster: cluster.into(),
            object,
            detail,
        });
    }
    fn delete(&mut self, phase: &str, cluster: &str, object: String) {
        self.steps.push(PlanStep::Delete {
            phase: phase.into(),
            cluster: cluster.into(),
            object,
        });
    }
    fn read(&mut self, phase: &str, cluster: &str, object: String) {
        self.steps.push(PlanStep::Read {
            phase: phase.into(),
            cluster: cluster.into(),
            object,
        });
    }
    fn exec(&mut self, phase: &str, cluster: &str, container: &str, argv: String) {
        self.steps.push(PlanStep::Exec {
            phase: phase.into(),
            cluster: cluster.into(),
            target: format!("<sleep pod>/{container}"),
            argv,
            stdin: None,
        });
    }
    fn wait(&mut self, phase: &str, cluster: &str, what: String, p: super::wait::Patience) {
        self.steps.push(PlanStep::Wait {
            phase: phase.into(),
            cluster: cluster.into(),
            what,
            deadline_s: p.deadline.as_secs(),
        });
    }
    fn check(&mut self, phase: &str, cluster: &str, what: String) {
        self.steps.push(PlanStep::Check {
            phase: phase.into(),
            cluster: cluster.into(),
            what,
        });
    }
}

/// A whole kind run's plan: the clusters, then each scenario's steps as the kind target takes
/// them, then the cleanup.
#[derive(Debug, Default)]
pub struct Plan {
    planner: Planner,
}

impl Plan {
    /// Every step, in order.
    pub fn steps(&self) -> &[PlanStep] {
        &self.planner.steps
    }

    /// Every command line, including those that run only on a condition.
    pub fn commands(&self) -> Vec<Cmd> {
        self.planner.cmds.iter().map(|(_, c)| c.clone()).collect()
    }

    /// The commands a run in which the scenarios `failed` fail runs, in order: the
    /// unconditional ones, each failed scenario's evidence, the cluster logs of a failed run,
    /// and those of the other `conditions` that held ([`KUBECTL_FOUND`], [`REGISTRY_UP`] or
    /// [`REGISTRY_DOWN`]).
    pub fn commands_of_run(&self, failed: &[&str], conditions: &[&str]) -> Vec<Cmd> {
        let when: Vec<String> = failed
            .iter()
            .map(|s| format!("(if {s} fails)"))
            .chain((!failed.is_empty()).then(|| RUN_FAILS.to_owned()))
            .chain(conditions.iter().map(|c| (*c).to_owned()))
            .collect();
        self.planner
            .cmds
            .iter()
            .filter(|(p, _)| !p.contains("(if") || when.iter().any(|w| p.ends_with(w.as_str())))
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// The physical clusters of a plan: made by the run (kind) or given (`--target kubeconfig`).
#[derive(Debug, Clone)]
pub enum PlannedClusters {
    /// `kind create cluster` for each of `run.clusters`, deleted at the end.
    Created,
    /// Existing clusters by context; nothing is created or deleted but what the scenarios make.
    Attached(Vec<ClusterRef>),
}

/// Plans `run`: the clusters, then every scenario of `run.scenarios`, driven by the scenario
/// code itself against a [`PlanTarget`] (the kind target's steps, with the local model's
/// answers), then the cleanup. `certs` are the bundles the scenarios plug in.
///
/// # Errors
/// A scenario the local model cannot carry out (it then cannot be planned either).
pub async fn plan_run(
    run: &KindRun,
    clusters: &PlannedClusters,
    certs: &RunCerts,
) -> Result<Plan, TargetError> {
    let sink = Arc::new(Mutex::new(Planner::default()));
    let refs = planned_refs(run, clusters);
    let created = matches!(clusters, PlannedClusters::Created);
    {
        let mut p = lock(&sink);
        setup_steps(&mut p, run, &refs, created);
    }
    let registry = Arc::new(Mutex::new(false));
    let silent = |_: &str, _: &str| {};
    for &scenario in &run.scenarios {
        lock(&sink).steps.push(PlanStep::Scenario {
            name: scenario.name().to_owned(),
            expect: scenario.expectation().to_owned(),
        });
        let mut target = PlanTarget {
            run: run.clone(),
            refs: refs.clone(),
            created,
            slots: refs.iter().map(|_| Slot::default()).collect(),
            connected: Mutex::new(false),
            policy_pending: Mutex::new(BTreeMap::new()),
            registry: registry.clone(),
            local: LocalTarget::with_workload_key(KeyAlg::P256),
            sink: sink.clone(),
        };
        let mut rec = Recorder::new(scenario.name(), &silent);
        scenario.run(&mut target, certs, &mut rec).await?;
        let kubectl = Path::new(ToolName::Kubectl.binary());
        {
            let mut p = lock(&sink);
            for r in &refs {
                let dump = p.maybe_when(
                    "evidence",
                    &format!("(if {} fails)", scenario.name()),
                    &super::target::kubectl_dump_cmd(kubectl, r),
                );
                p.check(
                    "evidence",
                    &r.cluster,
                    format!(
                        "if the scenario fails: {dump} > {}",
                        super::target::scenario_artifacts(&run.artifacts, scenario.name())
                            .join(format!("{}-pods-events.txt", r.cluster))
                            .display()
                    ),
                );
            }
        }
        target.teardown().await?;
    }
    if created {
        let mut p = lock(&sink);
        cleanup_steps(&mut p, run, &refs);
    }
    let planner = std::mem::take(&mut *lock(&sink));
    Ok(Plan { planner })
}

fn lock(sink: &Mutex<Planner>) -> std::sync::MutexGuard<'_, Planner> {
    sink.lock().unwrap_or_else(|e| e.into_inner())
}

/// The clusters as the run will address them: each its own kubeconfig in the work dir and its
/// kind context, or the given ones.
fn planned_refs(run: &KindRun, clusters: &PlannedClusters) -> Vec<ClusterRef> {
    match clusters {
        PlannedClusters::Attached(refs) => refs.clone(),
        PlannedClusters::Created => run
            .clusters
            .iter()
            .map(|c| {
                let name = kind::cluster_name(&run.prefix, c);
                ClusterRef {
                    cluster: c.clone(),
                    kubeconfig: Some(kind::kubeconfig_path(&run.workdir, &name)),
                    context: Some(kind::context_name(&name)),
                }
            })
            .collect(),
    }
}

fn setup_steps(p: &mut Planner, run: &KindRun, refs: &[ClusterRef], created: bool) {
    for step in preflight_cmds(run, created) {
        p.run("preflight", step);
    }
    if !created {
        // `--target kubeconfig` needs neither, and asks each that is on PATH all the same.
        for (cmd, when) in [
            (
                Cmd::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
                DOCKER_FOUND,
            ),
            (Cmd::new("kind").arg("version"), KIND_FOUND),
        ] {
            let shown = p.maybe_when("preflight", when, &cmd);
            p.check(
                "preflight",
                "-",
                format!("if it is on PATH: {shown} (not needed here)"),
            );
        }
    }
    let kubectl = Cmd::new(ToolName::Kubectl.binary()).args(["version", "--client"]);
    let shown = p.maybe_when("preflight", KUBECTL_FOUND, &kubectl);
    p.check(
        "preflight",
        "-",
        format!("if kubectl is on PATH: {shown} (it dumps pods and events of failed scenarios)"),
    );
    if !created {
        for r in refs {
            p.check(
                "clusters",
                &r.cluster,
                format!(
                    "existing cluster: context `{}` of {}",
                    r.context.as_deref().unwrap_or("(current)"),
                    r.kubeconfig
                        .as_ref()
                        .map_or("KUBECONFIG or ~/.kube/config".to_owned(), |k| k
                            .display()
                            .to_string())
                ),
            );
        }
        return;
    }
    let docker = Path::new(ToolName::Docker.binary());
    let kind_bin = Path::new(ToolName::Kind.binary());
    let names: Vec<String> = refs
        .iter()
        .map(|r| kind::cluster_name(&run.prefix, &r.cluster))
        .collect();
    p.run("clusters", kind::get_clusters_cmd(kind_bin));
    p.check(
        "clusters",
        "-",
        format!(
            "delete clusters named `{}*` left by runs that started before this one",
            kind::SWEEP_PREFIX
        ),
    );
    for (i, name) in names.iter().enumerate() {
        let config = run.workdir.join(format!("{name}.kind.yaml"));
        let subnets = Subnets::for_cluster(i + 1);
        p.check(
            "clusters",
            name,
            format!(
                "write {} from {} with podSubnet {} and serviceSubnet {}",
                config.display(),
                run.kind_config_name(),
                subnets.as_ref().map_or("?", |s| s.pod.as_str()),
                subnets.as_ref().map_or("?", |s| s.service.as_str()),
            ),
        );
        let kubeconfig = kind::kubeconfig_path(&run.workdir, name);
        p.run(
            "clusters",
            kind::create_cmd(kind_bin, name, &config, &kubeconfig),
        );
        p.check(
            "clusters",
            name,
            format!(
                "{} is the run's own kubeconfig, mode 0600",
                kubeconfig.display()
            ),
        );
    }
    // Istio's images are tagged with each istioctl's own version, known after preflight.
    let versions: Vec<String> = if run.istio_versions.is_empty() {
        (1..=run.istioctl.len())
            .map(|i| format!("<version of istioctl {i}>"))
            .collect()
    } else {
        run.istio_versions.clone()
    };
    let images = kind::run_images(&versions, &[workloads::HTTPBIN_YAML, workloads::SLEEP_YAML]);
    for cmd in kind::preload_cmds(docker, kind_bin, &images, &names) {
        p.run("images", cmd);
    }
}

fn cleanup_steps(p: &mut Planner, run: &KindRun, refs: &[ClusterRef]) {
    let kind_bin = Path::new(ToolName::Kind.binary());
    for r in refs {
        let name = kind::cluster_name(&run.prefix, &r.cluster);
        let kubeconfig = kind::kubeconfig_path(&run.workdir, &name);
        let export = p.maybe_when(
            "cleanup",
            RUN_FAILS,
            &kind::export_logs_cmd(kind_bin, &name, &run.artifacts.join(&name), &kubeconfig),
        );
        p.check("cleanup", &name, format!("on failure: {export}"));
        let delete = kind::delete_cmd(kind_bin, &name, &kubeconfig);
        if run.keep {
            p.maybe("cleanup", &delete);
            p.check(
                "cleanup",
                &name,
                "keep (--keep / MESHTRUST_KEEP): not deleted".into(),
            );
        } else {
            p.run("cleanup", delete);
        }
    }
}

fn preflight_cmds(run: &KindRun, created: bool) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    if created {
        cmds.push(Cmd::new("docker").args(["info", "--format", "{{.ServerVersion}}"]));
        cmds.push(Cmd::new("kind").arg("version"));
    }
    for istioctl in &run.istioctl {
        cmds.push(Cmd::new(istioctl).args(["version", "--remote=false"]));
    }
    cmds
}

/// What one scenario has done to one physical cluster, as [`super::target::KindTarget`] keeps
/// it: the same fields decide the same steps.
#[derive(Debug, Default)]
struct Slot {
    occupant: Option<String>,
    /// Namespaces this scenario created, in order (a fresh cluster has none of them).
    owned: Vec<String>,
    plugged: bool,
    installed: bool,
    trust_domain: Option<String>,
    deployed: BTreeSet<(String, String)>,
}

impl Slot {
    /// `OwnedNamespaces::ensure`: applied every time, owned the first time.
    fn ensure(&mut self, p: &mut Planner, phase: &str, cluster: &str, ns: &str, labels: &str) {
        let detail = (!labels.is_empty()).then(|| format!("labels {{{labels}}}"));
        p.apply(phase, cluster, format!("Namespace {ns}"), detail);
        if !self.owned.iter().any(|o| o == ns) {
            self.owned.push(ns.to_owned());
        }
    }
}

/// The kind target as a plan: each verb emits the steps [`super::target::KindTarget`] takes
/// for it (placement and the reset between logical clusters, the lazy connection of clusters,
/// the polls after a policy change), from the same command and object builders; the answers
/// the scenario sees come from the local model ([`LocalTarget`]), so that the scenario takes
/// the path a conformant mesh makes it take. A test runs scenarios on the kind target against
/// recording fakes and compares what ran with this plan.
pub struct PlanTarget {
    run: KindRun,
    refs: Vec<ClusterRef>,
    created: bool,
    slots: Vec<Slot>,
    connected: Mutex<bool>,
    policy_pending: Mutex<BTreeMap<(usize, String), Mode>>,
    /// The probe image's registry is started once per run.
    registry: Arc<Mutex<bool>>,
    local: LocalTarget,
    sink: Arc<Mutex<Planner>>,
}

impl PlanTarget {
    fn p(&self) -> std::sync::MutexGuard<'_, Planner> {
        lock(&self.sink)
    }

    fn slot(&self, logical: &str) -> Result<usize, TargetError> {
        self.slots
            .iter()
            .position(|s| s.occupant.as_deref() == Some(logical))
            .ok_or_else(|| TargetError::UnknownCluster(logical.to_owned()))
    }

    /// `KindTarget::place`.
    fn place(&mut self, logical: &str) -> Result<usize, TargetError> {
        if let Ok(i) = self.slot(logical) {
            return Ok(i);
        }
        let physical: Vec<String> = self.refs.iter().map(|r| r.cluster.clone()).collect();
        let i =
            super::target::placement(logical, &physical).ok_or_else(|| TargetError::Backend {
                what: format!("place cluster `{logical}`"),
                cause: "this run has no clusters".into(),
            })?;
        if self.slots[i].occupant.is_some() {
            self.reset(i, "reset");
        }
        self.slots[i].occupant = Some(logical.to_owned());
        Ok(i)
    }

    /// `KindTarget::reset`.
    fn reset(&mut self, i: usize, phase: &str) {
        let slot = std::mem::take(&mut self.slots[i]);
        if let Ok(mut pending) = self.policy_pending.lock() {
            pending.retain(|(s, _), _| *s != i);
        }
        let r = self.refs[i].clone();
        let c = &r.cluster;
        let mut p = lock(&self.sink);
        if slot.installed
            && let Some(istioctl) = self.run.istioctl.first()
        {
            p.run(phase, istio::uninstall_cmd(istioctl, &r));
        }
        let ours = |ns: &str| slot.owned.iter().any(|o| o == ns);
        let mut gone = slot.owned.clone();
        if slot.plugged && !ours(ISTIO_NAMESPACE) {
            p.delete(phase, c, format!("Secret {ISTIO_NAMESPACE}/cacerts"));
        }
        for ns in slot.owned.iter().rev() {
            p.delete(phase, c, format!("Namespace {ns}"));
        }
        if self.created && slot.installed && !ours(ISTIO_NAMESPACE) {
            p.delete(phase, c, format!("Namespace {ISTIO_NAMESPACE}"));
            gone.push(ISTIO_NAMESPACE.to_owned());
        }
        if !gone.is_empty() {
            p.wait(
                phase,
                c,
                format!("namespaces {} to be deleted", gone.join(", ")),
                super::target::NAMESPACES_GONE,
            );
        }
    }

    fn cluster_of(&self, i: usize) -> &str {
        &self.refs[i].cluster
    }

    /// `KindTarget::install_with`, then what `install_observed` waits for.
    fn install_steps(
        &mut self,
        i: usize,
        istioctl: &Path,
        step: InstallStep<'_>,
        outcome: &InstallOutcome,
        phase: &str,
    ) {
        let r = self.refs[i].clone();
        let spec =
            super::target::install_spec(&self.run, &r, i, self.slots[i].trust_domain.clone(), step);
        let cmd = match step {
            InstallStep::Upgrade => istio::upgrade_cmd(istioctl, &r, &spec),
            InstallStep::Install | InstallStep::Revision(_) => {
                istio::install_cmd(istioctl, &r, &spec)
            }
        };
        self.slots[i].installed = true;
        let mut p = self.p();
        p.run(phase, cmd);
        istiod_steps(&mut p, phase, &r.cluster, spec.revision(), outcome);
    }

    /// `probe::exec` of curl in `container` of `from`'s pod (`curl_in`).
    fn curl_steps(
        &self,
        p: &mut Planner,
        phase: &str,
        from: &WorkloadRef,
        container: &str,
        url: &str,
    ) {
        p.read(
            phase,
            &from.cluster,
            format!("Pod {}/app={} name (Ready)", from.namespace, from.name),
        );
        p.exec(phase, &from.cluster, container, curl_display(url));
    }

    /// `KindTarget::connect`: once per scenario, on the first cross-cluster request.
    fn connect_steps(&self, p: &mut Planner) {
        let docker = Path::new(ToolName::Docker.binary());
        let names: Vec<String> = self
            .refs
            .iter()
            .map(|r| kind::cluster_name(&self.run.prefix, &r.cluster))
            .collect();
        for name in &names {
            p.run(
                "network",
                kind::node_ip_cmd(docker, &kind::control_plane(name)),
            );
        }
        for (i, name) in names.iter().enumerate() {
            for (j, other) in names.iter().enumerate() {
                if let (true, Some(s)) = (i != j, Subnets::for_cluster(j + 1)) {
                    p.run(
                        "network",
                        kind::route_cmd(
                            docker,
                            &kind::control_plane(name),
                            &s.pod,
                            &format!("<ip of {}>", kind::control_plane(other)),
                        ),
                    );
                }
            }
        }
        let Some(istioctl) = self.run.istioctl.first() else {
            return;
        };
        for (i, (name, r)) in names.iter().zip(&self.refs).enumerate() {
            let server = format!("https://{}:6443", kind::control_plane(name));
            p.run(
                "multicluster",
                istio::create_remote_secret_cmd(istioctl, r, &server),
            );
            for (j, other) in self.refs.iter().enumerate() {
                if i != j {
                    p.apply(
                        "multicluster",
                        &other.cluster,
                        format!("Secret {ISTIO_NAMESPACE}/istio-remote-secret-{}", r.cluster),
                        Some("(the output above) {<redacted>}".into()),
                    );
                }
            }
        }
    }

    /// `KindTarget::issue`: a token, the published root, a CSR to istiod's CA.
    fn issue_steps(&self, p: &mut Planner, phase: &str, i: usize, ns: &str, sa: &str) {
        let c = self.cluster_of(i);
        p.read(
            phase,
            c,
            format!("Pod {ISTIO_NAMESPACE}/app=istiod name (Ready)"),
        );
        p.apply(
            phase,
            c,
            format!("TokenRequest {ns}/{sa}"),
            Some("audience istio-ca, 600s".into()),
        );
        p.read(
            phase,
            c,
            format!("ConfigMap {ISTIO_NAMESPACE}/{ROOT_CONFIGMAP} root-cert.pem"),
        );
        let td = self.slots[i]
            .trust_domain
            .clone()
            .unwrap_or_else(|| "cluster.local".into());
        p.check(
            phase,
            c,
            format!(
                "CSR for spiffe://{td}/ns/{ns}/sa/{sa} to istiod's CA through a port-forward to :{}",
                super::target::CA_PORT
            ),
        );
    }
}

/// The wait for `revision`'s istiod and what its log must say, or its refusal.
fn istiod_steps(
    p: &mut Planner,
    phase: &str,
    cluster: &str,
    revision: &str,
    outcome: &InstallOutcome,
) {
    match outcome {
        InstallOutcome::Installed { ca, .. } => {
            p.wait(
                phase,
                cluster,
                format!(
                    "deployment `{ISTIO_NAMESPACE}/{}` to be ready",
                    istio::istiod_deployment(revision)
                ),
                istio::ISTIOD_READY,
            );
            let mode = match ca {
                CaSource::PluggedIn => CaMode::PluggedIn,
                CaSource::SelfSigned => CaMode::SelfSigned,
            };
            p.check(
                phase,
                cluster,
                format!(
                    "istiod log (container discovery, pods {}) says `{}`",
                    istio::istiod_selector(revision),
                    mode.log_line()
                ),
            );
        }
        InstallOutcome::Refused { reason, .. } => p.check(
            phase,
            cluster,
            format!(
                "istiod pods {} crash with `{reason}` in their log: the refusal ends the install",
                istio::istiod_selector(revision)
            ),
        ),
    }
}

/// curl's argv as the plan shows it.
fn curl_display(url: &str) -> String {
    display_argv(&super::target::curl_argv(url))
}

/// An exec's argv as the plan shows it: one line, an argument with a newline quoted with the
/// newline escaped (curl's `-w` format).
pub(crate) fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| match a.contains('\n') {
            true => format!("'{}'", a.replace('\n', "\\n")),
            false => a.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl Target for PlanTarget {
    fn istio_version(&self) -> crate::istio::IstioVersion {
        self.local.istio_version()
    }

    fn name(&self) -> &'static str {
        "kind"
    }

    async fn plug_in(&mut self, cluster: &str, bundle: Option<&Path>) -> Result<(), TargetError> {
        self.local.plug_in(cluster, bundle).await?;
        let i = self.place(cluster)?;
        if let Some(dir) = bundle {
            let c = self.cluster_of(i).to_owned();
            let keys: Vec<String> = CACERTS_FILES
                .iter()
                .filter(|k| dir.join(k).exists())
                .map(|k| format!("{k}: <redacted>"))
                .collect();
            let mut p = lock(&self.sink);
            self.slots[i].ensure(&mut p, "plug-in", &c, ISTIO_NAMESPACE, "");
            p.apply(
                "plug-in",
                &c,
                format!("Secret {ISTIO_NAMESPACE}/cacerts"),
                Some(format!("from {} {{{}}}", dir.display(), keys.join(", "))),
            );
            p.delete(
                "plug-in",
                &c,
                format!("ConfigMap {ISTIO_NAMESPACE}/{ROOT_CONFIGMAP}"),
            );
            drop(p);
            self.slots[i].plugged = true;
        }
        Ok(())
    }

    async fn install(
        &mut self,
        cluster: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let i = self.place(cluster)?;
        super::target::refuse_multi_root(options, "install")?;
        let outcome = self.local.install(cluster, options).await?;
        self.slots[i].trust_domain =
            (options.trust_domain != "cluster.local").then(|| options.trust_domain.clone());
        if let Some(istioctl) = self.run.phase_istioctl(0).cloned() {
            self.install_steps(i, &istioctl, InstallStep::Install, &outcome, "install");
        }
        Ok(outcome)
    }

    async fn deploy(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        self.local.deploy(cluster, namespace, app).await?;
        let i = self.slot(cluster)?;
        let c = self.cluster_of(i).to_owned();
        let mut p = lock(&self.sink);
        self.slots[i].ensure(
            &mut p,
            "workloads",
            &c,
            namespace,
            "istio-injection: enabled",
        );
        let file = format!("fixtures/{}.yaml", app.name());
        for object in workloads::app_manifest(app.name()).unwrap_or_default() {
            p.apply(
                "workloads",
                &c,
                workloads::describe(&object, namespace),
                Some(format!("from {file}")),
            );
        }
        p.wait(
            "workloads",
            &c,
            format!(
                "pods `app={}` in `{namespace}` to be Ready (every container)",
                app.name()
            ),
            workloads::PODS_READY,
        );
        drop(p);
        self.slots[i]
            .deployed
            .insert((namespace.to_owned(), app.name().to_owned()));
        Ok(())
    }

    async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        namespace: &str,
        mode: Mode,
    ) -> Result<(), TargetError> {
        self.local
            .set_peer_authentication(cluster, namespace, mode)
            .await?;
        let i = self.slot(cluster)?;
        let mtls = match mode {
            Mode::Strict => MtlsMode::Strict,
            Mode::Permissive => MtlsMode::Permissive,
        };
        if let Ok(pa) = workloads::peer_authentication(mtls) {
            let c = self.cluster_of(i).to_owned();
            self.p().apply(
                "policy",
                &c,
                workloads::describe(&pa, namespace),
                Some(format!("mtls.mode {}", format!("{mode:?}").to_uppercase())),
            );
        }
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
        let captured = self.local.capture_chain(from, to).await?;
        let i = self.slot(&from.cluster)?;
        let c = self.cluster_of(i);
        let phase = "probe";
        let addr = format!("<{} pod IP>:{HTTPBIN_CONTAINER_PORT}", to.name);
        let mut p = self.p();
        p.read(
            phase,
            c,
            format!("Pod {}/app={} status.podIP (Ready)", to.namespace, to.name),
        );
        p.read(
            phase,
            c,
            format!("Pod {}/app={} name (Ready)", from.namespace, from.name),
        );
        let docker = Path::new(ToolName::Docker.binary());
        let kind_bin = Path::new(ToolName::Kind.binary());
        match self.run.delivery {
            ProbeDelivery::Exec => {
                p.exec(phase, c, probe::PROXY_CONTAINER, "sh -c true".into());
                p.check(
                    phase,
                    c,
                    "exit 0: istio-proxy has a shell, the probe goes in by exec (else: the image route)"
                        .into(),
                );
                p.steps.push(PlanStep::Exec {
                    phase: phase.into(),
                    cluster: c.to_owned(),
                    target: format!("<sleep pod>/{}", probe::PROXY_CONTAINER),
                    argv: probe::receive_argv(0)
                        .join(" ")
                        .replace("head -c 0", "head -c <size>"),
                    stdin: Some(self.run.probe_binary.display().to_string()),
                });
                p.exec(
                    phase,
                    c,
                    probe::PROXY_CONTAINER,
                    probe::probe_argv(&addr).join(" "),
                );
            }
            ProbeDelivery::Image => {
                let image = registry::probe_image("dev");
                let kind_name = kind::cluster_name(&self.run.prefix, c);
                let mut started = self.registry.lock().unwrap_or_else(|e| e.into_inner());
                if !*started {
                    *started = true;
                    p.check(
                        phase,
                        c,
                        format!(
                            "start registry `{}` on docker network `{}` (testcontainers), localhost:{}: once per run, tried again at each capture until it starts",
                            registry::REGISTRY_NAME,
                            registry::KIND_NETWORK,
                            registry::REGISTRY_HOST_PORT
                        ),
                    );
                }
                drop(started);
                // `KindClusters::probe_image`: the node is wired to the registry and the image
                // pushed when the registry runs; otherwise (or if a step fails) `kind load`.
                let mut wire = Vec::new();
                for cmd in registry::wire_node_cmds(docker, &kind::control_plane(&kind_name)) {
                    wire.push(p.maybe_when(phase, REGISTRY_UP, &cmd));
                }
                p.check(
                    phase,
                    c,
                    format!("if the registry runs: {}", wire.join("; ")),
                );
                let [build, push] = registry::build_and_push_cmds(
                    docker,
                    &self.run.workdir.join("probe-image"),
                    &image,
                );
                p.run(phase, build);
                let push = p.maybe_when(phase, REGISTRY_UP, &push);
                p.check(phase, c, format!("if the registry runs: {push}"));
                let load = p.maybe_when(
                    phase,
                    REGISTRY_DOWN,
                    &kind::load_image_cmd(kind_bin, &image, &kind_name),
                );
                p.check(
                    phase,
                    c,
                    format!("if the registry or the push fails: {load}"),
                );
                p.apply(
                    phase,
                    c,
                    format!(
                        "Pod {}/<{} pod> ephemeralContainers meshtrust-probe-<pid>",
                        from.namespace, from.name
                    ),
                    Some(format!(
                        "image {image}, runAsUser 1337, args {}",
                        probe::probe_args(&addr).join(" ")
                    )),
                );
                p.wait(
                    phase,
                    c,
                    "ephemeral container `meshtrust-probe-<pid>` to finish".into(),
                    probe::EPHEMERAL_DONE,
                );
                p.read(
                    phase,
                    c,
                    format!(
                        "Pod {}/<{} pod> log of meshtrust-probe-<pid>",
                        from.namespace, from.name
                    ),
                );
            }
        }
        p.check(
            phase,
            c,
            "the captured chain (JSON) -> chain verdict and snapshot".into(),
        );
        Ok(captured)
    }

    async fn request(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        transport: Transport,
        path: &str,
    ) -> Result<Outcome, TargetError> {
        let outcome = self.local.request(from, to, transport, path).await?;
        let phase = "traffic";
        let (fi, ti) = (self.slot(&from.cluster)?, self.slot(&to.cluster)?);
        let mut p = self.p();
        if fi != ti {
            let mut connected = self.connected.lock().unwrap_or_else(|e| e.into_inner());
            if !*connected {
                *connected = true;
                match self.created {
                    true => self.connect_steps(&mut p),
                    false => p.check(
                        "multicluster",
                        "-",
                        super::target::EXISTING_CLUSTERS_CONNECTED.into(),
                    ),
                }
            }
            drop(connected);
            for (i, home) in [(ti, true), (fi, false)] {
                let svc =
                    workloads::cluster_alias_service(&to.name, &to.cluster, &to.namespace, home);
                p.apply(
                    phase,
                    self.cluster_of(i),
                    workloads::describe(&svc, &to.namespace),
                    Some(match home {
                        true => format!("selects {}'s pods", to.name),
                        false => "no endpoints here: its name resolves for the sidecar".into(),
                    }),
                );
            }
            let url = format!(
                "http://{}-{}.{}:{HTTPBIN_SERVICE_PORT}{path}",
                to.name, to.cluster, to.namespace
            );
            self.curl_steps(&mut p, phase, from, &from.name, &url);
            p.wait(
                phase,
                &from.cluster,
                format!(
                    "{to}'s endpoints to reach {from}'s sidecar: the request above repeated every {}s until it is not `no healthy upstream`",
                    super::target::CROSS_CLUSTER.interval.as_secs()
                ),
                super::target::CROSS_CLUSTER,
            );
            return Ok(outcome);
        }
        let (container, url) = match transport {
            Transport::Mtls => (
                from.name.clone(),
                format!(
                    "http://{}.{}:{HTTPBIN_SERVICE_PORT}{path}",
                    to.name, to.namespace
                ),
            ),
            Transport::Plaintext => {
                p.read(
                    phase,
                    &to.cluster,
                    format!("Pod {}/app={} status.podIP (Ready)", to.namespace, to.name),
                );
                (
                    probe::PROXY_CONTAINER.to_owned(),
                    format!("http://<{} pod IP>:{HTTPBIN_CONTAINER_PORT}{path}", to.name),
                )
            }
        };
        self.curl_steps(&mut p, phase, from, &container, &url);
        let key = (fi, to.namespace.clone());
        let mut pending = self
            .policy_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(mode) = pending.get(&key).copied() {
            let until = match (transport, mode) {
                (Transport::Plaintext, Mode::Strict) => "refused (STRICT in effect)",
                _ => "answered",
            };
            p.wait(
                phase,
                &from.cluster,
                format!(
                    "the request above to be {until}, repeated every {}s",
                    super::target::POLICY_PUSH.interval.as_secs()
                ),
                super::target::POLICY_PUSH,
            );
            if transport == Transport::Plaintext {
                pending.remove(&key);
            }
        }
        Ok(outcome)
    }

    async fn issue_workload_certificate(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        let chain = self
            .local
            .issue_workload_certificate(cluster, namespace, service_account)
            .await?;
        let i = self.slot(cluster)?;
        let mut p = self.p();
        self.issue_steps(&mut p, "ca", i, namespace, service_account);
        Ok(chain)
    }

    async fn root_configmap(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        let root = self.local.root_configmap(cluster, namespace).await?;
        let i = self.slot(cluster)?;
        self.p().read(
            "trust",
            self.cluster_of(i),
            format!("ConfigMap {namespace}/{ROOT_CONFIGMAP} root-cert.pem"),
        );
        Ok(root)
    }

    async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<(), TargetError> {
        self.local.reload_cacerts(cluster, dir).await?;
        let i = self.slot(cluster)?;
        let (ns, sa) = self.slots[i]
            .deployed
            .iter()
            .next()
            .cloned()
            .unwrap_or_else(|| (ISTIO_NAMESPACE.into(), "istiod".into()));
        let c = self.cluster_of(i).to_owned();
        let mut p = self.p();
        p.apply(
            "rotation",
            &c,
            format!("Secret {ISTIO_NAMESPACE}/cacerts"),
            Some(format!("from {}", dir.display())),
        );
        self.issue_steps(&mut p, "rotation", i, &ns, &sa);
        p.wait(
            "rotation",
            &c,
            format!(
                "istiod in `{c}` to sign with the new intermediate: the issue above repeated every {}s",
                super::target::RELOAD.interval.as_secs()
            ),
            super::target::RELOAD,
        );
        Ok(())
    }

    async fn upgrade(
        &mut self,
        cluster: &str,
        options: &UpgradeOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let outcome = self.local.upgrade(cluster, options).await?;
        let i = self.slot(cluster)?;
        let istioctl = match &options.istioctl {
            Some(p) => Some(p.clone()),
            None => self.run.phase_istioctl(1).cloned(),
        };
        if let Some(istioctl) = istioctl {
            self.install_steps(i, &istioctl, InstallStep::Upgrade, &outcome, "upgrade");
        }
        if matches!(outcome, InstallOutcome::Installed { .. }) {
            let c = self.cluster_of(i).to_owned();
            let deployed = self.slots[i].deployed.clone();
            let namespaces: BTreeSet<&String> = deployed.iter().map(|(ns, _)| ns).collect();
            let mut p = self.p();
            // `istio::restart_workloads`: every Deployment of each namespace, then each rollout.
            for ns in namespaces {
                p.read("upgrade", &c, format!("Deployments in {ns}"));
                let apps: Vec<&String> = deployed
                    .iter()
                    .filter(|(n, _)| n == ns)
                    .map(|(_, a)| a)
                    .collect();
                for app in &apps {
                    p.apply(
                        "upgrade",
                        &c,
                        format!("Deployment {ns}/{app}"),
                        Some(RESTART.into()),
                    );
                }
                for app in &apps {
                    p.wait(
                        "upgrade",
                        &c,
                        format!("deployment `{ns}/{app}` to be ready"),
                        istio::ROLLOUT_READY,
                    );
                }
            }
            for (ns, app) in &deployed {
                p.wait(
                    "upgrade",
                    &c,
                    format!("pods `app={app}` in `{ns}` to be Ready (every container)"),
                    workloads::PODS_READY,
                );
            }
        }
        Ok(outcome)
    }

    async fn install_revision(
        &mut self,
        cluster: &str,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        super::target::refuse_multi_root(options, "install a revision")?;
        let outcome = self
            .local
            .install_revision(cluster, revision, options)
            .await?;
        let i = self.slot(cluster)?;
        if let Some(istioctl) = self.run.phase_istioctl(1).cloned() {
            self.install_steps(
                i,
                &istioctl,
                InstallStep::Revision(revision),
                &outcome,
                "canary",
            );
        }
        Ok(outcome)
    }

    async fn set_namespace_revision(
        &mut self,
        cluster: &str,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        self.local
            .set_namespace_revision(cluster, namespace, revision)
            .await?;
        let i = self.slot(cluster)?;
        self.p().apply(
            "canary",
            self.cluster_of(i),
            format!("Namespace {namespace}"),
            Some(format!(
                "labels {{istio.io/rev: {revision}, istio-injection: (removed)}}"
            )),
        );
        Ok(())
    }

    async fn restart(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        self.local.restart(cluster, namespace, app).await?;
        let i = self.slot(cluster)?;
        let c = self.cluster_of(i).to_owned();
        let mut p = self.p();
        p.apply(
            "canary",
            &c,
            format!("Deployment {namespace}/{}", app.name()),
            Some(RESTART.into()),
        );
        p.wait(
            "canary",
            &c,
            format!("deployment `{namespace}/{}` to be ready", app.name()),
            istio::ROLLOUT_READY,
        );
        p.wait(
            "canary",
            &c,
            format!(
                "pods `app={}` in `{namespace}` to be Ready (every container)",
                app.name()
            ),
            workloads::PODS_READY,
        );
        p.read("canary", &c, format!("Namespace {namespace} labels"));
        p.read(
            "canary",
            &c,
            format!(
                "Pod {namespace}/app={} label istio.io/rev: the namespace's revision, or the restart fails",
                app.name()
            ),
        );
        Ok(())
    }

    async fn uninstall_revision(
        &mut self,
        cluster: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        self.local.uninstall_revision(cluster, revision).await?;
        let i = self.slot(cluster)?;
        let istioctl = if revision == istio::DEFAULT_REVISION {
            self.run.phase_istioctl(0)
        } else {
            self.run.phase_istioctl(1)
        };
        let r = self.refs[i].clone();
        let mut p = self.p();
        if let Some(istioctl) = istioctl {
            p.run(
                "canary",
                istio::uninstall_revision_cmd(istioctl, &r, revision),
            );
        }
        p.wait(
            "canary",
            &r.cluster,
            format!(
                "deployment `{ISTIO_NAMESPACE}/{}` to be gone",
                istio::istiod_deployment(revision)
            ),
            istio::ISTIOD_READY,
        );
        Ok(())
    }

    async fn teardown(&mut self) -> Result<(), TargetError> {
        for i in 0..self.slots.len() {
            if self.slots[i].occupant.is_some() {
                self.reset(i, "teardown");
            }
        }
        self.local.teardown().await
    }
}

/// The condition of the cleanup's `kind export logs`.
const RUN_FAILS: &str = "(if the run fails)";
/// The conditions of the probe image's two routes: the local registry, or `kind load`.
pub const REGISTRY_UP: &str = "(if the registry runs)";
pub const REGISTRY_DOWN: &str = "(if the registry or the push fails)";
/// The condition of preflight's look at kubectl (optional: it only dumps pods and events).
pub const KUBECTL_FOUND: &str = "(if kubectl is found)";
/// The conditions of preflight's looks at docker and kind on existing clusters (not needed).
pub const DOCKER_FOUND: &str = "(if docker is found)";
pub const KIND_FOUND: &str = "(if kind is found)";

/// How a restart is applied: `kubectl rollout restart`'s template annotation.
const RESTART: &str = "restart (template annotation kubectl.kubernetes.io/restartedAt)";

/// Plans `run` with throwaway bundles (P-256, made in a temporary directory) and prints it, the
/// bundles' directory shown as `<run certs>`: what `meshtrust run --target kind --dry-run`
/// prints.
///
/// # Errors
/// The bundles cannot be made, or a scenario cannot be planned.
pub async fn dry_run_plan(
    run: &KindRun,
    clusters: &PlannedClusters,
) -> Result<String, TargetError> {
    let dir = tempfile::Builder::new()
        .prefix("meshtrust-plan.")
        .tempdir()
        .map_err(|cause| TargetError::Io {
            what: "create the plan's certificates directory".into(),
            cause,
        })?;
    let certs_dir = dir.path().to_owned();
    let certs = tokio::task::spawn_blocking(move || RunCerts::generate(&certs_dir, KeyAlg::P256))
        .await
        .expect("certificate generation does not panic")
        .map_err(|cause| TargetError::Bundle {
            dir: dir.path().display().to_string(),
            cause,
        })?;
    // A run stamps its prefix and writes under `<artifacts>/<stamped prefix>/`: the plan
    // shows the names it will use.
    let mut stamped = run.clone();
    if kind::run_stamp(&run.prefix).is_none() {
        let prefix = format!("{}-<start>-<pid>", run.prefix);
        stamped.artifacts = run.artifacts.join(&prefix);
        if matches!(clusters, PlannedClusters::Created) {
            stamped.prefix = prefix;
        }
    }
    let plan = plan_run(&stamped, clusters, &certs).await?;
    Ok(render(&stamped, clusters, &plan).replace(&dir.path().display().to_string(), "<run certs>"))
}

/// Every command line of `run`'s plan (the e2e-tools tier checks each against the real tools).
///
/// # Errors
/// As [`dry_run_plan`].
pub async fn planned_commands(
    run: &KindRun,
    clusters: &PlannedClusters,
) -> Result<Vec<Cmd>, TargetError> {
    let dir = tempfile::tempdir().map_err(|cause| TargetError::Io {
        what: "create the plan's certificates directory".into(),
        cause,
    })?;
    let certs =
        RunCerts::generate(dir.path(), KeyAlg::P256).map_err(|cause| TargetError::Bundle {
            dir: dir.path().display().to_string(),
            cause,
        })?;
    Ok(plan_run(run, clusters, &certs).await?.commands())
}

/// The plan as text, one step a line, each scenario under a heading of its own.
pub fn render(run: &KindRun, clusters: &PlannedClusters, plan: &Plan) -> String {
    let names: Vec<&str> = run.scenarios.iter().map(|s| s.name()).collect();
    let mut out = match clusters {
        PlannedClusters::Created => format!(
            "meshtrust kind plan: {} cluster(s) [{}], profile {}, {}; scenarios: {} (nothing \
             was run; a run stamps its prefix, `<prefix>-<start>-<pid>`, and writes under \
             `<artifacts>/<that>/`)\n",
            run.clusters.len(),
            run.clusters.join(", "),
            run.profile.name(),
            istioctls(run),
            names.join(", "),
        ),
        PlannedClusters::Attached(refs) => format!(
            "meshtrust kubeconfig plan: {} existing cluster(s) [{}], profile {}, {}; scenarios: \
             {} (nothing was run; no cluster is created or deleted, and each scenario deletes \
             only the namespaces it created)\n",
            refs.len(),
            refs.iter()
                .map(|r| r.cluster.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            run.profile.name(),
            istioctls(run),
            names.join(", "),
        ),
    };
    let mut n = 0;
    for step in plan.steps() {
        if let PlanStep::Scenario { .. } = step {
            out.push_str(&format!("{step}\n"));
        } else {
            n += 1;
            out.push_str(&format!("{n:>3}. {step}\n"));
        }
    }
    out
}

fn istioctls(run: &KindRun) -> String {
    use crate::scenario::Scenario;
    let upgrades = run
        .scenarios
        .iter()
        .any(|s| matches!(s, Scenario::IstioUpgrade | Scenario::IstioCanaryUpgrade));
    match (run.istioctl.len(), upgrades) {
        (1, true) => "one Istio version (the upgrades install it again over itself)".to_owned(),
        (1, false) => "one Istio version".to_owned(),
        (n, _) => format!("{n} Istio versions (install, upgrade; the canary from the last)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn planned(run: &KindRun) -> String {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(dry_run_plan(run, &PlannedClusters::Created))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn two_istioctls(run: &mut KindRun) {
        run.istioctl = vec![
            "/opt/istio-1.31.4/bin/istioctl".into(),
            "/opt/istio-1.32.0/bin/istioctl".into(),
        ];
    }

    fn lines_of<'a>(plan: &'a str, scenario: &str) -> Vec<&'a str> {
        plan.lines()
            .skip_while(|l| !l.starts_with(&format!("-- scenario {scenario} ")))
            .skip(1)
            .take_while(|l| !l.starts_with("-- scenario"))
            .collect()
    }

    fn position(lines: &[&str], needle: &str) -> usize {
        lines
            .iter()
            .position(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no step has `{needle}`: {lines:#?}"))
    }

    #[test]
    fn the_single_cluster_plan() {
        let mut run = KindRun::single("meshtrust");
        run.scenarios = vec![Scenario::PluginCa, Scenario::BadCacerts];
        insta::with_settings!({snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("kind_plan_single_cluster", planned(&run));
        });
    }

    #[test]
    fn the_two_cluster_upgrade_plan_on_a_distroless_proxy() {
        let mut run = KindRun::single("mt");
        run.clusters.push("cluster2".into());
        two_istioctls(&mut run);
        run.delivery = ProbeDelivery::Image;
        run.keep = true;
        run.scenarios = vec![Scenario::MulticlusterSharedRoot, Scenario::IstioUpgrade];
        insta::with_settings!({snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("kind_plan_two_clusters_upgrade_distroless", planned(&run));
        });
    }

    #[test]
    fn the_canary_upgrade_plan_from_one_release_to_the_next() {
        let mut run = KindRun::single("mt");
        two_istioctls(&mut run);
        run.scenarios = vec![Scenario::IstioCanaryUpgrade];
        insta::with_settings!({snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("kind_plan_canary_upgrade", planned(&run));
        });
    }

    #[test]
    fn every_scenario_has_its_own_steps_under_its_own_heading() {
        let plan = planned(&KindRun::single("mt"));
        for s in KindRun::single("mt").scenarios {
            let lines = lines_of(&plan, s.name());
            assert!(
                lines.iter().any(|l| l.contains("[teardown]")),
                "{s}: {lines:#?}"
            );
        }
        // What tells them apart: the default CA plugs nothing in, STRICT sends plaintext,
        // rotation replaces the Secret, bad-cacerts resets between bundles.
        let default_ca = lines_of(&plan, "default-ca");
        assert!(
            !default_ca
                .iter()
                .any(|l| l.contains("Secret istio-system/cacerts"))
        );
        assert!(
            default_ca
                .iter()
                .any(|l| l.contains("Use self-signed certificate"))
        );
        let plugin_ca = lines_of(&plan, "plugin-ca");
        assert!(
            plugin_ca
                .iter()
                .any(|l| l.contains("Secret istio-system/cacerts"))
        );
        assert!(
            !plugin_ca
                .iter()
                .any(|l| l.contains("Use self-signed certificate"))
        );
        let strict = lines_of(&plan, "strict-rejects-plaintext");
        assert!(
            strict
                .iter()
                .any(|l| l.contains("refused (STRICT in effect)"))
        );
        assert!(
            !plugin_ca
                .iter()
                .any(|l| l.contains("refused (STRICT in effect)"))
        );
        let rotation = lines_of(&plan, "intermediate-rotation");
        assert!(
            rotation
                .iter()
                .any(|l| l.contains("[rotation] apply  cluster1: Secret"))
        );
        let bad = lines_of(&plan, "bad-cacerts");
        let refusals = bad
            .iter()
            .filter(|l| l.contains("the refusal ends the install"));
        assert_eq!(refusals.count(), 3, "{bad:#?}");
        let resets = bad
            .iter()
            .filter(|l| l.contains("[reset] run    istioctl uninstall"));
        assert_eq!(resets.count(), 2, "{bad:#?}");
        assert!(!bad.iter().any(|l| l.contains("[workloads]")), "{bad:#?}");
    }

    #[test]
    fn the_canary_steps_come_in_the_order_of_istios_canary_upgrade() {
        let mut run = KindRun::single("mt");
        run.istioctl = vec!["/a/istioctl".into(), "/b/istioctl".into()];
        run.scenarios = vec![Scenario::IstioCanaryUpgrade];
        let plan = planned(&run);
        let canary = lines_of(&plan, "istio-canary-upgrade");
        let at = |needle: &str| position(&canary, needle);
        let install = at("run    /b/istioctl install --revision canary --set profile=minimal");
        let ready = at("istio-system/istiod-canary` to be ready");
        let logged = at("pods app=istiod,istio.io/rev=canary) says `Use local CA certificate`");
        let moved = at("Namespace foo labels {istio.io/rev: canary, istio-injection: (removed)}");
        let httpbin = at("Deployment foo/httpbin restart");
        let sleep = at("Deployment foo/sleep restart");
        let removed = at("run    /a/istioctl uninstall --revision default -y");
        let gone = at("istio-system/istiod` to be gone");
        assert!(install < ready && ready < logged && logged < moved && moved < httpbin);
        assert!(httpbin < sleep && sleep < removed && removed < gone);
        // httpbin restarts again once the default revision is gone, and is probed after.
        let last_restart = canary
            .iter()
            .rposition(|s| s.contains("Deployment foo/httpbin restart"))
            .unwrap();
        assert!(last_restart > gone);
        assert!(
            canary[last_restart..]
                .iter()
                .any(|s| s.contains("meshtrust-probe <httpbin pod IP>"))
        );
        // No in-place upgrade in the canary scenario, however many istioctls are given.
        assert!(!plan.contains("[upgrade]"), "{plan}");
    }

    #[test]
    fn the_in_place_upgrade_phase_comes_with_its_scenario_only() {
        let upgrades = |run: &KindRun| -> Vec<String> {
            planned(run)
                .lines()
                .filter(|s| s.contains("[upgrade] run"))
                .map(str::to_owned)
                .collect()
        };
        let mut run = KindRun::single("mt");
        run.istioctl = vec!["/a/istioctl".into(), "/b/istioctl".into()];
        run.scenarios = vec![Scenario::PluginCa];
        assert_eq!(upgrades(&run), Vec::<String>::new());
        run.scenarios = vec![Scenario::IstioUpgrade];
        let with_two = upgrades(&run);
        assert_eq!(with_two.len(), 1, "{with_two:?}");
        assert!(
            with_two[0].contains("run    /b/istioctl install"),
            "{with_two:?}"
        );
        // One istioctl: the upgrade installs it again, and the heading says so.
        run.istioctl = vec!["/a/istioctl".into()];
        let with_one = upgrades(&run);
        assert_eq!(with_one.len(), 1, "{with_one:?}");
        assert!(
            with_one[0].contains("run    /a/istioctl install"),
            "{with_one:?}"
        );
        assert!(
            planned(&run).contains("one Istio version (the upgrades install it again over itself)")
        );
    }

    #[test]
    fn the_plan_names_clusters_and_artifacts_as_the_stamped_run_will() {
        let mut run = KindRun::single("meshtrust");
        run.scenarios = vec![Scenario::PluginCa];
        run.artifacts = "out".into();
        let text = planned(&run);
        assert!(
            text.contains("kind create cluster --name 'meshtrust-<start>-<pid>-cluster1'"),
            "{text}"
        );
        assert!(
            text.contains("> out/meshtrust-<start>-<pid>/plugin-ca/cluster1-pods-events.txt"),
            "{text}"
        );
        // No upgrade scenario: nothing is said of upgrading a single istioctl to itself.
        assert!(text.contains(", one Istio version; scenarios"), "{text}");
        // The twin: an already stamped prefix (a run's own) is kept as it is.
        run.prefix = "meshtrust-1796000000-7".into();
        let text = planned(&run);
        assert!(
            text.contains("--name meshtrust-1796000000-7-cluster1"),
            "{text}"
        );
        assert!(!text.contains("<start>-<pid>-cluster1"), "{text}");
    }

    #[test]
    fn the_plan_never_shows_secret_data_nor_the_throwaway_certs_directory() {
        let text = planned(&KindRun::single("meshtrust"));
        assert!(text.contains("ca-key.pem: <redacted>"));
        assert!(text.contains("from <run certs>/mesh/cluster1 {"));
        assert!(!text.contains("BEGIN"));
        assert!(!text.contains("meshtrust-plan."), "{text}");
    }

    #[test]
    fn a_kubeconfig_plan_creates_loads_and_deletes_no_cluster() {
        let mut run = KindRun::single("meshtrust");
        run.scenarios = vec![Scenario::PluginCa];
        let refs = vec![ClusterRef {
            cluster: "cluster1".into(),
            kubeconfig: Some("/home/me/.kube/config".into()),
            context: Some("prod-east".into()),
        }];
        let rt = tokio::runtime::Runtime::new().unwrap();
        let text = rt
            .block_on(dry_run_plan(&run, &PlannedClusters::Attached(refs)))
            .unwrap();
        assert!(text.starts_with("meshtrust kubeconfig plan: 1 existing cluster(s) [cluster1]"));
        assert!(text.contains("existing cluster: context `prod-east` of /home/me/.kube/config"));
        assert!(
            text.contains("--kubeconfig /home/me/.kube/config --context prod-east"),
            "{text}"
        );
        // docker and kind appear only as what preflight asks if they are on PATH.
        for absent in [
            "kind create",
            "kind load",
            "kind delete",
            "docker pull",
            "[images]",
            "[cleanup]",
        ] {
            assert!(!text.contains(absent), "`{absent}` in\n{text}");
        }
        // Its twin: the kind plan has them.
        let kind = planned(&run);
        for present in [
            "kind create cluster",
            "docker pull",
            "[images]",
            "[cleanup]",
        ] {
            assert!(kind.contains(present), "no `{present}` in\n{kind}");
        }
    }

    #[test]
    fn a_multi_root_install_is_refused_by_the_plan_as_by_the_kind_target() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let certs = RunCerts::generate(dir.path(), KeyAlg::P256).unwrap();
        let run = KindRun::single("mt");
        let sink = Arc::new(Mutex::new(Planner::default()));
        let mut target = PlanTarget {
            run: run.clone(),
            refs: planned_refs(&run, &PlannedClusters::Created),
            created: true,
            slots: vec![Slot::default()],
            connected: Mutex::new(false),
            policy_pending: Mutex::new(BTreeMap::new()),
            registry: Arc::new(Mutex::new(false)),
            local: LocalTarget::with_workload_key(KeyAlg::P256),
            sink,
        };
        let options = InstallOptions {
            multi_root: true,
            ..InstallOptions::default()
        };
        let err = rt
            .block_on(async {
                target
                    .plug_in("cluster1", Some(&certs.cluster("cluster1")))
                    .await?;
                target.install("cluster1", &options).await
            })
            .unwrap_err();
        assert!(err.to_string().contains("ISTIO_MULTIROOT_MESH"), "{err}");
        let fine = rt.block_on(target.install("cluster1", &InstallOptions::default()));
        assert!(fine.is_ok(), "{fine:?}");
    }
}
