//! Installing and upgrading Istio with istioctl, waiting for istiod, and reading from its log
//! which CA it chose: the plugged one ("Use local CA certificate") or its own self-signed root.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use super::cluster::ClusterRef;
use super::error::KubeError;
use super::plugin::ISTIO_NAMESPACE;
use super::process::Cmd;
use super::wait::{self, Check, Patience};

/// istioctl install waits for its own components (`--readiness-timeout`, 5 minutes by default)
/// after applying them; allow that plus the image pulls before it.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// istiod is one Deployment whose image is already pulled once istioctl install returns; three
/// minutes covers a slow node. A rollout after an upgrade pulls the new image first.
pub const ISTIOD_READY: Patience = Patience::new(Duration::from_secs(180), Duration::from_secs(2));
pub const ROLLOUT_READY: Patience = Patience::new(Duration::from_secs(300), Duration::from_secs(3));

/// The mesh ID every cluster shares (Istio's multicluster docs use `mesh1`).
pub const MESH_ID: &str = "mesh1";

pub use crate::scenario::target::DEFAULT_REVISION;

/// The istiod Deployment of `revision`: `istiod`, or `istiod-<revision>` for a control plane
/// installed with `--revision` (the same charts; checked the same way).
pub fn istiod_deployment(revision: &str) -> String {
    if revision == DEFAULT_REVISION {
        "istiod".to_owned()
    } else {
        format!("istiod-{revision}")
    }
}

/// The label selector of `revision`'s istiod pods: `app=istiod,istio.io/rev=<revision>`. With
/// two control planes in one cluster (a canary upgrade), `app=istiod` alone names both.
pub fn istiod_selector(revision: &str) -> String {
    format!("app=istiod,istio.io/rev={revision}")
}

/// istiod's log line in plug-in mode.
pub const PLUGGED_IN_LINE: &str = "Use local CA certificate";
/// istiod's log line when it made its own root.
pub const SELF_SIGNED_LINE: &str = "Use self-signed certificate as the CA certificate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// What the plug-in doc installs (istiod, gateways, permissive defaults).
    Demo,
    /// istiod only: faster, enough for chain checks.
    Minimal,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Demo => "demo",
            Profile::Minimal => "minimal",
        }
    }
}

/// One cluster's install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    pub profile: Profile,
    /// Istio's `clusterName`: the logical cluster (`cluster1`).
    pub cluster_name: String,
    /// Istio's `network`. One network for every kind cluster: the harness routes the clusters'
    /// pod networks to each other, so endpoints are reachable directly. Distinct networks would
    /// make istiod hide the other cluster's endpoints behind an east-west gateway that this
    /// setup does not install.
    pub network: String,
    /// `meshConfig.trustDomain`; `None` keeps Istio's `cluster.local`.
    pub trust_domain: Option<String>,
    /// `ISTIO_MULTIROOT_MESH=true` on istiod.
    pub multi_root: bool,
    /// `--revision`: a control plane beside the default one (a canary upgrade); `None` is the
    /// default revision.
    pub revision: Option<String>,
}

impl InstallSpec {
    /// The revision this spec installs (`default` when none is named).
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }
}

/// The flags of an install: `--revision` when one is named, then the `--set` values: profile,
/// mesh ID, cluster name, network, and the trust domain and `ISTIO_MULTIROOT_MESH` when asked.
/// One list for `install` and `manifest generate`, so that what the e2e-tools tier renders
/// offline is what a run installs.
pub fn install_values(spec: &InstallSpec) -> Vec<String> {
    let mut values = vec![
        format!("profile={}", spec.profile.name()),
        format!("values.global.meshID={MESH_ID}"),
        format!(
            "values.global.multiCluster.clusterName={}",
            spec.cluster_name
        ),
        format!("values.global.network={}", spec.network),
    ];
    if let Some(td) = &spec.trust_domain {
        values.push(format!("meshConfig.trustDomain={td}"));
    }
    if spec.multi_root {
        values.push("values.pilot.env.ISTIO_MULTIROOT_MESH=true".to_owned());
    }
    let revision = spec
        .revision
        .iter()
        .flat_map(|r| ["--revision".to_owned(), r.clone()]);
    revision
        .chain(values.into_iter().flat_map(|v| ["--set".to_owned(), v]))
        .collect()
}

