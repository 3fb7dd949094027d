//! kind clusters: the per-cluster config (distinct pod and service subnets, patched from the
//! shared `kind-config.yaml`), the `kind` command lines, parallel creation with retries, and the
//! guard that deletes every cluster this run created, whatever happens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ConstantBuilder, Retryable as _};

use super::cluster::ClusterRef;
use super::error::KubeError;
use super::process::{self, Cmd, ProcessError};

/// `--keep`'s environment twin: leave the clusters for a post-mortem.
pub const KEEP_ENV: &str = "MESHTRUST_KEEP";

/// kind's own wait for the control plane (`--wait`). 5 minutes covers a cold node-image pull on
/// a CI runner; a warm create takes about 30 seconds.
pub const CREATE_WAIT: &str = "5m";
/// The process deadline is kind's wait plus the image pull and node boot that come before it.
const CREATE_TIMEOUT: Duration = Duration::from_secs(8 * 60);
/// `kind delete` stops and removes the node containers; a minute is generous.
const DELETE_TIMEOUT: Duration = Duration::from_secs(60);
/// `kind export logs` copies journal and pod logs out of every node.
const EXPORT_LOGS_TIMEOUT: Duration = Duration::from_secs(120);
/// kind create fails now and then for reasons that do not repeat (a kubelet that is slow to
/// start, "failed to init node with kubeadm"): two more tries, 10 s apart.
const CREATE_RETRIES: usize = 2;
const CREATE_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Whether `MESHTRUST_KEEP` asks to keep the clusters (`1`, `true`, `yes`).
pub fn keep_from_env() -> bool {
    std::env::var(KEEP_ENV).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

/// The kind cluster's name for a logical cluster: `meshtrust-cluster1`.
pub fn cluster_name(prefix: &str, cluster: &str) -> String {
    format!("{prefix}-{cluster}")
}

/// Every kind cluster meshtrust creates is named `meshtrust-...`; a run deletes the stale
/// ones it finds at start (see [`stale_clusters`]).
pub const SWEEP_PREFIX: &str = "meshtrust-";

/// A run's own prefix, `<base>-<unix seconds>-<pid>`: two runs never share a cluster name (a
/// leaked cluster cannot make the next run's `create` fail), and the name says when its run
/// started, which is how a later run knows it is stale.
pub fn run_prefix(base: &str, started: std::time::SystemTime) -> String {
    let secs = started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{base}-{secs}-{}", std::process::id())
}

/// kind's limits on a cluster name (kind v0.33.0: `^[a-z0-9.-]+$`,
/// `pkg/internal/apis/config/validate.go`; at most 50 characters, `clusterNameMax` in
/// `pkg/cluster/internal/create/create.go`).
pub const KIND_NAME_MAX: usize = 50;

/// Checks, before anything runs, that every cluster name `--prefix base` makes is one kind
/// accepts: the longest, with a 10-digit start time, the largest pid Linux hands out
/// (4194304) and `cluster2`. The error says what to change.
pub fn check_prefix(base: &str) -> Result<(), String> {
    if base.is_empty()
        || !base
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(format!(
            "`--prefix {base}` is not a kind cluster name: kind takes lowercase letters, digits, `.` and `-` only (hint: `--prefix {}`)",
            suggest_prefix(base)
        ));
    }
    let longest = cluster_name(&format!("{base}-{}-4194304", 10u64.pow(9)), "cluster2");
    if longest.len() > KIND_NAME_MAX {
        let room = KIND_NAME_MAX - (longest.len() - base.len());
        return Err(format!(
            "`--prefix {base}` is too long: cluster names are `<prefix>-<start>-<pid>-cluster1`, up to {} characters with it, and kind takes {KIND_NAME_MAX} (hint: a prefix of at most {room} characters)",
            longest.len()
        ));
    }
    Ok(())
}

/// `base` lowercased, every other character a `-`.
fn suggest_prefix(base: &str) -> String {
    let s: String = base
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.trim_matches('-').is_empty() {
        "meshtrust".into()
    } else {
        s
    }
}

/// When the run that named `name` started (unix seconds), if a stamped run named it.
pub fn run_stamp(name: &str) -> Option<u64> {
    let parts: Vec<&str> = name.split('-').collect();
    parts.windows(2).find_map(|w| {
        let stamped = w[0].len() == 10
            && w[0].bytes().all(|b| b.is_ascii_digit())
            && !w[1].is_empty()
            && w[1].bytes().all(|b| b.is_ascii_digit());
        stamped.then(|| w[0].parse().ok()).flatten()
    })
}

/// The clusters a run starting at `started` (unix seconds) deletes before it creates its own:
/// every `meshtrust-*` cluster from a run that started earlier (or from before runs were
/// stamped). A run that started in the same second or later is left alone.
pub fn stale_clusters<'a>(existing: &[&'a str], started: u64) -> Vec<&'a str> {
    existing
        .iter()
        .copied()
        .filter(|n| n.starts_with(SWEEP_PREFIX))
        .filter(|n| run_stamp(n).is_none_or(|t| t < started))
        .collect()
}

/// The kubeconfig context kind writes for a cluster.
pub fn context_name(kind_name: &str) -> String {
    format!("kind-{kind_name}")
}

/// Cluster N's pod and service subnets: `10.1N.0.0/16` and `10.255.1N.0/24`, distinct so that
/// pod networks can be routed between clusters (as Istio's multicluster kind setup does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnets {
    pub pod: String,
    pub service: String,
}

impl Subnets {
    /// `index` is 1-based and at most 9 (the scheme has one digit for it).
    pub fn for_cluster(index: usize) -> Option<Subnets> {
        (1..=9).contains(&index).then(|| Subnets {
            pod: format!("10.1{index}.0.0/16"),
            service: format!("10.255.1{index}.0/24"),
        })
    }
}

