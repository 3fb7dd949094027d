//! The kind target's verbs, as the scenario interface names them: plug in, install, deploy,
//! set PeerAuthentication, capture the chain, request, read the root ConfigMap, reload cacerts,
//! upgrade, tear down. Each returns data; the trait impl for `scenario::Target` is thin glue
//! over these.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::cluster::{ClusterRef, OwnedNamespaces};
use super::config::{KindRun, ProbeDelivery};
use super::error::KubeError;
use super::istio::{self, CaMode, InstallSpec};
use super::kind::{self, Cleanup, ClusterGuard, ClusterSpec};
use super::plugin::{self, PlugIn};
use super::probe::{self, ProbeOutput};
use super::process::{self, Cmd};
use super::tools::{Scope, ToolSearch, Toolbox, preflight, preflight_for};
use super::workloads::{self, HTTPBIN_CONTAINER_PORT, MtlsMode, WORKLOAD_NAMESPACE};
use super::{kind::Subnets, registry};

/// One cluster of the run.
pub struct KindCluster {
    pub cluster: ClusterRef,
    pub client: kube::Client,
    pub namespaces: OwnedNamespaces,
    /// Index into the istioctl list: 0 after install, 1 after upgrade.
    pub istio_phase: usize,
}

/// A kind run in progress. Dropping it deletes the clusters (see [`ClusterGuard`]).
pub struct KindTarget {
    pub run: KindRun,
    pub tools: Toolbox,
    pub clusters: Vec<KindCluster>,
    guard: ClusterGuard,
    probe: Vec<u8>,
    _workdir: tempfile::TempDir,
    registry_container: Option<registry::Registry>,
    /// How long each phase took, in order: the JSON report shows users where time goes.
    pub timings: Vec<(String, Duration)>,
}