/// `istioctl install` with the multicluster values, against one cluster.
pub fn install_cmd(istioctl: &Path, cluster: &ClusterRef, spec: &InstallSpec) -> Cmd {
    Cmd::new(istioctl)
        .arg("install")
        .args(install_values(spec))
        .arg("-y")
        .args(cluster.cli_args())
        .timeout(INSTALL_TIMEOUT)
}

/// `istioctl manifest generate` with the install's values: the manifests `install` would
/// apply, rendered offline (no cluster).
pub fn manifest_generate_cmd(istioctl: &Path, spec: &InstallSpec) -> Cmd {
    Cmd::new(istioctl)
        .args(["manifest", "generate"])
        .args(install_values(spec))
        .timeout(Duration::from_secs(120))
}

/// The in-place upgrade: the new istioctl installs its own version over the old one with the
/// same values. This is what `istioctl upgrade` does, minus its interactive checks; one command
/// shape for both phases keeps the plan and the tests simple.
pub fn upgrade_cmd(istioctl_b: &Path, cluster: &ClusterRef, spec: &InstallSpec) -> Cmd {
    install_cmd(istioctl_b, cluster, spec)
}

/// `istioctl uninstall --purge -y`: the reset between scenarios that share a cluster (istiod,
/// its webhooks and CRDs go; the next install starts from nothing).
pub fn uninstall_cmd(istioctl: &Path, cluster: &ClusterRef) -> Cmd {
    Cmd::new(istioctl)
        .args(["uninstall", "--purge", "-y"])
        .args(cluster.cli_args())
        .timeout(Duration::from_secs(5 * 60))
}

/// `istioctl uninstall --revision REVISION -y`: removes one control plane of a canary upgrade
/// (`default` is the one installed without `--revision`), leaving the other and the CRDs.
pub fn uninstall_revision_cmd(istioctl: &Path, cluster: &ClusterRef, revision: &str) -> Cmd {
    Cmd::new(istioctl)
        .args(["uninstall", "--revision", revision, "-y"])
        .args(cluster.cli_args())
        .timeout(Duration::from_secs(5 * 60))
}

/// `istioctl create-remote-secret` for `cluster` as seen from the other clusters' istiods:
/// `server` is its API server's address inside the `kind` docker network (kind's `--internal`
/// kubeconfig), not the host port.
pub fn create_remote_secret_cmd(istioctl: &Path, cluster: &ClusterRef, server: &str) -> Cmd {
    Cmd::new(istioctl)
        .args([
            "create-remote-secret",
            "--name",
            &cluster.cluster,
            "--server",
            server,
        ])
        .args(cluster.cli_args())
        .timeout(Duration::from_secs(60))
}

/// Which CA istiod chose, as its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaMode {
    PluggedIn,
    SelfSigned,
}

impl CaMode {
    /// The mode the log announced last (a log spanning a restart may hold both), or `None` if
    /// istiod has not said yet.
    pub fn detect(log: &str) -> Option<CaMode> {
        let plugged = log.rfind(PLUGGED_IN_LINE);
        let self_signed = log.rfind(SELF_SIGNED_LINE);
        match (plugged, self_signed) {
            (None, None) => None,
            (Some(_), None) => Some(CaMode::PluggedIn),
            (None, Some(_)) => Some(CaMode::SelfSigned),
            (Some(p), Some(s)) => Some(if p > s {
                CaMode::PluggedIn
            } else {
                CaMode::SelfSigned
            }),
        }
    }

    pub fn log_line(self) -> &'static str {
        match self {
            CaMode::PluggedIn => PLUGGED_IN_LINE,
            CaMode::SelfSigned => SELF_SIGNED_LINE,
        }
    }
}