/// `kind-config.yaml` with cluster N's subnets; everything else (nodes, the containerd registry
/// patch) is kept as it is.
pub fn patch_config(base: &str, base_path: &Path, index: usize) -> Result<String, KubeError> {
    use serde_norway::Value;
    let bad = |reason: String| KubeError::KindConfig {
        path: base_path.to_owned(),
        reason,
    };
    let subnets = Subnets::for_cluster(index)
        .ok_or_else(|| bad(format!("cluster number `{index}` is outside 1..=9")))?;
    let mut doc: Value = serde_norway::from_str(base).map_err(|e| bad(e.to_string()))?;
    let root = doc
        .as_mapping_mut()
        .ok_or_else(|| bad("the document is not a mapping".into()))?;
    match root.get("kind").and_then(Value::as_str) {
        Some("Cluster") => {}
        other => return Err(bad(format!("`kind` is {other:?}, not `Cluster`"))),
    }
    let networking = root
        .entry(Value::from("networking"))
        .or_insert_with(|| Value::Mapping(Default::default()));
    let networking = networking
        .as_mapping_mut()
        .ok_or_else(|| bad("`networking` is not a mapping".into()))?;
    networking.insert("podSubnet".into(), subnets.pod.into());
    networking.insert("serviceSubnet".into(), subnets.service.into());
    let mut text = format!(
        "# generated by meshtrust from {} for cluster {index}\n",
        base_path.display()
    );
    text.push_str(&serde_norway::to_string(&doc).map_err(|e| bad(e.to_string()))?);
    Ok(text)
}

/// The run's own kubeconfig for cluster `name` (0600, in the run's work dir). Every kind
/// command and every client gets it: without `--kubeconfig`, `kind create` merges the cluster
/// into the user's `~/.kube/config` and makes it the current context, and `kind delete` then
/// leaves that file with no current context.
pub fn kubeconfig_path(workdir: &Path, name: &str) -> PathBuf {
    workdir.join(format!("{name}.kubeconfig"))
}

/// `KUBECONFIG` too, for the kind subcommands that have no `--kubeconfig` flag of their own
/// (`export logs`): nothing kind does may fall back to the user's file.
fn kind_cmd(kind: &Path, kubeconfig: &Path) -> Cmd {
    Cmd::new(kind).env("KUBECONFIG", kubeconfig.display().to_string())
}

pub fn create_cmd(kind: &Path, name: &str, config: &Path, kubeconfig: &Path) -> Cmd {
    kind_cmd(kind, kubeconfig)
        .args(["create", "cluster", "--name", name, "--config"])
        .arg(config.display().to_string())
        .args(["--image", super::tools::KIND_NODE_IMAGE])
        .arg("--kubeconfig")
        .arg(kubeconfig.display().to_string())
        .args(["--wait", CREATE_WAIT])
        .timeout(CREATE_TIMEOUT)
}

pub fn delete_cmd(kind: &Path, name: &str, kubeconfig: &Path) -> Cmd {
    kind_cmd(kind, kubeconfig)
        .args(["delete", "cluster", "--name", name, "--kubeconfig"])
        .arg(kubeconfig.display().to_string())
        .timeout(DELETE_TIMEOUT)
}

pub fn get_clusters_cmd(kind: &Path) -> Cmd {
    Cmd::new(kind).args(["get", "clusters"])
}

pub fn export_logs_cmd(kind: &Path, name: &str, dir: &Path, kubeconfig: &Path) -> Cmd {
    kind_cmd(kind, kubeconfig)
        .args(["export", "logs"])
        .arg(dir.display().to_string())
        .args(["--name", name])
        .timeout(EXPORT_LOGS_TIMEOUT)
}

pub fn load_image_cmd(kind: &Path, image: &str, name: &str) -> Cmd {
    Cmd::new(kind)
        .args(["load", "docker-image", image, "--name", name])
        .timeout(Duration::from_secs(120))
}

/// Every image a run's pods use: istiod and the proxy of each Istio version the run installs
/// (`docker.io/istio`, Istio's default hub), and the two workloads' images from the fixtures.
/// Pulled once on the host and `kind load`ed into every node: each node would otherwise pull
/// each image again, and anonymous pulls from Docker Hub are limited (about 10 an hour on a
/// developer's machine).
pub fn run_images(istio_versions: &[String], workload_yaml: &[&str]) -> Vec<String> {
    let mut images = Vec::new();
    for v in istio_versions {
        for component in ["pilot", "proxyv2"] {
            images.push(format!("docker.io/istio/{component}:{v}"));
        }
    }
    for yaml in workload_yaml {
        for line in yaml.lines() {
            if let Some(image) = line.trim().strip_prefix("image: ") {
                images.push(image.trim().to_owned());
            }
        }
    }
    // The same version twice (an upgrade over itself) or one image in both fixtures: once.
    let mut seen = std::collections::BTreeSet::new();
    images.retain(|i| seen.insert(i.clone()));
    images
}

pub fn pull_cmd(docker: &Path, image: &str) -> Cmd {
    Cmd::new(docker)
        .args(["pull", image])
        .timeout(Duration::from_secs(10 * 60))
}

/// The pulls, then one `kind load` per cluster with every image (kind copies them into each
/// node's containerd, so pods start without pulling).
pub fn preload_cmds(
    docker: &Path,
    kind: &Path,
    images: &[String],
    clusters: &[String],
) -> Vec<Cmd> {
    let mut cmds: Vec<Cmd> = images.iter().map(|i| pull_cmd(docker, i)).collect();
    cmds.extend(
        clusters
            .iter()
            .map(|name| load_images_cmd(kind, images, name)),
    );
    cmds
}