impl KindTarget {
    /// Preflight (fails in seconds when a tool is missing), then every cluster in parallel.
    pub async fn start(mut run: KindRun, search: &ToolSearch) -> Result<KindTarget, KubeError> {
        let started = Instant::now();
        let tools = preflight(search).await?;
        let mut timings = vec![("preflight".to_owned(), started.elapsed())];
        run.istioctl = tools.istioctl.iter().map(|t| t.path.clone()).collect();
        let probe = probe::read_probe_binary(&run.probe_binary)?;
        let workdir = tempfile::Builder::new()
            .prefix("meshtrust-kind-")
            .tempdir()
            .map_err(KubeError::io("create a temp dir in", std::env::temp_dir()))?;
        run.workdir = workdir.path().to_owned();
        let kind_bin = tools
            .kind
            .as_ref()
            .map(|t| t.path.clone())
            .unwrap_or_default();
        let guard = ClusterGuard::new(&kind_bin, &run.artifacts, run.keep);
        guard.cleanup_on_ctrl_c();
        let specs: Vec<ClusterSpec> = run
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| ClusterSpec {
                cluster: c.clone(),
                index: i + 1,
            })
            .collect();
        let started = Instant::now();
        let created = kind::create_clusters(
            &kind_bin,
            &guard,
            &run.prefix,
            &run.kind_config,
            &specs,
            workdir.path(),
        )
        .await;
        let refs = match created {
            Ok(refs) => refs,
            Err(e) => {
                guard.mark_failed();
                return Err(e);
            }
        };
        timings.push(("clusters".to_owned(), started.elapsed()));
        let mut clusters = Vec::new();
        for r in refs {
            let client = r.client().await.inspect_err(|_| guard.mark_failed())?;
            clusters.push(KindCluster {
                cluster: r,
                client,
                namespaces: OwnedNamespaces::default(),
                istio_phase: 0,
            });
        }
        Ok(KindTarget {
            run,
            tools,
            clusters,
            guard,
            probe,
            _workdir: workdir,
            registry_container: None,
            timings,
        })
    }

    /// Target `kubeconfig`: existing clusters, by context. Nothing is created but the
    /// namespaces this run applies (istio-system only if it was not there), and teardown deletes
    /// only those; the guard owns no cluster. Needs only istioctl.
    pub async fn attach(
        mut run: KindRun,
        search: &ToolSearch,
        clusters: Vec<ClusterRef>,
    ) -> Result<KindTarget, KubeError> {
        let tools = preflight_for(Scope::Kubeconfig, search).await?;
        run.istioctl = tools.istioctl.iter().map(|t| t.path.clone()).collect();
        run.clusters = clusters.iter().map(|c| c.cluster.clone()).collect();
        let probe = probe::read_probe_binary(&run.probe_binary)?;
        let workdir = tempfile::Builder::new()
            .prefix("meshtrust-kubeconfig-")
            .tempdir()
            .map_err(KubeError::io("create a temp dir in", std::env::temp_dir()))?;
        run.workdir = workdir.path().to_owned();
        // No cluster is adopted: this guard deletes nothing.
        let guard = ClusterGuard::new("kind", &run.artifacts, true);
        let mut attached = Vec::new();
        for r in clusters {
            let client = r.client().await?;
            attached.push(KindCluster {
                cluster: r,
                client,
                namespaces: OwnedNamespaces::default(),
                istio_phase: 0,
            });
        }
        Ok(KindTarget {
            run,
            tools,
            clusters: attached,
            guard,
            probe,
            _workdir: workdir,
            registry_container: None,
            timings: Vec::new(),
        })
    }

    /// docker and kind, which only the kind target has.
    fn kind_tools(&self) -> Result<(PathBuf, PathBuf), KubeError> {
        match (&self.tools.docker, &self.tools.kind) {
            (Some(d), Some(k)) => Ok((d.path.clone(), k.path.clone())),
            _ => Err(KubeError::Workload {
                what: "this step".into(),
                namespace: "-".into(),
                reason: "it needs docker and kind, which target `kubeconfig` does not use \
                         (hint: use `--target kind`, or a proxy image with a shell)"
                    .into(),
            }),
        }
    }

    /// Marks the run failed: logs are exported before the clusters go.
    pub fn failed(&self) {
        self.guard.mark_failed();
    }

    fn get(&mut self, cluster: &str) -> Result<&mut KindCluster, KubeError> {
        self.clusters
            .iter_mut()
            .find(|c| c.cluster.cluster == cluster)
            .ok_or_else(|| KubeError::Workload {
                what: format!("cluster `{cluster}`"),
                namespace: "-".into(),
                reason: "not part of this run".into(),
            })
    }

    /// Plugs in `<certs_dir>/<cluster>`.
    pub async fn plug_in(&mut self, cluster: &str) -> Result<PlugIn, KubeError> {
        let started = Instant::now();
        let out = self.plug_in_untimed(cluster).await;
        self.timings
            .push((format!("{} {cluster}", "plug-in"), started.elapsed()));
        out
    }

    async fn plug_in_untimed(&mut self, cluster: &str) -> Result<PlugIn, KubeError> {
        let dir = self.run.certs_dir.join(cluster);
        let c = self.get(cluster)?;
        plugin::plug_in(&c.client, &mut c.namespaces, &dir).await
    }

    /// Replaces the cacerts Secret with `dir`'s files; istiod hot-reloads them (ISTIO-FACTS §2).
    pub async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<bool, KubeError> {
        let c = self.get(cluster)?;
        plugin::apply_secret(&c.client, &plugin::cacerts_secret(dir)?).await
    }

    fn install_spec(&self, cluster: &str) -> InstallSpec {
        let i = self
            .run
            .clusters
            .iter()
            .position(|c| c == cluster)
            .unwrap_or(0);
        InstallSpec {
            profile: self.run.profile,
            cluster_name: cluster.to_owned(),
            network: KindRun::network(i),
        }
    }

    /// Installs Istio with the istioctl of `phase` (0: install, 1: upgrade), waits for istiod,
    /// and returns the CA mode its log announced.
    pub async fn install(
        &mut self,
        cluster: &str,
        phase: usize,
    ) -> Result<Option<CaMode>, KubeError> {
        let started = Instant::now();
        let out = self.install_untimed(cluster, phase).await;
        self.timings.push((
            format!("install {cluster} (istioctl {phase})"),
            started.elapsed(),
        ));
        out
    }

    async fn install_untimed(
        &mut self,
        cluster: &str,
        phase: usize,
    ) -> Result<Option<CaMode>, KubeError> {
        let spec = self.install_spec(cluster);
        let istioctl = self
            .tools
            .istioctl
            .get(phase)
            .map(|t| t.path.clone())
            .ok_or_else(|| KubeError::Workload {
                what: format!("istioctl for phase {phase}"),
                namespace: "-".into(),
                reason: "not given (hint: pass `--istioctl PATH` once per phase)".into(),
            })?;
        let c = self.get(cluster)?;
        let cmd = if phase == 0 {
            istio::install_cmd(&istioctl, &c.cluster, &spec)
        } else {
            istio::upgrade_cmd(&istioctl, &c.cluster, &spec)
        };
        process::run(&cmd).await?;
        istio::wait_istiod(&c.client).await?;
        c.istio_phase = phase;
        istio::ca_mode(&c.client).await
    }

    /// Upgrades to the second istioctl and restarts the workloads onto the new sidecar.
    pub async fn upgrade(&mut self, cluster: &str) -> Result<Option<CaMode>, KubeError> {
        let started = Instant::now();
        let out = self.upgrade_untimed(cluster).await;
        self.timings
            .push((format!("{} {cluster}", "upgrade"), started.elapsed()));
        out
    }

    async fn upgrade_untimed(&mut self, cluster: &str) -> Result<Option<CaMode>, KubeError> {
        let mode = self.install(cluster, 1).await?;
        let c = self.get(cluster)?;
        istio::restart_workloads(&c.client, WORKLOAD_NAMESPACE).await?;
        Ok(mode)
    }

    pub async fn deploy(&mut self, cluster: &str) -> Result<(), KubeError> {
        let started = Instant::now();
        let out = self.deploy_untimed(cluster).await;
        self.timings
            .push((format!("{} {cluster}", "deploy"), started.elapsed()));
        out
    }

    async fn deploy_untimed(&mut self, cluster: &str) -> Result<(), KubeError> {
        let c = self.get(cluster)?;
        workloads::deploy(&c.client, &mut c.namespaces).await
    }

    pub async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        mode: MtlsMode,
    ) -> Result<(), KubeError> {
        let c = self.get(cluster)?;
        workloads::set_peer_authentication(&c.client, mode).await
    }

    /// The chain httpbin presents to sleep, captured in sleep's pod as UID 1337.
    pub async fn capture_chain(&mut self, cluster: &str) -> Result<ProbeOutput, KubeError> {
        let started = Instant::now();
        let out = self.capture_chain_untimed(cluster).await;
        self.timings
            .push((format!("{} {cluster}", "capture"), started.elapsed()));
        out
    }

    async fn capture_chain_untimed(&mut self, cluster: &str) -> Result<ProbeOutput, KubeError> {
        let delivery = self.run.delivery;
        let probe = self.probe.clone();
        let c = self.get(cluster)?;
        let (_, ip) = workloads::pod_ip(&c.client, WORKLOAD_NAMESPACE, "app=httpbin").await?;
        let (sleep, _) = workloads::pod_ip(&c.client, WORKLOAD_NAMESPACE, "app=sleep").await?;
        let addr = format!("{ip}:{HTTPBIN_CONTAINER_PORT}");
        let client = c.client.clone();
        let pods: Api<Pod> = Api::namespaced(client.clone(), WORKLOAD_NAMESPACE);
        let use_exec =
            delivery == ProbeDelivery::Exec && probe::proxy_has_shell(&pods, &sleep).await?;
        if use_exec {
            return probe::capture_via_exec(&client, WORKLOAD_NAMESPACE, &sleep, &probe, &addr)
                .await;
        }
        let image = self.probe_image(cluster).await?;
        let name = format!("meshtrust-probe-{}", std::process::id());
        probe::capture_via_ephemeral(&client, WORKLOAD_NAMESPACE, &sleep, &image, &addr, &name)
            .await
    }

    /// Serves the probe image to the cluster: the local registry (started once per run), the
    /// node wired to it, the image built and pushed; `kind load docker-image` if the registry
    /// cannot be had or the push fails. The order is the plan's.
    async fn probe_image(&mut self, cluster: &str) -> Result<String, KubeError> {
        let (docker, kind_bin) = self.kind_tools()?;
        let name = kind::cluster_name(&self.run.prefix, cluster);
        let image = registry::probe_image("dev");
        if self.registry_container.is_none() {
            self.registry_container = registry::start()
                .await
                .inspect_err(|e| tracing::warn!("{e}; falling back to `kind load docker-image`"))
                .ok();
        }
        let mut wired = self.registry_container.is_some();
        if wired {
            for cmd in registry::wire_node_cmds(&docker, &kind::control_plane(&name)) {
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
            process::run(&kind::load_image_cmd(&kind_bin, &image, &name)).await?;
        }
        Ok(image)
    }

    /// An HTTP request from sleep's own container (through its sidecar, so mTLS in the mesh):
    /// returns the status code curl saw (`000` when the connection failed).
    pub async fn request(&mut self, cluster: &str, url: &str) -> Result<String, KubeError> {
        let c = self.get(cluster)?;
        let (sleep, _) = workloads::pod_ip(&c.client, WORKLOAD_NAMESPACE, "app=sleep").await?;
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), WORKLOAD_NAMESPACE);
        let argv = request_argv(url);
        let out = probe::exec(
            &pods,
            &sleep,
            "sleep",
            argv,
            None,
            std::time::Duration::from_secs(30),
        )
        .await?;
        Ok(out.stdout.trim().to_owned())
    }

    /// `root-cert.pem` of `istio-ca-root-cert` in `foo`.
    pub async fn root_configmap(&mut self, cluster: &str) -> Result<Option<String>, KubeError> {
        let c = self.get(cluster)?;
        plugin::root_configmap(&c.client, WORKLOAD_NAMESPACE).await
    }

    /// Routes between the clusters' pod networks and remote secrets both ways, so each istiod
    /// discovers the other's endpoints.
    pub async fn connect_clusters(&mut self) -> Result<(), KubeError> {
        let (docker, kind_bin) = self.kind_tools()?;
        let names: Vec<String> = self
            .run
            .clusters
            .iter()
            .map(|c| kind::cluster_name(&self.run.prefix, c))
            .collect();
        let mut ips = Vec::new();
        for name in &names {
            let out = process::run(&kind::node_ip_cmd(&docker, &kind::control_plane(name))).await?;
            ips.push(out.stdout.trim().to_owned());
        }
        for (i, name) in names.iter().enumerate() {
            for (j, ip) in ips.iter().enumerate() {
                if let (true, Some(s)) = (i != j, Subnets::for_cluster(j + 1)) {
                    process::run(&kind::route_cmd(
                        &docker,
                        &kind::control_plane(name),
                        &s.pod,
                        ip,
                    ))
                    .await?;
                }
            }
        }
        let istioctl = self.tools.istioctl[0].path.clone();
        for (i, name) in names.iter().enumerate() {
            let server = format!("https://{}:6443", kind::control_plane(name));
            let _ = process::run(&kind::internal_kubeconfig_cmd(&kind_bin, name)).await?;
            let secret = process::run(&istio::create_remote_secret_cmd(
                &istioctl,
                &self.clusters[i].cluster,
                &server,
            ))
            .await?;
            let objects =
                workloads::parse_manifest("istioctl create-remote-secret output", &secret.stdout)?;
            for (j, other) in self.clusters.iter().enumerate() {
                if i != j {
                    workloads::apply(&other.client, plugin::ISTIO_NAMESPACE, &objects).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes what this run made: its namespaces, then (unless kept) its clusters.
    pub async fn teardown(mut self) -> Cleanup {
        for c in &mut self.clusters {
            for problem in c.namespaces.delete_all(&c.client).await {
                tracing::warn!("{problem}");
            }
        }
        let guard = self.guard.clone();
        tokio::task::spawn_blocking(move || guard.cleanup())
            .await
            .unwrap_or_default()
    }
}

/// curl from the sleep container: the status code only, a 10 s budget.
pub fn request_argv(url: &str) -> Vec<String> {
    [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
        url,
    ]
    .map(String::from)
    .to_vec()
}

/// The command that would dump a namespace's pods with kubectl, for a failure report when
/// kubectl is there (optional tool).
pub fn kubectl_dump_cmd(kubectl: &Path, cluster: &ClusterRef, ns: &str) -> Cmd {
    Cmd::new(kubectl)
        .args(cluster.cli_args())
        .args(["get", "pods,events", "-n", ns, "-o", "wide"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_asks_curl_for_the_status_code_only() {
        assert_eq!(
            request_argv("http://httpbin.foo:8000/headers").join(" "),
            "curl -sS -o /dev/null -w %{http_code} --max-time 10 http://httpbin.foo:8000/headers"
        );
    }
}