/// The message of an istiod log line (`<time>\t<level>\t[<scope>\t]<message>`), or the line
/// itself when it has no such prefix.
pub fn log_message(line: &str) -> &str {
    let mut fields = line.splitn(3, '\t');
    match (fields.next(), fields.next(), fields.next()) {
        (Some(_), Some(level), Some(rest)) if LEVELS.contains(&level) => rest,
        _ => line,
    }
}

const LEVELS: [&str; 6] = ["debug", "info", "warn", "error", "fatal", "none"];

fn log_level(line: &str) -> Option<&str> {
    let mut fields = line.splitn(3, '\t');
    fields.next()?;
    fields.next().filter(|l| LEVELS.contains(l))
}

/// istiod's log lines about its CA (mode, plugged files, CA errors), as messages.
pub fn ca_log_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let m = log_message(l);
            m.contains(PLUGGED_IN_LINE)
                || m.contains(SELF_SIGNED_LINE)
                || m.contains("plugged-in cert")
                || m.contains("CA bundle")
                || m.contains("failed to create")
        })
        .map(|l| log_message(l).to_owned())
        .collect()
}

/// Why istiod exited, from the log of a container that crashed: the last `error`/`fatal` line
/// (pilot-discovery logs its start-up error and exits, e.g. `failed to create discovery
/// service: ... incomplete signing CA bundle detected`), or cobra's `Error: ...` line.
/// Returns the reason and every error line, or `None` if the log names no error.
pub fn refusal_in_log(log: &str) -> Option<(String, Vec<String>)> {
    let errors: Vec<String> = log
        .lines()
        .filter(|l| matches!(log_level(l), Some("error" | "fatal")) || l.starts_with("Error: "))
        .map(|l| log_message(l).trim_start_matches("Error: ").to_owned())
        .collect();
    let reason = errors.last()?.clone();
    Some((reason, errors))
}

/// Whether istiod's `discovery` container has crashed in this pod (restarted, or waiting in
/// CrashLoopBackOff, or terminated with an error): what it says, for the report.
pub fn discovery_crashed(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let c = statuses.iter().find(|c| c.name == "discovery")?;
    let waiting = c
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    let terminated = c
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.exit_code != 0)
        .map(|t| format!("exited {}", t.exit_code));
    if c.restart_count > 0 || terminated.is_some() || waiting.as_deref() == Some("CrashLoopBackOff")
    {
        Some(format!(
            "discovery restarted {} time(s){}",
            c.restart_count,
            waiting
                .or(terminated)
                .map(|w| format!(", {w}"))
                .unwrap_or_default()
        ))
    } else {
        None
    }
}