/// `kind load docker-image` of several images into cluster `name`'s nodes.
pub fn load_images_cmd(kind: &Path, images: &[String], name: &str) -> Cmd {
    Cmd::new(kind)
        .args(["load", "docker-image"])
        .args(images.iter().cloned())
        .args(["--name", name])
        .timeout(Duration::from_secs(10 * 60))
}

/// kind's name for a cluster's single node.
pub fn control_plane(kind_name: &str) -> String {
    format!("{kind_name}-control-plane")
}

/// A node's address on the `kind` docker network.
pub fn node_ip_cmd(docker: &Path, node: &str) -> Cmd {
    Cmd::new(docker).args([
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        node,
    ])
}

/// A route on `node` to another cluster's pod subnet through that cluster's node: kind pod
/// networks are not routed between clusters by default (Istio's own kind provisioner adds the
/// same routes for its multicluster tests).
pub fn route_cmd(docker: &Path, node: &str, subnet: &str, via: &str) -> Cmd {
    // `replace`, not `add`: clusters are reused across scenarios, and a second `add` fails.
    Cmd::new(docker).args(["exec", node, "ip", "route", "replace", subnet, "via", via])
}

/// A cluster to create.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The logical name (`cluster1`), as in the cacerts layout.
    pub cluster: String,
    /// 1-based, chooses the subnets.
    pub index: usize,
}

/// Creates every cluster at once (kind creates are mostly waiting on containers), each with
/// its patched config and its kubeconfig in `workdir`. The guard knows each cluster before its
/// create starts, so a half-made one is deleted too.
pub async fn create_clusters(
    kind: &Path,
    guard: &ClusterGuard,
    prefix: &str,
    base_config: &Path,
    specs: &[ClusterSpec],
    workdir: &Path,
) -> Result<Vec<ClusterRef>, KubeError> {
    create_clusters_with(
        kind,
        guard,
        prefix,
        base_config,
        specs,
        workdir,
        CreatePolicy::default(),
    )
    .await
}

/// How hard `kind create` is tried: its deadline, and the retries after a failure that may
/// not repeat. Tests shorten it; a run uses [`CreatePolicy::default`].
#[derive(Debug, Clone, Copy)]
pub struct CreatePolicy {
    pub timeout: Duration,
    pub retries: usize,
    pub delay: Duration,
}

impl Default for CreatePolicy {
    fn default() -> Self {
        CreatePolicy {
            timeout: CREATE_TIMEOUT,
            retries: CREATE_RETRIES,
            delay: CREATE_RETRY_DELAY,
        }
    }
}

/// [`create_clusters`] with an explicit [`CreatePolicy`].
pub async fn create_clusters_with(
    kind: &Path,
    guard: &ClusterGuard,
    prefix: &str,
    base_config: &Path,
    specs: &[ClusterSpec],
    workdir: &Path,
    policy: CreatePolicy,
) -> Result<Vec<ClusterRef>, KubeError> {
    let base = std::fs::read_to_string(base_config).map_err(KubeError::io("read", base_config))?;
    let listed = process::run(&get_clusters_cmd(kind)).await?.stdout;
    let mut existing: Vec<&str> = listed.lines().map(str::trim).collect();
    if let Some(started) = run_stamp(prefix) {
        let stale = stale_clusters(&existing, started);
        for name in &stale {
            crate::say!(
                "meshtrust: deleting stale kind cluster `{name}` (left by an earlier run; this run's clusters are `{prefix}-*`)"
            );
            let scratch = workdir.join(format!("stale-{name}.kubeconfig"));
            if let Err(e) = process::run(&delete_cmd(kind, name, &scratch)).await {
                crate::say!("meshtrust: cannot delete stale cluster `{name}`: {e}");
            }
        }
        existing.retain(|n| !stale.contains(n));
    }
    let mut jobs = Vec::new();
    for spec in specs {
        let name = cluster_name(prefix, &spec.cluster);
        if existing.contains(&name.as_str()) {
            return Err(KubeError::ClusterExists { name });
        }
        let config = workdir.join(format!("{name}.kind.yaml"));
        let text = patch_config(&base, base_config, spec.index)?;
        std::fs::write(&config, text).map_err(KubeError::io("write", &config))?;
        let kubeconfig = kubeconfig_path(workdir, &name);
        guard.adopt(&name, &kubeconfig);
        jobs.push(create_one(
            kind,
            name,
            spec.cluster.clone(),
            config,
            kubeconfig,
            policy,
        ));
    }
    let results = futures::future::join_all(jobs).await;
    results.into_iter().collect()
}

async fn create_one(
    kind: &Path,
    name: String,
    cluster: String,
    config: PathBuf,
    kubeconfig: PathBuf,
    policy: CreatePolicy,
) -> Result<ClusterRef, KubeError> {
    let create = create_cmd(kind, &name, &config, &kubeconfig).timeout(policy.timeout);
    let delete = delete_cmd(kind, &name, &kubeconfig);
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    (|| async {
        // A create that failed or was killed at its deadline leaves its node container behind,
        // and the next create of the same name would fail with "node(s) already exist": the
        // half-made cluster goes first.
        if attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0
            && let Err(e) = process::run(&delete).await
        {
            tracing::warn!("before retrying, {e}");
        }
        process::run(&create).await
    })
    .retry(
        ConstantBuilder::default()
            .with_delay(policy.delay)
            .with_max_times(policy.retries),
    )
    .sleep(tokio::time::sleep)
    .when(is_transient_create_failure)
    .notify(|e, after| {
        tracing::warn!(
            "`kind create cluster --name {name}` failed; deleting it and retrying in {}s: {e}",
            after.as_secs()
        )
    })
    .await?;
    // kind writes the file itself; it holds the cluster's admin key, so 0600 whatever kind did.
    restrict(&kubeconfig)?;
    Ok(ClusterRef {
        cluster,
        kubeconfig: Some(kubeconfig),
        context: Some(context_name(&name)),
    })
}

