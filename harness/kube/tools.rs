//! Finding docker, kind, istioctl (one per phase, for upgrades) and, optionally, kubectl, and
//! checking that each one works before anything is created: a machine without them fails in
//! seconds with exit 2 and the install command, not minutes later in the middle of a run.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{self, Cmd, ProcessError};
use crate::exit::Exit;

/// The kind release the nightly workflow installs, the hint names and `just e2e-tools` builds
/// (oracle/e2e-tools/kind/go.mod). README "Version pins" says how to move every pin together;
/// a unit test holds the workflow and the go.mod to these constants.
pub const KIND_VERSION: &str = "v0.33.0";
/// Every cluster's node: Kubernetes 1.35, inside the supported range of every Istio release
/// the nightly runs (Istio's own CI of release-1.30 and release-1.31 runs kind nodes of 1.35;
/// their istioctl requires 1.32 at least). Pinned by digest: kind's default node moves with
/// each kind release (v0.33.0's is 1.37), and a tag can be re-pushed. The digest is the one
/// kind's sources name for this image (kubernetes-sigs/kind ec6b5bd7).
pub const KIND_NODE_IMAGE: &str =
    "kindest/node:v1.35.1@sha256:05d7bcdefbda08b4e038f644c4df690cdac3fba8b06f8289f30e10026720a1ab";
/// The newest Istio release (the hint names it; the local target models it by default). The
/// nightly matrix runs it and the release before it, and upgrades from that one to it.
pub const ISTIO_VERSION: &str = "1.32.0";
/// The release before [`ISTIO_VERSION`], newest patch: the upgrade's starting point.
pub const ISTIO_PREVIOUS_VERSION: &str = "1.31.4";

/// `docker info` asks the engine; an engine that is wedged answers never, so keep this short
/// (the deadline is what makes "no Docker here" fail in seconds).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolName {
    Docker,
    Kind,
    Istioctl,
    Kubectl,
}

impl ToolName {
    pub fn binary(self) -> &'static str {
        match self {
            ToolName::Docker => "docker",
            ToolName::Kind => "kind",
            ToolName::Istioctl => "istioctl",
            ToolName::Kubectl => "kubectl",
        }
    }

    /// How to get the tool.
    pub fn install_hint(self) -> String {
        match self {
            ToolName::Docker => "install Docker Engine (https://docs.docker.com/engine/install/) \
                 and start it; `docker info` must succeed"
                .to_owned(),
            ToolName::Kind => format!(
                "install kind: `go install sigs.k8s.io/kind@{KIND_VERSION}`, or `curl -Lo kind \
                 https://kind.sigs.k8s.io/dl/{KIND_VERSION}/kind-linux-amd64 && chmod +x kind` \
                 and put it on PATH"
            ),
            ToolName::Istioctl => format!(
                "install istioctl: `curl -L https://istio.io/downloadIstio | \
                 ISTIO_VERSION={ISTIO_VERSION} sh -`, then put istio-{ISTIO_VERSION}/bin on PATH \
                 or set ISTIOCTL=/path/to/istioctl"
            ),
            ToolName::Kubectl => "install kubectl (https://kubernetes.io/docs/tasks/tools/); \
                 meshtrust uses it only to dump logs"
                .to_owned(),
        }
    }

    fn version_cmd(self, path: &Path) -> Cmd {
        let cmd = Cmd::new(path);
        match self {
            ToolName::Docker => cmd
                .args(["info", "--format", "{{.ServerVersion}}"])
                .timeout(ENGINE_TIMEOUT),
            ToolName::Kind => cmd.arg("version"),
            // `--remote=false`: the client's own version, without looking for a cluster.
            ToolName::Istioctl => cmd.args(["version", "--remote=false"]),
            ToolName::Kubectl => cmd.args(["version", "--client"]),
        }
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary())
    }
}

