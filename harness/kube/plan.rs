//! The dry run: the ordered plan of a kind run, every process with its argv and every API
//! object with kind/namespace/name, built from the same command and object builders the run
//! uses, so the plan cannot drift from what runs. Secret data is shown as `<redacted>`.

use std::fmt;
use std::path::Path;

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
use super::workloads::{self, HTTPBIN_CONTAINER_PORT, MtlsMode, WORKLOAD_NAMESPACE};
use crate::pki::layout::CACERTS_FILES;
use crate::scenario::target::CANARY_REVISION;

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStep {
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

struct Planner {
    steps: Vec<PlanStep>,
    /// Every command line the plan names with its phase, run or conditional (`kind export
    /// logs` on failure, phase `<phase> (if)`): what the e2e-tools tier checks against the real
    /// kind and istioctl, and what a recorded run is compared with.
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
        self.cmds.push((format!("{phase} (if)"), cmd.clone()));
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

/// Every step of `run`, in order. Tools appear by name; paths as configured.
pub fn plan(run: &KindRun) -> Vec<PlanStep> {
    planner(run).steps
}

/// Every command line of `run`'s plan, including those that run only on a condition.
pub fn planned_commands(run: &KindRun) -> Vec<Cmd> {
    planner(run).cmds.into_iter().map(|(_, c)| c).collect()
}

/// The commands of `run`'s plan that always run in `phases`, in order.
pub fn planned_commands_in(run: &KindRun, phases: &[&str]) -> Vec<Cmd> {
    planner(run)
        .cmds
        .into_iter()
        .filter(|(p, _)| phases.contains(&p.as_str()))
        .map(|(_, c)| c)
        .collect()
}

fn planner(run: &KindRun) -> Planner {
    let mut p = Planner {
        steps: Vec::new(),
        cmds: Vec::new(),
    };
    let docker = Path::new(ToolName::Docker.binary());
    let kind_bin = Path::new(ToolName::Kind.binary());

    for step in preflight_cmds(run) {
        p.run("preflight", step);
    }

    let names: Vec<String> = run
        .clusters
        .iter()
        .map(|c| kind::cluster_name(&run.prefix, c))
        .collect();
    let refs: Vec<ClusterRef> = run
        .clusters
        .iter()
        .zip(&names)
        .map(|(c, n)| ClusterRef {
            cluster: c.clone(),
            kubeconfig: Some(kind::kubeconfig_path(&run.workdir, n)),
            context: Some(kind::context_name(n)),
        })
        .collect();

    p.run("clusters", kind::get_clusters_cmd(kind_bin));
    for (i, name) in names.iter().enumerate() {
        let config = run.workdir.join(format!("{name}.kind.yaml"));
        let subnets = Subnets::for_cluster(i + 1);
        p.check(
            "clusters",
            name,
            format!(
                "write {} from {} with podSubnet {} and serviceSubnet {}",
                config.display(),
                run.kind_config.display(),
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

    for (i, r) in refs.iter().enumerate() {
        let c = &r.cluster;
        if run.plug_in {
            p.apply("plug-in", c, format!("Namespace {ISTIO_NAMESPACE}"), None);
            let keys: Vec<String> = CACERTS_FILES
                .iter()
                .map(|k| format!("{k}: <redacted>"))
                .collect();
            p.apply(
                "plug-in",
                c,
                format!("Secret {ISTIO_NAMESPACE}/cacerts"),
                Some(format!(
                    "from {} {{{}}}",
                    run.certs_dir.join(c).display(),
                    keys.join(", ")
                )),
            );
            p.steps.push(PlanStep::Delete {
                phase: "plug-in".into(),
                cluster: c.clone(),
                object: format!("ConfigMap {ISTIO_NAMESPACE}/{ROOT_CONFIGMAP}"),
            });
        }
        install_steps(&mut p, run, r, i, 0, "install");
    }

    for r in &refs {
        workload_steps(&mut p, run, r, "workloads");
        probe_steps(&mut p, run, r, docker, kind_bin, "probe");
        traffic_steps(&mut p, r);
    }

    // Made on the first cross-cluster request, after the workloads (`KindTarget::connect`).
    if run.clusters.len() > 1 {
        network_steps(&mut p, run, docker, &names);
        remote_secret_steps(&mut p, run, &names, &refs);
    }

    if run.in_place_upgrade {
        for (i, r) in refs.iter().enumerate() {
            install_steps(&mut p, run, r, i, 1, "upgrade");
            p.apply("upgrade", &r.cluster, format!("Deployment {WORKLOAD_NAMESPACE}/* restart (template annotation kubectl.kubernetes.io/restartedAt)"), None);
            for app in ["httpbin", "sleep"] {
                p.wait(
                    "upgrade",
                    &r.cluster,
                    format!("deployment `{WORKLOAD_NAMESPACE}/{app}` to be ready"),
                    istio::ROLLOUT_READY,
                );
            }
            probe_steps(&mut p, run, r, docker, kind_bin, "upgrade");
        }
    }

    if run.canary
        && let Some(r) = refs.first()
    {
        canary_steps(&mut p, run, r, docker, kind_bin);
    }

    for r in &refs {
        teardown_steps(&mut p, run, r);
    }

    for name in &names {
        let kubeconfig = kind::kubeconfig_path(&run.workdir, name);
        let export = p.maybe(
            "cleanup",
            &kind::export_logs_cmd(kind_bin, name, &run.artifacts.join(name), &kubeconfig),
        );
        p.check("cleanup", name, format!("on failure: {export}"));
        let delete = kind::delete_cmd(kind_bin, name, &kubeconfig);
        if run.keep {
            p.maybe("cleanup", &delete);
            p.check(
                "cleanup",
                name,
                "keep (--keep / MESHTRUST_KEEP): not deleted".into(),
            );
        } else {
            p.run("cleanup", delete);
        }
    }
    p
}

/// The requests after STRICT: plaintext from the sleep pod's istio-proxy (not captured
/// outbound) straight to the httpbin pod, polled until STRICT is in effect; mTLS through
/// sleep's sidecar to the Service.
/// `curl` of `url` from `container` of the sleep pod.
fn curl_step(p: &mut Planner, phase: &str, cluster: &str, container: &str, url: &str) {
    p.steps.push(PlanStep::Exec {
        phase: phase.into(),
        cluster: cluster.into(),
        target: format!("<sleep pod>/{container}"),
        argv: super::target::curl_argv(url)
            .iter()
            .map(|a| match a.contains('\n') {
                true => format!("'{}'", a.replace('\n', "\\n")),
                false => a.clone(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        stdin: None,
    });
}

/// The mTLS request of the canary window and after: sleep's sidecar to httpbin's, each
/// verifying the other's certificate; httpbin echoes the client's identity.
fn mtls_check_steps(p: &mut Planner, phase: &str, cluster: &str, between: &str) {
    let url = format!(
        "http://httpbin.{WORKLOAD_NAMESPACE}:{}/headers",
        workloads::HTTPBIN_SERVICE_PORT
    );
    curl_step(p, phase, cluster, "sleep", &url);
    p.check(
        phase,
        cluster,
        format!("{between}: answered 200, X-Forwarded-Client-Cert names sleep's SPIFFE id"),
    );
}

fn traffic_steps(p: &mut Planner, r: &ClusterRef) {
    let c = &r.cluster;
    let polled = super::target::POLICY_PUSH;
    for (container, url, until) in [
        (
            probe::PROXY_CONTAINER,
            format!("http://<httpbin pod IP>:{HTTPBIN_CONTAINER_PORT}/status/200"),
            "refused (STRICT in effect)",
        ),
        (
            "sleep",
            format!(
                "http://httpbin.{WORKLOAD_NAMESPACE}:{}/status/200",
                workloads::HTTPBIN_SERVICE_PORT
            ),
            "answered",
        ),
    ] {
        curl_step(p, "traffic", c, container, &url);
        p.wait(
            "traffic",
            c,
            format!(
                "the request above to be {until}, repeated every {}s",
                polled.interval.as_secs()
            ),
            polled,
        );
    }
}

/// What `teardown` does between scenarios on a cluster: Istio uninstalled, then the
/// namespaces the scenario made, waited for until they are gone.
fn teardown_steps(p: &mut Planner, run: &KindRun, r: &ClusterRef) {
    if let Some(istioctl) = run.istioctl.first() {
        p.run("teardown", istio::uninstall_cmd(istioctl, r));
    }
    for ns in [WORKLOAD_NAMESPACE, ISTIO_NAMESPACE] {
        p.steps.push(PlanStep::Delete {
            phase: "teardown".into(),
            cluster: r.cluster.clone(),
            object: format!("Namespace {ns}"),
        });
    }
    p.wait(
        "teardown",
        &r.cluster,
        format!("namespaces {WORKLOAD_NAMESPACE}, {ISTIO_NAMESPACE} to be deleted"),
        super::target::NAMESPACES_GONE,
    );
}

fn preflight_cmds(run: &KindRun) -> Vec<Cmd> {
    let mut cmds = vec![
        Cmd::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        Cmd::new("kind").arg("version"),
    ];
    for istioctl in &run.istioctl {
        cmds.push(Cmd::new(istioctl).args(["version", "--remote=false"]));
    }
    cmds
}

fn network_steps(p: &mut Planner, run: &KindRun, docker: &Path, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        for (j, other) in names.iter().enumerate() {
            if i == j {
                continue;
            }
            let subnet = Subnets::for_cluster(j + 1)
                .map(|s| s.pod)
                .unwrap_or_default();
            p.run(
                "network",
                kind::route_cmd(
                    docker,
                    &kind::control_plane(name),
                    &subnet,
                    &format!("<ip of {}>", kind::control_plane(other)),
                ),
            );
        }
    }
    let _ = run;
}

fn install_steps(
    p: &mut Planner,
    run: &KindRun,
    r: &ClusterRef,
    i: usize,
    phase_index: usize,
    phase: &str,
) {
    let step = if phase_index == 0 {
        InstallStep::Install
    } else {
        InstallStep::Upgrade
    };
    let spec = super::target::install_spec(run, r, i, None, step);
    let Some(istioctl) = run.phase_istioctl(phase_index) else {
        return;
    };
    let cmd = if phase_index == 0 {
        istio::install_cmd(istioctl, r, &spec)
    } else {
        istio::upgrade_cmd(istioctl, r, &spec)
    };
    p.run(phase, cmd);
    istiod_ready_steps(p, run, phase, &r.cluster, spec.revision());
}

/// The wait for `revision`'s istiod and the check of its CA log line.
fn istiod_ready_steps(p: &mut Planner, run: &KindRun, phase: &str, cluster: &str, revision: &str) {
    p.wait(
        phase,
        cluster,
        format!(
            "deployment `{ISTIO_NAMESPACE}/{}` to be ready",
            istio::istiod_deployment(revision)
        ),
        istio::ISTIOD_READY,
    );
    let mode = if run.plug_in {
        CaMode::PluggedIn
    } else {
        CaMode::SelfSigned
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

/// The canary upgrade on the first cluster (scenario `istio-canary-upgrade`): revision
/// `canary` beside the default one from the upgrade's istioctl, `foo` moved to it with httpbin
/// restarted (sleep on the old revision, httpbin on the new: mTLS between them), then sleep
/// restarted, the default revision removed, httpbin restarted once more and probed.
fn canary_steps(p: &mut Planner, run: &KindRun, r: &ClusterRef, docker: &Path, kind_bin: &Path) {
    let phase = "canary";
    let c = &r.cluster;
    let Some(upgrade) = run.phase_istioctl(1) else {
        return;
    };
    let spec = super::target::install_spec(run, r, 0, None, InstallStep::Revision(CANARY_REVISION));
    p.run(phase, istio::install_cmd(upgrade, r, &spec));
    istiod_ready_steps(p, run, phase, c, CANARY_REVISION);
    p.apply(
        phase,
        c,
        format!("Namespace {WORKLOAD_NAMESPACE}"),
        Some(format!(
            "labels {{istio.io/rev: {CANARY_REVISION}, istio-injection: (removed)}}"
        )),
    );
    let restart = |p: &mut Planner, app: &str| {
        p.apply(
            phase,
            c,
            format!(
                "Deployment {WORKLOAD_NAMESPACE}/{app} restart (template annotation kubectl.kubernetes.io/restartedAt)"
            ),
            None,
        );
        p.wait(
            phase,
            c,
            format!("deployment `{WORKLOAD_NAMESPACE}/{app}` to be ready"),
            istio::ROLLOUT_READY,
        );
    };
    restart(p, "httpbin");
    probe_steps(p, run, r, docker, kind_bin, phase);
    mtls_check_steps(p, phase, c, "sleep (default) -> httpbin (canary)");
    p.check(
        phase,
        c,
        format!("{ROOT_CONFIGMAP} in {WORKLOAD_NAMESPACE} unchanged by the move"),
    );
    restart(p, "sleep");
    if let Some(first) = run.istioctl.first() {
        p.run(
            phase,
            istio::uninstall_revision_cmd(first, r, istio::DEFAULT_REVISION),
        );
    }
    p.wait(
        phase,
        c,
        format!(
            "deployment `{ISTIO_NAMESPACE}/{}` to be gone",
            istio::istiod_deployment(istio::DEFAULT_REVISION)
        ),
        istio::ISTIOD_READY,
    );
    restart(p, "httpbin");
    probe_steps(p, run, r, docker, kind_bin, phase);
    mtls_check_steps(p, phase, c, "sleep (canary) -> httpbin (canary)");
}

fn remote_secret_steps(p: &mut Planner, run: &KindRun, names: &[String], refs: &[ClusterRef]) {
    let Some(istioctl) = run.istioctl.first() else {
        return;
    };
    for (i, (name, r)) in names.iter().zip(refs).enumerate() {
        let server = format!("https://{}:6443", kind::control_plane(name));
        p.run(
            "multicluster",
            istio::create_remote_secret_cmd(istioctl, r, &server),
        );
        for (j, other) in refs.iter().enumerate() {
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

fn workload_steps(p: &mut Planner, _run: &KindRun, r: &ClusterRef, phase: &str) {
    let c = &r.cluster;
    p.apply(
        phase,
        c,
        format!("Namespace {WORKLOAD_NAMESPACE}"),
        Some("labels {istio-injection: enabled}".into()),
    );
    for (file, yaml) in [
        ("fixtures/httpbin.yaml", workloads::HTTPBIN_YAML),
        ("fixtures/sleep.yaml", workloads::SLEEP_YAML),
    ] {
        for object in workloads::parse_manifest(file, yaml).unwrap_or_default() {
            p.apply(
                phase,
                c,
                workloads::describe(&object, WORKLOAD_NAMESPACE),
                Some(format!("from {file}")),
            );
        }
    }
    for app in ["httpbin", "sleep"] {
        p.wait(
            phase,
            c,
            format!("pods `app={app}` in `{WORKLOAD_NAMESPACE}` to be Ready (every container)"),
            workloads::PODS_READY,
        );
    }
    if let Ok(pa) = workloads::peer_authentication(MtlsMode::Strict) {
        p.apply(
            phase,
            c,
            workloads::describe(&pa, WORKLOAD_NAMESPACE),
            Some("mtls.mode STRICT".into()),
        );
    }
}

fn probe_steps(
    p: &mut Planner,
    run: &KindRun,
    r: &ClusterRef,
    docker: &Path,
    kind_bin: &Path,
    phase: &str,
) {
    let c = &r.cluster;
    let addr = format!("<httpbin pod IP>:{HTTPBIN_CONTAINER_PORT}");
    p.steps.push(PlanStep::Read {
        phase: phase.into(),
        cluster: c.clone(),
        object: format!("Pod {WORKLOAD_NAMESPACE}/app=httpbin status.podIP, Pod {WORKLOAD_NAMESPACE}/app=sleep name"),
    });
    match run.delivery {
        ProbeDelivery::Exec => {
            p.steps.push(PlanStep::Exec {
                phase: phase.into(),
                cluster: c.clone(),
                target: format!("<sleep pod>/{}", probe::PROXY_CONTAINER),
                argv: probe::receive_argv(0)
                    .join(" ")
                    .replace("head -c 0", "head -c <size>"),
                stdin: Some(run.probe_binary.display().to_string()),
            });
            p.steps.push(PlanStep::Exec {
                phase: phase.into(),
                cluster: c.clone(),
                target: format!("<sleep pod>/{}", probe::PROXY_CONTAINER),
                argv: probe::probe_argv(&addr).join(" "),
                stdin: None,
            });
        }
        ProbeDelivery::Image => {
            let image = registry::probe_image("dev");
            p.check(
                phase,
                c,
                format!(
                    "start registry `{}` on docker network `{}` (testcontainers, once per run), localhost:{}",
                    registry::REGISTRY_NAME,
                    registry::KIND_NETWORK,
                    registry::REGISTRY_HOST_PORT
                ),
            );
            for cmd in registry::wire_node_cmds(
                docker,
                &kind::control_plane(&kind::cluster_name(&run.prefix, c)),
            ) {
                p.run(phase, cmd);
            }
            for cmd in
                registry::build_and_push_cmds(docker, &run.workdir.join("probe-image"), &image)
            {
                p.run(phase, cmd);
            }
            let load = p.maybe(
                phase,
                &kind::load_image_cmd(kind_bin, &image, &kind::cluster_name(&run.prefix, c)),
            );
            p.check(phase, c, format!("if the push fails: {load}"));
            p.apply(
                phase,
                c,
                format!("Pod {WORKLOAD_NAMESPACE}/<sleep pod> ephemeralContainers meshtrust-probe"),
                Some(format!(
                    "image {image}, runAsUser 1337, args {}",
                    probe::probe_args(&addr).join(" ")
                )),
            );
            p.wait(
                phase,
                c,
                "ephemeral container `meshtrust-probe` to finish".into(),
                super::wait::Patience::new(
                    std::time::Duration::from_secs(120),
                    std::time::Duration::from_secs(2),
                ),
            );
        }
    }
    p.check(
        phase,
        c,
        "the captured chain (JSON) -> chain verdict and snapshot".into(),
    );
    p.steps.push(PlanStep::Read {
        phase: phase.into(),
        cluster: c.clone(),
        object: format!("ConfigMap {WORKLOAD_NAMESPACE}/{ROOT_CONFIGMAP} root-cert.pem"),
    });
}

/// The plan as text, one step a line: what `meshtrust run --target kind --dry-run` prints.
pub fn dry_run_plan(run: &KindRun) -> String {
    let mut out = format!(
        "meshtrust kind plan: {} cluster(s) [{}], profile {}, {} (nothing was run; a run \
         stamps its prefix, `<prefix>-<start>-<pid>`, and writes under `<artifacts>/<that>/`)\n",
        run.clusters.len(),
        run.clusters.join(", "),
        run.profile.name(),
        match run.istioctl.len() {
            1 => "one Istio version".to_owned(),
            n => format!("{n} Istio versions (install, upgrade)"),
        },
    );
    if run.in_place_upgrade {
        out.push_str(match run.istioctl.len() {
            1 => "  and an in-place upgrade: one istioctl, installed again over itself\n",
            _ => "  and an in-place upgrade: the second istioctl over the first\n",
        });
    }
    if run.canary {
        out.push_str(&format!(
            "  and a canary upgrade: revision `{CANARY_REVISION}` from the last istioctl given\n"
        ));
    }
    for (i, step) in plan(run).iter().enumerate() {
        out.push_str(&format!("{:>3}. {step}\n", i + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_cluster_plan() {
        insta::with_settings!({snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("kind_plan_single_cluster", dry_run_plan(&KindRun::single("meshtrust")));
        });
    }

    #[test]
    fn the_two_cluster_upgrade_plan_on_a_distroless_proxy() {
        let mut run = KindRun::single("mt");
        run.clusters.push("cluster2".into());
        run.istioctl = vec![
            "/opt/istio-1.31.4/bin/istioctl".into(),
            "/opt/istio-1.32.0/bin/istioctl".into(),
        ];
        run.delivery = ProbeDelivery::Image;
        run.keep = true;
        run.in_place_upgrade = true;
        insta::with_settings!({snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("kind_plan_two_clusters_upgrade_distroless", dry_run_plan(&run));
        });
    }

    #[test]
    fn the_canary_upgrade_plan_from_one_release_to_the_next() {
        let mut run = KindRun::single("mt");
        run.istioctl = vec![
            "/opt/istio-1.31.4/bin/istioctl".into(),
            "/opt/istio-1.32.0/bin/istioctl".into(),
        ];
        run.canary = true;
        insta::with_settings!({snapshot_path => "../../fixtures/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("kind_plan_canary_upgrade", dry_run_plan(&run));
        });
    }

    #[test]
    fn the_canary_steps_come_in_the_order_of_istios_canary_upgrade() {
        let mut run = KindRun::single("mt");
        run.istioctl = vec!["/a/istioctl".into(), "/b/istioctl".into()];
        run.canary = true;
        let canary: Vec<String> = plan(&run)
            .iter()
            .map(ToString::to_string)
            .filter(|s| s.starts_with("[canary]"))
            .collect();
        let at = |needle: &str| {
            canary
                .iter()
                .position(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("no canary step has `{needle}`: {canary:#?}"))
        };
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
        assert!(canary[last_restart..].iter().any(|s| s.contains("exec")));
        // Only the canary runs: no in-place upgrade phase, however many istioctls are given
        // (the canary is the upgrade from the first to the last).
        assert!(
            !plan(&run)
                .iter()
                .any(|s| s.to_string().starts_with("[upgrade]"))
        );
        // Without the canary scenario there is no canary phase at all.
        run.canary = false;
        assert!(
            !plan(&run)
                .iter()
                .any(|s| s.to_string().starts_with("[canary]"))
        );
    }

    #[test]
    fn the_in_place_upgrade_phase_comes_with_its_scenario_only() {
        let upgrades = |run: &KindRun| -> Vec<String> {
            plan(run)
                .iter()
                .map(ToString::to_string)
                .filter(|s| s.starts_with("[upgrade] run"))
                .collect()
        };
        let mut run = KindRun::single("mt");
        run.istioctl = vec!["/a/istioctl".into(), "/b/istioctl".into()];
        assert_eq!(upgrades(&run), Vec::<String>::new());
        run.in_place_upgrade = true;
        let with_two = upgrades(&run);
        assert_eq!(with_two.len(), 1, "{with_two:?}");
        assert!(
            with_two[0].contains("run    /b/istioctl install"),
            "{with_two:?}"
        );
        // One istioctl: the upgrade installs it again (as the e2e tests do), and says so.
        run.istioctl = vec!["/a/istioctl".into()];
        let with_one = upgrades(&run);
        assert_eq!(with_one.len(), 1, "{with_one:?}");
        assert!(
            with_one[0].contains("run    /a/istioctl install"),
            "{with_one:?}"
        );
        assert!(dry_run_plan(&run).contains("one istioctl, installed again over itself"));
    }

    #[test]
    fn the_plan_never_shows_secret_data() {
        let text = dry_run_plan(&KindRun::single("meshtrust"));
        assert!(text.contains("ca-key.pem: <redacted>"));
        assert!(!text.contains("BEGIN"));
    }
}