fn restrict(path: &Path) -> Result<(), KubeError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(KubeError::io("restrict to 0600", path))
}

/// A name clash is not going to go away on retry; nor is a config kind rejects.
fn is_transient_create_failure(e: &ProcessError) -> bool {
    let stderr = e.stderr();
    !(stderr.contains("already exist")
        || stderr.contains("unknown field")
        || matches!(e, ProcessError::Spawn { .. }))
}

/// A kubeconfig holds a client key: 0600, like the file kind writes itself.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KubeError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(KubeError::io("write", path))
}

/// What cleanup did, for the report and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub logs_exported: Vec<String>,
    pub deleted: Vec<String>,
    pub kept: Vec<String>,
    /// Cleanup steps that failed, as messages (cleanup never fails itself).
    pub problems: Vec<String>,
}

#[derive(Debug)]
struct GuardState {
    kind: PathBuf,
    artifacts: PathBuf,
    keep: bool,
    /// Each cluster with the run's kubeconfig it was created with.
    clusters: Vec<(String, PathBuf)>,
    failed: bool,
    done: bool,
    /// A signal arrived: the exit code its handler ends the process with (130, 143).
    signalled: Option<i32>,
}

/// Deletes every cluster this run created when dropped (success, failure, panic) or on Ctrl-C,
/// unless `keep`; on failure, `kind export logs <artifacts>/<cluster>` runs first. Never panics.
#[derive(Debug, Clone)]
pub struct ClusterGuard {
    state: Arc<Mutex<GuardState>>,
    /// The Ctrl-C task, stopped when the last guard goes.
    signal: Arc<Mutex<Option<tokio::task::AbortHandle>>>,
}

impl ClusterGuard {
    pub fn new(kind: impl Into<PathBuf>, artifacts: impl Into<PathBuf>, keep: bool) -> Self {
        ClusterGuard {
            state: Arc::new(Mutex::new(GuardState {
                kind: kind.into(),
                artifacts: artifacts.into(),
                keep,
                clusters: Vec::new(),
                failed: false,
                done: false,
                signalled: None,
            })),
            signal: Arc::new(Mutex::new(None)),
        }
    }

    /// Takes responsibility for a cluster (call before creating it), created with the run's
    /// own `kubeconfig`.
    pub fn adopt(&self, name: &str, kubeconfig: &Path) {
        if let Ok(mut s) = self.state.lock()
            && !s.clusters.iter().any(|(c, _)| c == name)
        {
            s.clusters.push((name.to_owned(), kubeconfig.to_owned()));
        }
    }