/// A tool that was found and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: ToolName,
    pub path: PathBuf,
    /// For docker, the engine's version (the client alone proves nothing).
    pub version: String,
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct ToolSearch {
    /// The search path (`PATH`'s value).
    pub path: Option<OsString>,
    /// `ISTIOCTL`: the istioctl to use when no `--istioctl` was given.
    pub istioctl_env: Option<PathBuf>,
    /// `--istioctl PATH`, once per phase (install, then upgrade), in order.
    pub istioctl: Vec<PathBuf>,
}

impl ToolSearch {
    /// `PATH` and `ISTIOCTL` from the environment, plus the `--istioctl` flags.
    pub fn from_env(istioctl: Vec<PathBuf>) -> Self {
        ToolSearch {
            path: std::env::var_os("PATH"),
            istioctl_env: std::env::var_os("ISTIOCTL")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            istioctl,
        }
    }

    /// The first executable `name` on the search path.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Which target the tools are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Clusters made with kind: docker, kind and istioctl are all required.
    Kind,
    /// Existing clusters by context: only istioctl is required.
    Kubeconfig,
}

/// Everything the kind target runs.
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// Always there for [`Scope::Kind`]; for [`Scope::Kubeconfig`] only if found.
    pub docker: Option<Tool>,
    pub kind: Option<Tool>,
    /// One per phase: `[install]` or `[install, upgrade]`.
    pub istioctl: Vec<Tool>,
    /// Only for log dumps; absent is fine.
    pub kubectl: Option<Tool>,
}

/// One thing wrong with one tool.
#[derive(Debug, thiserror::Error)]
pub enum ToolProblem {
    #[error("`{tool}` was not found on PATH (hint: {})", .tool.install_hint())]
    Missing { tool: ToolName },
    #[error("`{tool}` from {origin} is `{}`, which is not an executable file (hint: {})", .path.display(), .tool.install_hint())]
    NotExecutable {
        tool: ToolName,
        path: PathBuf,
        /// `ISTIOCTL` or `--istioctl`.
        origin: &'static str,
    },
    #[error("`{tool}` at `{}` does not work (hint: {})\n{source}", .path.display(), unusable_hint(.tool))]
    Unusable {
        tool: ToolName,
        path: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error("`{tool}` at `{}` printed no version we recognise: `{}`", .path.display(), .output.trim())]
    NoVersion {
        tool: ToolName,
        path: PathBuf,
        output: String,
    },
}

impl ToolProblem {
    pub fn tool(&self) -> ToolName {
        match self {
            ToolProblem::Missing { tool }
            | ToolProblem::NotExecutable { tool, .. }
            | ToolProblem::Unusable { tool, .. }
            | ToolProblem::NoVersion { tool, .. } => *tool,
        }
    }
}

fn unusable_hint(tool: &ToolName) -> String {
    match tool {
        ToolName::Docker => "the Docker engine is not reachable: start it (`sudo systemctl start \
             docker`, or Docker Desktop) or fix DOCKER_HOST; `docker info` must succeed"
            .to_owned(),
        other => format!("reinstall it; {}", other.install_hint()),
    }
}

/// Every problem found, so one run shows everything to install.
#[derive(Debug)]
pub struct PreflightError {
    pub problems: Vec<ToolProblem>,
    /// Which target asked (its name leads the message).
    pub scope: Scope,
}

impl PreflightError {
    pub fn exit(&self) -> Exit {
        Exit::BadInput
    }