/// Polls `revision`'s istiod pods until one has crashed with an error in its log; returns the
/// reason and the error lines. Runs until dropped (the install's own deadline bounds it).
pub async fn watch_for_refusal(client: &kube::Client, revision: &str) -> (String, Vec<String>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    loop {
        if let Some(found) = refusal_now(&pods, revision).await {
            return found;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// One look: a crashed istiod pod of `revision` whose last run logged an error.
pub async fn refusal_now(pods: &Api<Pod>, revision: &str) -> Option<(String, Vec<String>)> {
    let list = pods
        .list(&ListParams::default().labels(&istiod_selector(revision)))
        .await
        .ok()?;
    for pod in list {
        let Some(state) = discovery_crashed(&pod) else {
            continue;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        for previous in [true, false] {
            let params = LogParams {
                container: Some("discovery".into()),
                previous,
                ..LogParams::default()
            };
            if let Ok(log) = pods.logs(&name, &params).await
                && let Some((reason, mut lines)) = refusal_in_log(&log)
            {
                lines.insert(0, format!("{name}: {state}"));
                return Some((reason, lines));
            }
        }
    }
    None
}

/// How a Deployment's rollout stands, in one line for a wait's "last seen".
pub fn rollout_state(d: &Deployment) -> Check<()> {
    let want = d.spec.replicas.unwrap_or(1);
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    // Ready only when the controller has seen the latest spec and every replica is new and
    // ready; old replicas still terminating count against it (`kubectl rollout status` rules).
    if observed >= generation && updated == want && ready == want && total == want {
        return Check::Done(());
    }
    let conditions: Vec<String> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            format!(
                "{}={}{}",
                c.type_.unwrap_or_default(),
                c.status.unwrap_or_default(),
                c.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )
        })
        .collect();
    Check::NotYet(format!(
        "{ready}/{want} ready, {updated} updated, {total} total, generation {observed}/{generation}; conditions: {}",
        if conditions.is_empty() {
            "none".to_owned()
        } else {
            conditions.join(", ")
        }
    ))
}

/// Waits for a Deployment's rollout to finish.
pub async fn wait_rollout(
    client: &kube::Client,
    ns: &str,
    name: &str,
    patience: Patience,
) -> Result<(), KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    wait::poll(
        format!("deployment `{ns}/{name}` to be ready"),
        patience.scaled(),
        || {
            let api = api.clone();
            let name = name.to_owned();
            async move {
                match api.get_opt(&name).await {
                    Ok(Some(d)) => rollout_state(&d),
                    Ok(None) => Check::NotYet("the deployment does not exist".into()),
                    Err(e) => Check::NotYet(format!("api error: {e}")),
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// Waits for `revision`'s istiod; on timeout the error carries the tail of its log.
pub async fn wait_istiod(client: &kube::Client, revision: &str) -> Result<(), KubeError> {
    let deployment = istiod_deployment(revision);
    match wait_rollout(client, ISTIO_NAMESPACE, &deployment, ISTIOD_READY).await {
        Ok(()) => Ok(()),
        Err(KubeError::Wait(mut e)) => {
            if let Ok(log) = istiod_log(client, revision).await {
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                e.last_seen.push_str("\nistiod log (last 20 lines):\n");
                e.last_seen
                    .push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
            Err(KubeError::Wait(e))
        }
        Err(e) => Err(e),
    }
}

/// The `discovery` container's log of every live istiod pod of `revision`, concatenated (the
/// other revision of a canary upgrade has its own CA log). A pod being deleted (after an
/// upgrade's rollout, the old istiod lingers for its grace period) is not the istiod that
/// answers, and its log may name the old CA mode: it is skipped, and so is a pod that vanished
/// between the list and the read (404).
pub async fn istiod_log(client: &kube::Client, revision: &str) -> Result<String, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(&istiod_selector(revision)))
        .await
        .map_err(KubeError::api("list istiod pods"))?;
    let mut log = String::new();
    for pod in list {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.unwrap_or_default();
        let params = LogParams {
            container: Some("discovery".into()),
            ..LogParams::default()
        };
        match pods.logs(&name, &params).await {
            Ok(text) => log.push_str(&text),
            Err(e) if super::error::is_not_found(&e) => {
                tracing::debug!("istiod pod `{name}` went away before its log was read");
            }
            Err(e) => {
                return Err(KubeError::api(format!(
                    "read the log of `{ISTIO_NAMESPACE}/{name}`"
                ))(e));
            }
        }
    }
    Ok(log)
}

/// `revision`'s istiod's CA mode, from its log. It logs the line at startup, before it reports
/// Ready, so this is read once istiod is Ready.
pub async fn ca_mode(client: &kube::Client, revision: &str) -> Result<Option<CaMode>, KubeError> {
    Ok(CaMode::detect(&istiod_log(client, revision).await?))
}

/// `kubectl rollout restart deployment/NAME -n NS` (kube's `restart`: the same template
/// annotation), then waits for the rollout: one workload picks up its namespace's revision.
pub async fn restart_deployment(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<(), KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.restart(name)
        .await
        .map_err(KubeError::api(format!("restart deployment `{ns}/{name}`")))?;
    wait_rollout(client, ns, name, ROLLOUT_READY).await
}

/// Waits until `revision`'s istiod Deployment is gone (after `istioctl uninstall --revision`).
pub async fn wait_istiod_gone(client: &kube::Client, revision: &str) -> Result<(), KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    let name = istiod_deployment(revision);
    wait::poll(
        format!("deployment `{ISTIO_NAMESPACE}/{name}` to be gone"),
        ISTIOD_READY.scaled(),
        || {
            let api = api.clone();
            let name = name.clone();
            async move {
                match api.get_opt(&name).await {
                    Ok(None) => Check::Done(()),
                    Ok(Some(_)) => Check::NotYet("it still exists".into()),
                    Err(e) => Check::NotYet(format!("api error: {e}")),
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// `kubectl rollout restart` for every Deployment in `ns` (kube's `restart` sets the same
/// `kubectl.kubernetes.io/restartedAt` template annotation), then waits for each rollout: after
/// an upgrade, workloads get the new sidecar and a freshly issued certificate.
pub async fn restart_workloads(client: &kube::Client, ns: &str) -> Result<Vec<String>, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api(format!("list deployments in `{ns}`")))?
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    for name in &names {
        api.restart(name)
            .await
            .map_err(KubeError::api(format!("restart deployment `{ns}/{name}`")))?;
    }
    for name in &names {
        wait_rollout(client, ns, name, ROLLOUT_READY).await?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster1() -> ClusterRef {
        ClusterRef {
            cluster: "cluster1".into(),
            kubeconfig: Some("/w/mt-cluster1.kubeconfig".into()),
            context: Some("kind-mt-cluster1".into()),
        }
    }

    fn spec(profile: Profile) -> InstallSpec {
        InstallSpec {
            profile,
            cluster_name: "cluster1".into(),
            network: "network1".into(),
            trust_domain: None,
            multi_root: false,
            revision: None,
        }
    }

    fn listed_pod(name: &str, deleting: bool) -> serde_json::Value {
        let mut meta = serde_json::json!({"name": name, "namespace": "istio-system"});
        if deleting {
            meta["deletionTimestamp"] = "2026-11-30T10:00:00Z".into();
        }
        serde_json::json!({"metadata": meta})
    }

    fn pod_list(pods: Vec<serde_json::Value>) -> String {
        serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods})
            .to_string()
    }

    fn not_found() -> (u16, String) {
        (
            404,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "pods \"x\" not found", "reason": "NotFound", "code": 404})
            .to_string(),
        )
    }

    #[tokio::test]
    async fn after_an_upgrade_the_log_is_the_live_istiods_not_the_terminating_ones() {
        let (client, calls) =
            crate::kube::mock::api_server(|_, path| match path.rsplit('/').next() {
                Some("pods") => (
                    200,
                    pod_list(vec![
                        listed_pod("istiod-old", true),
                        listed_pod("istiod-gone", false),
                        listed_pod("istiod-new", false),
                    ]),
                ),
                _ if path.ends_with("istiod-gone/log") => not_found(),
                _ if path.ends_with("istiod-new/log") => {
                    (200, format!("x\tinfo\t{PLUGGED_IN_LINE}\n"))
                }
                _ => (200, format!("x\tinfo\t{SELF_SIGNED_LINE}\n")),
            });
        let log = istiod_log(&client, DEFAULT_REVISION).await.unwrap();
        assert_eq!(log, format!("x\tinfo\t{PLUGGED_IN_LINE}\n"));
        let calls = calls.lock().unwrap();
        assert!(
            !calls.iter().any(|c| c.contains("istiod-old/log")),
            "the terminating pod's log was read: {calls:?}"
        );
        // Only the default revision's pods: a canary istiod's log is not this istiod's.
        assert!(
            calls[0].ends_with("pods?&labelSelector=app%3Distiod%2Cistio.io%2Frev%3Ddefault"),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn a_canary_istiods_log_is_read_from_its_own_pods_only() {
        let (client, calls) = crate::kube::mock::api_server(|_, path| {
            if path.ends_with("/pods") {
                (200, pod_list(vec![listed_pod("istiod-canary-x", false)]))
            } else {
                (200, format!("x\tinfo\t{SELF_SIGNED_LINE}\n"))
            }
        });
        let mode = ca_mode(&client, "canary").await.unwrap();
        assert_eq!(mode, Some(CaMode::SelfSigned));
        let calls = calls.lock().unwrap();
        assert!(
            calls[0].ends_with("pods?&labelSelector=app%3Distiod%2Cistio.io%2Frev%3Dcanary"),
            "{calls:?}"
        );
        assert!(calls[1].contains("/pods/istiod-canary-x/log?"), "{calls:?}");
    }

    fn deployment(name: &str, ready: i32) -> String {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                "readyReplicas": ready}})
        .to_string()
    }

    #[tokio::test]
    async fn an_uninstalled_revision_is_waited_for_until_its_istiod_is_gone() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        let (client, calls) = crate::kube::mock::api_server(move |_, path| {
            assert_eq!(
                path,
                "/apis/apps/v1/namespaces/istio-system/deployments/istiod-canary"
            );
            // Still there on the first look, gone on the second.
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                (200, deployment("istiod-canary", 1))
            } else {
                not_found()
            }
        });
        wait_istiod_gone(&client, "canary").await.unwrap();
        assert_eq!(calls.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_restart_patches_the_deployment_then_waits_for_its_rollout() {
        let (client, calls) = crate::kube::mock::api_server(|method, path| match (method, path) {
            (_, "/apis/apps/v1/namespaces/foo/deployments/httpbin") => {
                (200, deployment("httpbin", 1))
            }
            _ => not_found(),
        });
        restart_deployment(&client, "foo", "httpbin").await.unwrap();
        let calls = calls.lock().unwrap().clone();
        assert!(
            calls[0].starts_with("PATCH /apis/apps/v1/namespaces/foo/deployments/httpbin?"),
            "{calls:?}"
        );
        assert!(
            calls[1].starts_with("GET /apis/apps/v1/namespaces/foo/deployments/httpbin"),
            "{calls:?}"
        );
        // A deployment that is not there is named, and nothing is waited for.
        let err = restart_deployment(&client, "foo", "sleep")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("kubernetes api: cannot restart deployment `foo/sleep`"),
            "{err}"
        );
    }

    #[test]
    fn a_revision_names_its_istiod_deployment_and_pods() {
        assert_eq!(istiod_deployment(DEFAULT_REVISION), "istiod");
        assert_eq!(istiod_deployment("canary"), "istiod-canary");
        assert_eq!(istiod_deployment("1-31-4"), "istiod-1-31-4");
        assert_eq!(
            istiod_selector(DEFAULT_REVISION),
            "app=istiod,istio.io/rev=default"
        );
        assert_eq!(istiod_selector("canary"), "app=istiod,istio.io/rev=canary");
        let mut canary = spec(Profile::Minimal);
        assert_eq!(canary.revision(), DEFAULT_REVISION);
        canary.revision = Some("canary".into());
        assert_eq!(canary.revision(), "canary");
    }

    #[test]
    fn a_canary_install_names_its_revision_and_keeps_every_value() {
        let mut canary = spec(Profile::Minimal);
        canary.revision = Some("canary".into());
        assert_eq!(
            install_cmd(Path::new("istioctl"), &cluster1(), &canary).to_string(),
            "istioctl install --revision canary --set profile=minimal --set values.global.meshID=mesh1 \
             --set values.global.multiCluster.clusterName=cluster1 --set values.global.network=network1 \
             -y --kubeconfig /w/mt-cluster1.kubeconfig --context kind-mt-cluster1"
        );
        // Without a revision there is no `--revision` at all (the default control plane).
        let default = install_cmd(Path::new("istioctl"), &cluster1(), &spec(Profile::Minimal));
        assert!(!default.args.iter().any(|a| a == "--revision"), "{default}");
        assert_eq!(
            manifest_generate_cmd(Path::new("istioctl"), &canary).args[..4],
            ["manifest", "generate", "--revision", "canary"]
        );
    }

    #[test]
    fn a_revision_is_uninstalled_alone_with_the_clusters_kubeconfig() {
        assert_eq!(
            uninstall_revision_cmd(Path::new("istioctl"), &cluster1(), DEFAULT_REVISION)
                .to_string(),
            "istioctl uninstall --revision default -y --kubeconfig /w/mt-cluster1.kubeconfig \
             --context kind-mt-cluster1"
        );
    }

    #[tokio::test]
    async fn any_other_error_reading_the_log_still_fails_the_call() {
        let (client, _) = crate::kube::mock::api_server(|_, path| {
            if path.ends_with("/pods") {
                (200, pod_list(vec![listed_pod("istiod-a", false)]))
            } else {
                (
                    500,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "boom", "reason": "InternalError", "code": 500})
                    .to_string(),
                )
            }
        });
        let err = istiod_log(&client, DEFAULT_REVISION).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kubernetes api: cannot read the log of `istio-system/istiod-a`"),
            "{err}"
        );
    }

    #[test]
    fn the_install_command_sets_the_profile_and_the_multicluster_values() {
        assert_eq!(
            install_cmd(Path::new("istioctl"), &cluster1(), &spec(Profile::Demo)).to_string(),
            "istioctl install --set profile=demo --set values.global.meshID=mesh1 \
             --set values.global.multiCluster.clusterName=cluster1 \
             --set values.global.network=network1 -y \
             --kubeconfig /w/mt-cluster1.kubeconfig --context kind-mt-cluster1"
        );
    }

    #[test]
    fn the_upgrade_installs_with_the_second_istioctl() {
        let cmd = upgrade_cmd(
            Path::new("/opt/istio-1.27.1/bin/istioctl"),
            &cluster1(),
            &spec(Profile::Minimal),
        );
        assert_eq!(cmd.program, Path::new("/opt/istio-1.27.1/bin/istioctl"));
        assert_eq!(cmd.args[..3], ["install", "--set", "profile=minimal"]);
    }

    #[test]
    fn the_remote_secret_names_the_cluster_and_its_internal_server() {
        assert_eq!(
            create_remote_secret_cmd(
                Path::new("istioctl"),
                &cluster1(),
                "https://mt-cluster1-control-plane:6443"
            )
            .to_string(),
            "istioctl create-remote-secret --name cluster1 --server https://mt-cluster1-control-plane:6443 \
             --kubeconfig /w/mt-cluster1.kubeconfig --context kind-mt-cluster1"
        );
    }

    const PLUGGED_LOG: &str = "\
2026-11-29T04:10:01.120Z\tinfo\tFLAG: --caCertFile=\"\"
2026-11-29T04:10:01.410Z\tinfo\tUse plugged-in cert at etc/cacerts/ca-key.pem
2026-11-29T04:10:01.411Z\tinfo\tx509 cert - Issuer: \"CN=Intermediate CA,O=Istio,L=cluster1\"
2026-11-29T04:10:01.412Z\tinfo\tIstiod certificates are reloaded
2026-11-29T04:10:01.413Z\tinfo\tUse local CA certificate
2026-11-29T04:10:01.520Z\tinfo\tready
";

    const SELF_SIGNED_LOG: &str = "\
2026-11-29T04:10:01.120Z\tinfo\tFLAG: --caCertFile=\"\"
2026-11-29T04:10:01.300Z\tinfo\tUse self-signed certificate as the CA certificate
2026-11-29T04:10:01.900Z\tinfo\tpkica\tLoad signing key and cert from existing secret istio-system/istio-ca-secret
";

    #[test]
    fn the_log_line_tells_plugged_in_from_self_signed() {
        assert_eq!(CaMode::detect(PLUGGED_LOG), Some(CaMode::PluggedIn));
        assert_eq!(CaMode::detect(SELF_SIGNED_LOG), Some(CaMode::SelfSigned));
        assert_eq!(CaMode::detect("2026-11-29T04:10:01Z\tinfo\tstarting"), None);
        // A log spanning a restart: the last word counts.
        let both = format!("{SELF_SIGNED_LOG}{PLUGGED_LOG}");
        assert_eq!(CaMode::detect(&both), Some(CaMode::PluggedIn));
        let both = format!("{PLUGGED_LOG}{SELF_SIGNED_LOG}");
        assert_eq!(CaMode::detect(&both), Some(CaMode::SelfSigned));
    }

    // pilot-discovery logs its start-up error, then cobra prints it again, and exits.
    const REFUSED_LOG: &str = "\
2026-11-29T04:10:01.120Z\tinfo\tFLAG: --caCertFile=\"\"
2026-11-29T04:10:01.410Z\tinfo\tUse plugged-in cert at etc/cacerts/ca-key.pem
2026-11-29T04:10:01.420Z\terror\tfailed to create discovery service: failed to create CA: \
failed to create an istiod CA: incomplete signing CA bundle detected
Error: failed to create discovery service: failed to create CA: failed to create an istiod CA: \
incomplete signing CA bundle detected
";

    #[test]
    fn a_crashed_istiods_error_lines_are_the_refusal() {
        let (reason, lines) = refusal_in_log(REFUSED_LOG).unwrap();
        assert_eq!(
            reason,
            "failed to create discovery service: failed to create CA: failed to create an istiod \
             CA: incomplete signing CA bundle detected"
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(refusal_in_log(PLUGGED_LOG), None);
        assert_eq!(
            ca_log_lines(PLUGGED_LOG),
            [
                "Use plugged-in cert at etc/cacerts/ca-key.pem",
                "Use local CA certificate"
            ]
        );
        assert_eq!(log_message("no tabs here"), "no tabs here");
    }

    #[test]
    fn an_uninstall_purges_with_the_clusters_kubeconfig() {
        assert_eq!(
            uninstall_cmd(Path::new("istioctl"), &cluster1()).to_string(),
            "istioctl uninstall --purge -y --kubeconfig /w/mt-cluster1.kubeconfig --context kind-mt-cluster1"
        );
    }

    #[test]
    fn a_non_default_trust_domain_and_multi_root_are_install_values() {
        let mut s = spec(Profile::Minimal);
        s.trust_domain = Some("example.org".into());
        s.multi_root = true;
        let line = install_cmd(Path::new("istioctl"), &cluster1(), &s).to_string();
        assert!(
            line.contains("--set meshConfig.trustDomain=example.org"),
            "{line}"
        );
        assert!(
            line.contains("--set values.pilot.env.ISTIO_MULTIROOT_MESH=true"),
            "{line}"
        );
    }

    fn istiod_pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod-1"},
            "status": {"containerStatuses": [status]}
        }))
        .unwrap()
    }

    #[test]
    fn a_crash_looping_discovery_container_is_seen_and_a_running_one_is_not() {
        let crashing = istiod_pod(serde_json::json!({
            "name": "discovery", "ready": false, "restartCount": 3, "image": "", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}
        }));
        assert_eq!(
            discovery_crashed(&crashing).as_deref(),
            Some("discovery restarted 3 time(s), CrashLoopBackOff")
        );
        let running = istiod_pod(serde_json::json!({
            "name": "discovery", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"running": {}}
        }));
        assert_eq!(discovery_crashed(&running), None);
    }

    #[test]
    fn a_rollout_in_progress_says_where_it_stands() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"replicas": 2, "updatedReplicas": 1, "readyReplicas": 1, "observedGeneration": 2,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}
        }))
        .unwrap();
        match rollout_state(&d) {
            Check::NotYet(seen) => assert_eq!(
                seen,
                "1/1 ready, 1 updated, 2 total, generation 2/2; conditions: Progressing=True (ReplicaSetUpdated)"
            ),
            Check::Done(()) => panic!("an old replica is still there"),
        }
        let done: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "observedGeneration": 2}
        }))
        .unwrap();
        assert!(matches!(rollout_state(&done), Check::Done(())));
    }
}