    /// The run failed: export logs before deleting.
    pub fn mark_failed(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.failed = true;
        }
    }

    pub fn clusters(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.clusters.iter().map(|(c, _)| c.clone()).collect())
            .unwrap_or_default()
    }

    /// Exports logs (after a failure) and deletes the clusters, once; later calls do nothing.
    /// Blocking, so it can run from `Drop` and from a signal handler.
    pub fn cleanup(&self) -> Cleanup {
        let mut report = Cleanup::default();
        // A panic while the lock was held poisons it; cleanup must still happen.
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if s.done {
            return report;
        }
        s.done = true;
        if let Ok(mut signal) = self.signal.lock()
            && let Some(handle) = signal.take()
        {
            handle.abort();
        }
        for (name, kubeconfig) in &s.clusters {
            if s.failed {
                let dir = s.artifacts.join(name);
                match process::run_blocking(&export_logs_cmd(&s.kind, name, &dir, kubeconfig)) {
                    Ok(_) => report.logs_exported.push(name.clone()),
                    Err(e) => report.problems.push(e.to_string()),
                }
            }
            if s.keep {
                report.kept.push(name.clone());
                continue;
            }
            match process::run_blocking(&delete_cmd(&s.kind, name, kubeconfig)) {
                Ok(_) => report.deleted.push(name.clone()),
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        if !report.kept.is_empty() {
            crate::say!(
                "meshtrust: kept kind clusters {} ({KEEP_ENV}/--keep); delete them with `kind delete cluster --name NAME`",
                report.kept.join(", ")
            );
        }
        for problem in &report.problems {
            crate::say!("meshtrust: cleanup: {problem}");
        }
        report
    }

    /// On Ctrl-C (SIGINT) or SIGTERM (what nextest's slow-timeout and CI cancellation send
    /// before SIGKILL): kill every command still running (each is in a process group of its
    /// own, so the signal did not reach it), mark the run failed, clean up as `Drop` would, and
    /// exit 130 or 143 (128 + the signal, as a shell reports it). Needs a tokio runtime.
    pub fn cleanup_on_signal(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let guard = self.clone();
        let (interrupt, terminate) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot handle SIGINT/SIGTERM, clusters may leak on a signal: {e}");
                return;
            }
        };
        let task = tokio::spawn(async move {
            let (mut interrupt, mut terminate) = (interrupt, terminate);
            let (name, code) = tokio::select! {
                _ = interrupt.recv() => ("interrupted (SIGINT)", 130),
                _ = terminate.recv() => ("terminated (SIGTERM)", 143),
            };
            // This task must not abort itself halfway through the cleanup.
            if let Ok(mut signal) = guard.signal.lock() {
                signal.take();
            }
            // Said before the kill: whatever the kill makes fail then knows why (see `Drop`).
            if let Ok(mut s) = guard.state.lock() {
                s.signalled = Some(code);
            }
            let killed = process::kill_live_groups();
            let certs = crate::scenario::runner::remove_live_run_dirs();
            crate::say!(
                "meshtrust: {name}; stopped {killed} running command(s), removed {certs} certificates directory(ies), cleaning up kind clusters"
            );
            guard.mark_failed();
            let g = guard.clone();
            let _ = tokio::task::spawn_blocking(move || g.cleanup()).await;
            std::process::exit(code);
        });
        if let Ok(mut signal) = self.signal.lock() {
            *signal = Some(task.abort_handle());
        }
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        // A signal is being handled: the code that the kill made fail must not return (and
        // exit) while the handler is deleting the clusters. The handler holds the state while
        // it cleans up, so this waits for it, then ends the process with the signal's code.
        let signalled = match self.state.lock() {
            Ok(s) => s.signalled,
            Err(poisoned) => poisoned.into_inner().signalled,
        };
        if let Some(code) = signalled {
            let _ = self.cleanup();
            std::process::exit(code);
        }
        // The signal task holds a clone; the state's last owner besides it does the cleanup.
        let owners = Arc::strong_count(&self.state);
        let signal_clone = self
            .signal
            .lock()
            .map(|s| s.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false);
        if owners > 1 + usize::from(signal_clone) {
            return;
        }
        if std::thread::panicking() {
            self.mark_failed();
        }
        let _ = self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    const BASE: &str = include_str!("../../kind-config.yaml");

    #[test]
    fn each_cluster_gets_its_own_pod_and_service_subnets() {
        let one = patch_config(BASE, Path::new("kind-config.yaml"), 1).unwrap();
        let two = patch_config(BASE, Path::new("kind-config.yaml"), 2).unwrap();
        let parse = |s: &str| serde_norway::from_str::<serde_norway::Value>(s).unwrap();
        let (one, two) = (parse(&one), parse(&two));
        assert_eq!(
            one["networking"]["podSubnet"].as_str(),
            Some("10.11.0.0/16")
        );
        assert_eq!(
            one["networking"]["serviceSubnet"].as_str(),
            Some("10.255.11.0/24")
        );
        assert_eq!(
            two["networking"]["podSubnet"].as_str(),
            Some("10.12.0.0/16")
        );
        assert_eq!(
            two["networking"]["serviceSubnet"].as_str(),
            Some("10.255.12.0/24")
        );
        // The rest of the shared config is kept: nodes, and the registry patch.
        assert_eq!(one["nodes"], parse(BASE)["nodes"]);
        assert!(
            one["containerdConfigPatches"][0]
                .as_str()
                .unwrap()
                .contains("config_path = \"/etc/containerd/certs.d\"")
        );
    }

    #[test]
    fn a_config_that_is_not_a_kind_cluster_is_refused() {
        let err = patch_config("kind: Pod\n", Path::new("x.yaml"), 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`x.yaml` is not a usable kind config: `kind` is Some(\"Pod\"), not `Cluster`"
        );
        let err = patch_config(BASE, Path::new("k.yaml"), 10).unwrap_err();
        assert!(
            err.to_string()
                .contains("cluster number `10` is outside 1..=9")
        );
    }

    /// The child half of [`a_signal_kills_the_running_create_then_deletes_the_cluster`]: a
    /// run whose `kind create` hangs, waiting for the parent's signal. Does nothing on its own.
    #[test]
    #[ignore = "a child process of a_signal_kills_the_running_create_then_deletes_the_cluster"]
    fn signal_child_creates_a_cluster_and_waits() {
        let dir =
            PathBuf::from(std::env::var_os("MESHTRUST_SIGNAL_CHILD").expect("run as a child"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let guard = ClusterGuard::new(dir.join("kind"), dir.join("artifacts"), false);
            guard.cleanup_on_signal();
            let kubeconfig = dir.join("mt-cluster1.kubeconfig");
            guard.adopt("mt-cluster1", &kubeconfig);
            let create = create_cmd(
                &dir.join("kind"),
                "mt-cluster1",
                &dir.join("c.yaml"),
                &kubeconfig,
            );
            let _ = process::run(&create).await;
        });
    }

    fn alive(pid: i32) -> bool {
        // A zombie has exited; only its parent has not reaped it yet.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn a_signal_kills_the_running_create_then_deletes_the_cluster() {
        for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
            // The fake create starts a grandchild (an image pull) and hangs on it.
            let fake = FakeKind::new(
                r#"dir="$(dirname "$0")"
case "$1 $2" in
  "create cluster") sleep 300 & echo $! > "$dir/pull.pid"; touch "$dir/started"; wait ;;
esac
exit 0"#,
            );
            let dir = fake.dir.path();
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "kube::kind::tests::signal_child_creates_a_cluster_and_waits",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env("MESHTRUST_SIGNAL_CHILD", dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !dir.join("started").exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the fake create never started"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let pull: i32 = std::fs::read_to_string(dir.join("pull.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            // SAFETY: kill(2) on the child we spawned.
            unsafe { libc::kill(child.id() as i32, signal) };
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("signal {signal}: the run did not exit");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert_eq!(status.code(), Some(code), "signal {signal}: {stderr}");
            assert!(stderr.contains("stopped 1 running command(s)"), "{stderr}");
            let calls = fake.calls();
            assert_eq!(calls.len(), 3, "signal {signal}: {calls:?}");
            assert!(calls[0].starts_with("create cluster --name mt-cluster1"));
            assert!(calls[1].starts_with("export logs"), "{calls:?}");
            assert!(
                calls[2].starts_with("delete cluster --name mt-cluster1"),
                "{calls:?}"
            );
            // The create's whole group went with it: the pull does not outlive the delete.
            let gone = std::time::Instant::now() + Duration::from_secs(5);
            while alive(pull) && std::time::Instant::now() < gone {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                !alive(pull),
                "signal {signal}: the create's child {pull} outlived the run"
            );
        }
    }

    #[test]
    fn images_are_pulled_once_and_loaded_into_every_node() {
        let images = run_images(
            &["1.31.4".into(), "1.32.0".into()],
            &[
                "        image: docker.io/mccutchen/go-httpbin:v2.15.0\n",
                "  image: docker.io/curlimages/curl:8.16.0\n",
            ],
        );
        assert_eq!(
            images,
            [
                "docker.io/istio/pilot:1.31.4",
                "docker.io/istio/proxyv2:1.31.4",
                "docker.io/istio/pilot:1.32.0",
                "docker.io/istio/proxyv2:1.32.0",
                "docker.io/mccutchen/go-httpbin:v2.15.0",
                "docker.io/curlimages/curl:8.16.0",
            ]
        );
        assert_eq!(
            run_images(&["1.32.0".into(), "1.32.0".into()], &[]),
            [
                "docker.io/istio/pilot:1.32.0",
                "docker.io/istio/proxyv2:1.32.0"
            ]
        );
        let cmds: Vec<String> = preload_cmds(
            Path::new("docker"),
            Path::new("kind"),
            &images[..1],
            &["mt-cluster1".into(), "mt-cluster2".into()],
        )
        .iter()
        .map(|c| c.to_string())
        .collect();
        assert_eq!(
            cmds,
            [
                "docker pull docker.io/istio/pilot:1.31.4",
                "kind load docker-image docker.io/istio/pilot:1.31.4 --name mt-cluster1",
                "kind load docker-image docker.io/istio/pilot:1.31.4 --name mt-cluster2",
            ]
        );
    }

    #[test]
    fn a_prefix_kind_would_refuse_is_refused_before_anything_runs() {
        assert_eq!(check_prefix("meshtrust"), Ok(()));
        assert_eq!(check_prefix("ci.run-7"), Ok(()));
        let e = check_prefix("MeshTrust_CI").unwrap_err();
        assert!(e.contains("lowercase letters, digits"), "{e}");
        assert!(e.ends_with("(hint: `--prefix meshtrust-ci`)"), "{e}");
        assert!(check_prefix("").is_err());
        // 50 characters in all: the prefix gets what the suffix leaves.
        let room = KIND_NAME_MAX - "-1000000000-4194304-cluster2".len();
        assert_eq!(check_prefix(&"a".repeat(room)), Ok(()));
        let e = check_prefix(&"a".repeat(room + 1)).unwrap_err();
        assert!(e.contains(&format!("at most {room} characters")), "{e}");
        assert!(e.contains("up to 51 characters"), "{e}");
    }

    #[test]
    fn each_run_has_its_own_prefix_that_says_when_it_started() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let prefix = run_prefix("meshtrust-e2e", at);
        assert_eq!(
            prefix,
            format!("meshtrust-e2e-1796000000-{}", std::process::id())
        );
        assert_eq!(
            run_stamp(&format!("{prefix}-cluster1")),
            Some(1_796_000_000)
        );
        assert_eq!(run_stamp("meshtrust-cluster1"), None);
        assert_eq!(run_stamp("meshtrust-17960-1-cluster1"), None);
    }

    #[test]
    fn only_meshtrust_clusters_of_earlier_runs_are_stale() {
        let existing = [
            "meshtrust-e2e-1796000000-41-cluster1", // earlier run: stale
            "meshtrust-1796000500-7-cluster2",      // this second: not stale
            "meshtrust-1796000900-9-cluster1",      // a later run: not stale
            "meshtrust-e2e-cluster1",               // before runs were stamped: stale
            "someone-elses-1796000000-1-cluster",   // not ours: never
            "kind",
        ];
        assert_eq!(
            stale_clusters(&existing, 1_796_000_500),
            [
                "meshtrust-e2e-1796000000-41-cluster1",
                "meshtrust-e2e-cluster1"
            ]
        );
    }

    #[tokio::test]
    async fn stale_clusters_are_deleted_before_the_runs_own_are_created() {
        let fake = FakeKind::new(&format!(
            r#"{FIND_KUBECONFIG}
case "$1 $2" in
  "get clusters") printf 'meshtrust-e2e-1000000000-5-cluster1\nmeshtrust-9999999999-1-cluster1\nother\n' ;;
  "create cluster") echo "apiVersion: v1" > "$kc" ;;
esac
exit 0"#
        ));
        let work = tempfile::tempdir().unwrap();
        let base = base_config(work.path());
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), true);
        create_clusters(
            &fake.kind(),
            &guard,
            "meshtrust-e2e-1796000000-3",
            &base,
            &specs(1),
            work.path(),
        )
        .await
        .unwrap();
        let verbs: Vec<String> = fake
            .calls()
            .iter()
            .map(|c| c.split(" --").take(2).collect::<Vec<_>>().join(" --"))
            .collect();
        assert_eq!(
            verbs,
            [
                "get clusters",
                "delete cluster --name meshtrust-e2e-1000000000-5-cluster1",
                "create cluster --name meshtrust-e2e-1796000000-3-cluster1",
            ]
        );
    }

    #[test]
    fn every_kind_command_that_touches_a_kubeconfig_gets_the_runs_own() {
        let kind = Path::new("kind");
        let kc = Path::new("/w/mt-cluster1.kubeconfig");
        assert_eq!(
            create_cmd(
                kind,
                "mt-cluster1",
                Path::new("/w/mt-cluster1.kind.yaml"),
                kc
            )
            .to_string(),
            format!(
                "KUBECONFIG=/w/mt-cluster1.kubeconfig kind create cluster --name mt-cluster1 \
                 --config /w/mt-cluster1.kind.yaml --image {} \
                 --kubeconfig /w/mt-cluster1.kubeconfig --wait 5m",
                crate::kube::tools::KIND_NODE_IMAGE
            )
        );
        assert_eq!(
            delete_cmd(kind, "mt-cluster1", kc).to_string(),
            "KUBECONFIG=/w/mt-cluster1.kubeconfig kind delete cluster --name mt-cluster1 \
             --kubeconfig /w/mt-cluster1.kubeconfig"
        );
        assert_eq!(
            export_logs_cmd(kind, "mt-cluster1", Path::new("/a/mt-cluster1"), kc).to_string(),
            "KUBECONFIG=/w/mt-cluster1.kubeconfig kind export logs /a/mt-cluster1 --name mt-cluster1"
        );
        assert_eq!(
            kubeconfig_path(Path::new("/w"), "mt-cluster1"),
            Path::new("/w/mt-cluster1.kubeconfig")
        );
    }

    /// A fake `kind` that appends its argv to `calls.log`.
    struct FakeKind {
        dir: tempfile::TempDir,
    }

    impl FakeKind {
        fn new(body: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("kind");
            let log = dir.path().join("calls.log");
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho \"$*\" >> '{}'\necho \"$KUBECONFIG\" >> '{}'\n{body}\n",
                    log.display(),
                    dir.path().join("env.log").display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            FakeKind { dir }
        }

        fn kind(&self) -> PathBuf {
            self.dir.path().join("kind")
        }

        fn artifacts(&self) -> PathBuf {
            self.dir.path().join("artifacts")
        }

        /// `KUBECONFIG` as each call saw it.
        fn kubeconfigs(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("env.log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        }

        fn calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("calls.log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[test]
    fn after_a_failure_logs_are_exported_then_every_cluster_is_deleted() {
        let fake = FakeKind::new("exit 0");
        let run = || -> Result<(), String> {
            let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
            guard.adopt("mt-cluster1", Path::new("/w/mt-cluster1.kubeconfig"));
            guard.adopt("mt-cluster2", Path::new("/w/mt-cluster2.kubeconfig"));
            guard.mark_failed();
            Err("istiod never became ready".into())
        };
        assert!(run().is_err());
        let a = fake.artifacts();
        assert_eq!(
            fake.calls(),
            [
                format!("export logs {}/mt-cluster1 --name mt-cluster1", a.display()),
                "delete cluster --name mt-cluster1 --kubeconfig /w/mt-cluster1.kubeconfig"
                    .to_owned(),
                format!("export logs {}/mt-cluster2 --name mt-cluster2", a.display()),
                "delete cluster --name mt-cluster2 --kubeconfig /w/mt-cluster2.kubeconfig"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn after_a_panic_the_clusters_are_deleted_and_logs_exported() {
        let fake = FakeKind::new("exit 0");
        let (kind, artifacts) = (fake.kind(), fake.artifacts());
        let outcome = std::panic::catch_unwind(move || {
            let guard = ClusterGuard::new(kind, artifacts, false);
            guard.adopt("mt-cluster1", Path::new("/w/mt-cluster1.kubeconfig"));
            panic!("a scenario panicked");
        });
        assert!(outcome.is_err());
        assert_eq!(
            fake.calls(),
            [
                format!(
                    "export logs {}/mt-cluster1 --name mt-cluster1",
                    fake.artifacts().display()
                ),
                "delete cluster --name mt-cluster1 --kubeconfig /w/mt-cluster1.kubeconfig"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn after_success_the_clusters_are_deleted_without_a_log_export() {
        let fake = FakeKind::new("exit 0");
        {
            let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
            guard.adopt("mt-cluster1", Path::new("/w/mt-cluster1.kubeconfig"));
            let clone = guard.clone();
            drop(clone); // a clone going away is not the end of the run
            assert!(fake.calls().is_empty());
        }
        assert_eq!(
            fake.calls(),
            ["delete cluster --name mt-cluster1 --kubeconfig /w/mt-cluster1.kubeconfig"]
        );
    }

    #[test]
    fn with_keep_nothing_is_deleted_but_logs_are_still_exported_on_failure() {
        let fake = FakeKind::new("exit 0");
        {
            let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), true);
            guard.adopt("mt-cluster1", Path::new("/w/mt-cluster1.kubeconfig"));
            guard.mark_failed();
        }
        assert_eq!(
            fake.calls(),
            [format!(
                "export logs {}/mt-cluster1 --name mt-cluster1",
                fake.artifacts().display()
            )]
        );
    }

    #[test]
    fn a_failing_delete_is_reported_not_panicked_and_cleanup_runs_once() {
        let fake = FakeKind::new("echo 'ERROR: boom' >&2; exit 1");
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
        guard.adopt("mt-cluster1", Path::new("/w/mt-cluster1.kubeconfig"));
        let report = guard.cleanup();
        assert!(report.deleted.is_empty());
        assert_eq!(report.problems.len(), 1);
        assert!(report.problems[0].contains("ERROR: boom"), "{report:?}");
        assert_eq!(guard.cleanup(), Cleanup::default());
        drop(guard);
        assert_eq!(fake.calls().len(), 1);
    }

    /// Shell for a fake `kind`: `$kc` is the `--kubeconfig` argument, if any.
    const FIND_KUBECONFIG: &str = r#"kc=""; prev=""; for a in "$@"; do [ "$prev" = "--kubeconfig" ] && kc="$a"; prev="$a"; done"#;

    fn specs(n: usize) -> Vec<ClusterSpec> {
        (1..=n)
            .map(|i| ClusterSpec {
                cluster: format!("cluster{i}"),
                index: i,
            })
            .collect()
    }

    fn base_config(work: &Path) -> PathBuf {
        let base = work.join("kind-config.yaml");
        std::fs::write(&base, BASE).unwrap();
        base
    }

    #[tokio::test]
    async fn clusters_are_created_in_parallel_and_a_failed_create_is_cleaned_up() {
        let fake = FakeKind::new(&format!(
            r#"{FIND_KUBECONFIG}
case "$1 $2" in
  "get clusters") echo other-cluster ;;
  "create cluster") case "$*" in *mt-cluster2*) echo 'ERROR: failed to create cluster: node(s) already exist' >&2; exit 1 ;; esac; echo "apiVersion: v1" > "$kc" ;;
esac"#
        ));
        let work = tempfile::tempdir().unwrap();
        let base = base_config(work.path());
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
        let err = create_clusters(&fake.kind(), &guard, "mt", &base, &specs(2), work.path())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("node(s) already exist"), "{err}");
        assert!(work.path().join("mt-cluster1.kubeconfig").exists());
        guard.mark_failed();
        drop(guard);
        let calls = fake.calls();
        // Not retried: a name clash does not go away.
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.contains("create cluster --name mt-cluster2"))
                .count(),
            1
        );
        for n in 1..=2 {
            let delete = format!(
                "delete cluster --name mt-cluster{n} --kubeconfig {}",
                work.path()
                    .join(format!("mt-cluster{n}.kubeconfig"))
                    .display()
            );
            assert!(calls.contains(&delete), "{calls:?}");
        }
    }

    #[tokio::test]
    async fn create_delete_and_export_use_the_runs_kubeconfig_never_the_users() {
        let fake = FakeKind::new(&format!(
            r#"{FIND_KUBECONFIG}
[ "$1 $2" = "create cluster" ] && echo "apiVersion: v1" > "$kc"
exit 0"#
        ));
        let work = tempfile::tempdir().unwrap();
        let base = base_config(work.path());
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
        let refs = create_clusters(&fake.kind(), &guard, "mt", &base, &specs(1), work.path())
            .await
            .unwrap();
        let own = work.path().join("mt-cluster1.kubeconfig");
        assert_eq!(refs[0].kubeconfig.as_deref(), Some(own.as_path()));
        assert_eq!(refs[0].context.as_deref(), Some("kind-mt-cluster1"));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&own).unwrap().permissions().mode() & 0o777,
            0o600
        );
        guard.mark_failed();
        drop(guard);
        let calls = fake.calls();
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert_eq!(calls[0], "get clusters");
        // create, export logs, delete: each names the run's file (flag or KUBECONFIG).
        for (call, kubeconfig) in calls.iter().zip(fake.kubeconfigs()).skip(1) {
            assert_eq!(kubeconfig, own.display().to_string(), "{call}");
            if !call.starts_with("export logs") {
                assert!(
                    call.contains(&format!("--kubeconfig {}", own.display())),
                    "{call}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_create_killed_at_its_deadline_is_deleted_before_the_retry_which_succeeds() {
        // The first create leaves a "node" behind and hangs (as a cold image pull does); a
        // create while the node exists fails as kind does; delete removes the node.
        let fake = FakeKind::new(&format!(
            r#"{FIND_KUBECONFIG}
node="$(dirname "$0")/node"
case "$1 $2" in
  "create cluster")
    if [ -e "$node" ]; then echo 'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "mt-cluster1"' >&2; exit 1; fi
    touch "$node"
    if [ ! -e "$node.tried" ]; then touch "$node.tried"; sleep 30; fi
    echo "apiVersion: v1" > "$kc" ;;
  "delete cluster") rm -f "$node" ;;
esac
exit 0"#
        ));
        let work = tempfile::tempdir().unwrap();
        let base = base_config(work.path());
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
        let policy = CreatePolicy {
            timeout: Duration::from_millis(500),
            retries: 2,
            delay: Duration::from_millis(10),
        };
        let refs = create_clusters_with(
            &fake.kind(),
            &guard,
            "mt",
            &base,
            &specs(1),
            work.path(),
            policy,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\ncalls: {:?}", fake.calls()));
        assert_eq!(refs.len(), 1);
        let verbs: Vec<String> = fake
            .calls()
            .iter()
            .map(|c| c.split(" --").next().unwrap().to_owned())
            .collect();
        assert_eq!(
            verbs,
            [
                "get clusters",
                "create cluster",
                "delete cluster",
                "create cluster"
            ]
        );
        guard.cleanup();
    }

    #[tokio::test]
    async fn without_the_delete_the_retry_would_hit_the_leftover_node() {
        // The negative twin: a delete that fails to remove the node leaves the retry facing
        // "already exist", which is reported, not retried forever.
        let fake = FakeKind::new(&format!(
            r#"{FIND_KUBECONFIG}
node="$(dirname "$0")/node"
case "$1 $2" in
  "create cluster")
    if [ -e "$node" ]; then echo 'ERROR: failed to create cluster: node(s) already exist' >&2; exit 1; fi
    touch "$node"; sleep 30 ;;
esac
exit 0"#
        ));
        let work = tempfile::tempdir().unwrap();
        let base = base_config(work.path());
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), true);
        let policy = CreatePolicy {
            timeout: Duration::from_millis(500),
            retries: 2,
            delay: Duration::from_millis(10),
        };
        let err = create_clusters_with(
            &fake.kind(),
            &guard,
            "mt",
            &base,
            &specs(1),
            work.path(),
            policy,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("node(s) already exist"), "{err}");
        let creates = fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("create cluster"))
            .count();
        assert_eq!(creates, 2, "{:?}", fake.calls());
    }

    #[tokio::test]
    async fn a_cluster_that_already_exists_is_refused_and_never_deleted() {
        let fake = FakeKind::new(r#"[ "$1 $2" = "get clusters" ] && echo mt-cluster1; exit 0"#);
        let work = tempfile::tempdir().unwrap();
        let base = base_config(work.path());
        let guard = ClusterGuard::new(fake.kind(), fake.artifacts(), false);
        let err = create_clusters(&fake.kind(), &guard, "mt", &base, &specs(1), work.path())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "kind cluster `mt-cluster1` already exists and this run did not create it (hint: delete it with `kind delete cluster --name mt-cluster1`, or pick another `--prefix`)"
        );
        drop(guard);
        assert_eq!(fake.calls(), ["get clusters"]);
    }
}