    /// The tools that are missing or broken, in the order checked.
    pub fn tools(&self) -> Vec<ToolName> {
        self.problems.iter().map(ToolProblem::tool).collect()
    }
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .problems
            .iter()
            .map(|p| format!("`{}`", p.tool()))
            .collect();
        let target = match self.scope {
            Scope::Kind => "kind",
            Scope::Kubeconfig => "kubeconfig",
        };
        write!(
            f,
            "the {target} target cannot run here: {} missing or unusable",
            names.join(", ")
        )?;
        for problem in &self.problems {
            // A problem's cause (a command's output) is indented under its bullet.
            write!(f, "\n  - {}", problem.to_string().replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl std::error::Error for PreflightError {}

/// Finds and checks every tool the kind target needs, concurrently; errs with every problem
/// at once.
pub async fn preflight(search: &ToolSearch) -> Result<Toolbox, PreflightError> {
    preflight_for(Scope::Kind, search).await
}

/// [`preflight`] for either target.
pub async fn preflight_for(scope: Scope, search: &ToolSearch) -> Result<Toolbox, PreflightError> {
    let istioctl_paths: Vec<Result<PathBuf, ToolProblem>> = if !search.istioctl.is_empty() {
        search
            .istioctl
            .iter()
            .map(|p| explicit(ToolName::Istioctl, p, "--istioctl"))
            .collect()
    } else if let Some(p) = &search.istioctl_env {
        vec![explicit(ToolName::Istioctl, p, "ISTIOCTL")]
    } else {
        vec![on_path(search, ToolName::Istioctl)]
    };

    let (docker, kind, kubectl, istioctl) = tokio::join!(
        check(ToolName::Docker, on_path(search, ToolName::Docker)),
        check(ToolName::Kind, on_path(search, ToolName::Kind)),
        check(ToolName::Kubectl, on_path(search, ToolName::Kubectl)),
        async {
            let mut out = Vec::new();
            for path in istioctl_paths {
                out.push(check(ToolName::Istioctl, path).await);
            }
            out
        },
    );

    let mut problems = Vec::new();
    let mut keep = |r: Result<Tool, ToolProblem>| match r {
        Ok(tool) => Some(tool),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let (docker, kind) = match scope {
        Scope::Kind => (keep(docker), keep(kind)),
        Scope::Kubeconfig => (docker.ok(), kind.ok()),
    };
    let istioctl: Vec<Option<Tool>> = istioctl.into_iter().map(&mut keep).collect();
    // kubectl is optional: a missing one is only worth a note.
    let kubectl = match kubectl {
        Ok(tool) => Some(tool),
        Err(problem) => {
            tracing::info!("{problem}; pod logs will be read through the API only");
            None
        }
    };
    match istioctl.into_iter().collect::<Option<Vec<_>>>() {
        Some(istioctl) if problems.is_empty() => Ok(Toolbox {
            docker,
            kind,
            istioctl,
            kubectl,
        }),
        _ => Err(PreflightError { problems, scope }),
    }
}

fn on_path(search: &ToolSearch, tool: ToolName) -> Result<PathBuf, ToolProblem> {
    search
        .find(tool.binary())
        .ok_or(ToolProblem::Missing { tool })
}

fn explicit(tool: ToolName, path: &Path, origin: &'static str) -> Result<PathBuf, ToolProblem> {
    if is_executable(path) {
        Ok(path.to_owned())
    } else {
        Err(ToolProblem::NotExecutable {
            tool,
            path: path.to_owned(),
            origin,
        })
    }
}

async fn check(tool: ToolName, path: Result<PathBuf, ToolProblem>) -> Result<Tool, ToolProblem> {
    let path = path?;
    let output = process::run(&tool.version_cmd(&path))
        .await
        .map_err(|source| ToolProblem::Unusable {
            tool,
            path: path.clone(),
            source,
        })?;
    let text = format!("{}\n{}", output.stdout, output.stderr);
    match parse_version(&text) {
        Some(version) => Ok(Tool {
            name: tool,
            path,
            version,
        }),
        None => Err(ToolProblem::NoVersion {
            tool,
            path,
            output: text,
        }),
    }
}

/// The first `1.2` or `v1.2.3`-like word: `kind v0.30.0 go1.24.6 linux/amd64` gives `0.30.0`,
/// `client version: 1.27.1` gives `1.27.1`, `Client Version: v1.33.3` gives `1.33.3`.
pub fn parse_version(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .map(|w| w.strip_prefix('v').unwrap_or(w))
        .find(|w| {
            let parts: Vec<&str> = w.split(['.', '-', '+']).collect();
            parts.len() >= 2
                && parts[..2]
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The `major.minor` of a version: `1.27` for `1.27.1`.
pub fn minor_of(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A directory of fake tools; nothing else is on the search path.
    struct FakeBin(tempfile::TempDir);

    impl FakeBin {
        fn new() -> Self {
            FakeBin(tempfile::tempdir().unwrap())
        }

        fn script(self, name: &str, body: &str) -> Self {
            let path = self.0.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            self
        }

        fn with_working_tools(self) -> Self {
            self.script("docker", "echo 28.3.2")
                .script("kind", "echo 'kind v0.30.0 go1.24.6 linux/amd64'")
                .script("istioctl", "echo '1.27.1'")
        }

        fn search(&self) -> ToolSearch {
            ToolSearch {
                path: Some(self.0.path().as_os_str().to_owned()),
                ..ToolSearch::default()
            }
        }
    }

    #[tokio::test]
    async fn a_machine_without_tools_names_each_missing_one_with_its_install_command() {
        let bin = FakeBin::new();
        let err = preflight(&bin.search()).await.unwrap_err();
        assert_eq!(
            err.tools(),
            [ToolName::Docker, ToolName::Kind, ToolName::Istioctl]
        );
        assert_eq!(err.exit(), Exit::BadInput);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "the kind target cannot run here: `docker`, `kind`, `istioctl` missing or unusable\n  - `docker` was not found on PATH (hint: install Docker Engine"
            ),
            "{text}"
        );
        assert!(
            text.contains("`go install sigs.k8s.io/kind@v0.33.0`"),
            "{text}"
        );
        assert!(
            text.contains("`curl -L https://istio.io/downloadIstio | ISTIO_VERSION=1.32.0 sh -`"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_docker_client_without_an_engine_is_unusable_and_says_how_to_start_it() {
        let bin = FakeBin::new().with_working_tools().script(
            "docker",
            "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1",
        );
        let err = preflight(&bin.search()).await.unwrap_err();
        assert_eq!(err.tools(), [ToolName::Docker]);
        let text = err.to_string();
        assert!(
            text.contains("the Docker engine is not reachable"),
            "{text}"
        );
        assert!(text.contains("exited with code 1"), "{text}");
        assert!(text.contains("Is the docker daemon running?"), "{text}");
    }

    #[tokio::test]
    async fn working_tools_are_found_with_their_versions_and_kubectl_is_optional() {
        let bin = FakeBin::new().with_working_tools();
        let tools = preflight(&bin.search()).await.unwrap();
        assert_eq!(tools.docker.unwrap().version, "28.3.2");
        assert_eq!(tools.kind.unwrap().version, "0.30.0");
        assert_eq!(tools.istioctl.len(), 1);
        assert_eq!(tools.istioctl[0].version, "1.27.1");
        assert_eq!(tools.istioctl[0].path, bin.0.path().join("istioctl"));
        assert!(tools.kubectl.is_none());
    }

    #[tokio::test]
    async fn the_kubeconfig_target_needs_only_istioctl() {
        let bin = FakeBin::new().script("istioctl", "echo 1.27.1");
        let tools = preflight_for(Scope::Kubeconfig, &bin.search())
            .await
            .unwrap();
        assert!(tools.docker.is_none() && tools.kind.is_none());
        let empty = FakeBin::new();
        let err = preflight_for(Scope::Kubeconfig, &empty.search())
            .await
            .unwrap_err();
        assert_eq!(err.tools(), [ToolName::Istioctl]);
    }

    #[tokio::test]
    async fn istioctl_per_phase_comes_from_the_flags_then_the_environment_then_path() {
        let bin = FakeBin::new()
            .with_working_tools()
            .script("istioctl-1.26", "echo '1.26.3'")
            .script("istioctl-1.27", "echo 'client version: 1.27.1'");
        let mut search = bin.search();
        search.istioctl_env = Some(bin.0.path().join("istioctl-1.27"));
        let tools = preflight(&search).await.unwrap();
        assert_eq!(tools.istioctl[0].version, "1.27.1");

        search.istioctl = vec![
            bin.0.path().join("istioctl-1.26"),
            bin.0.path().join("istioctl-1.27"),
        ];
        let tools = preflight(&search).await.unwrap();
        let versions: Vec<&str> = tools.istioctl.iter().map(|t| t.version.as_str()).collect();
        assert_eq!(versions, ["1.26.3", "1.27.1"]);
    }

    #[tokio::test]
    async fn an_istioctl_env_that_points_nowhere_names_the_variable() {
        let bin = FakeBin::new().with_working_tools();
        let mut search = bin.search();
        search.istioctl_env = Some("/nonexistent/istioctl".into());
        let err = preflight(&search).await.unwrap_err();
        assert_eq!(err.tools(), [ToolName::Istioctl]);
        assert!(
            err.to_string()
                .contains("`istioctl` from ISTIOCTL is `/nonexistent/istioctl`, which is not an executable file"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_tool_that_prints_no_version_is_refused() {
        let bin = FakeBin::new()
            .with_working_tools()
            .script("kind", "echo hello");
        let err = preflight(&bin.search()).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("printed no version we recognise: `hello`"),
            "{err}"
        );
    }

    #[test]
    fn versions_are_read_from_each_tools_own_format() {
        assert_eq!(
            parse_version("kind v0.30.0 go1.24.6 linux/amd64").as_deref(),
            Some("0.30.0")
        );
        assert_eq!(parse_version("1.27.1\n").as_deref(), Some("1.27.1"));
        assert_eq!(
            parse_version("Client Version: v1.33.3\nKustomize Version: v5.6.0").as_deref(),
            Some("1.33.3")
        );
        assert_eq!(parse_version("no version").as_deref(), None);
        assert_eq!(minor_of("1.27.1"), Some((1, 27)));
    }

    #[test]
    fn the_nightly_the_kind_module_and_the_local_default_follow_the_pins() {
        let nightly = include_str!("../../.github/workflows/nightly.yml");
        assert!(
            nightly.contains(&format!("KIND_VERSION: {KIND_VERSION}\n")),
            "nightly.yml's KIND_VERSION is not {KIND_VERSION}"
        );
        // The single-version rows run everything but the upgrade tests; the upgrade row runs
        // both upgrade tests (`kind_upgrade_in_place_*`, `kind_upgrade_canary_*`).
        for (row, a, b, tests) in [
            (
                "istio-1.31",
                ISTIO_PREVIOUS_VERSION,
                None,
                "not test(kind_upgrade_)",
            ),
            ("istio-1.32", ISTIO_VERSION, None, "not test(kind_upgrade_)"),
            (
                "upgrade-1.31-to-1.32",
                ISTIO_PREVIOUS_VERSION,
                Some(ISTIO_VERSION),
                "test(kind_upgrade_)",
            ),
        ] {
            let at = nightly
                .find(&format!("- name: {row}\n"))
                .unwrap_or_else(|| panic!("nightly.yml has no matrix row `{row}`"));
            let rest = &nightly[at..];
            let rest = &rest[..rest[2..].find("- name:").map_or(rest.len(), |e| e + 2)];
            assert!(rest.contains(&format!("istio_a: \"{a}\"")), "{row}: {rest}");
            if let Some(b) = b {
                assert!(rest.contains(&format!("istio_b: \"{b}\"")), "{row}: {rest}");
            }
            assert!(
                rest.contains(&format!("tests: \"{tests}\"\n")),
                "{row}: {rest}"
            );
        }
        let kind_mod = include_str!("../../oracle/e2e-tools/kind/go.mod");
        assert!(
            kind_mod.contains(&format!("sigs.k8s.io/kind {KIND_VERSION} ")),
            "oracle/e2e-tools/kind/go.mod does not pin kind {KIND_VERSION}"
        );
        // The local target's default version is the newest release.
        let latest = crate::istio::IstioVersion::LATEST;
        assert_eq!(
            minor_of(ISTIO_VERSION),
            Some((1, u32::from(latest.minor))),
            "ISTIO_VERSION {ISTIO_VERSION} is not IstioVersion::LATEST ({latest})"
        );
        assert!(KIND_NODE_IMAGE.starts_with("kindest/node:v1.35."));
        assert!(KIND_NODE_IMAGE.contains("@sha256:"));
    }
}
