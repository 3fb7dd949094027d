//! The kind target's one error type. Messages are lower-case, name the offending value in
//! backticks, keep the cause in `source`, and end with a `(hint: ...)` where the fix is known.

use std::path::PathBuf;

use super::process::ProcessError;
use super::tools::PreflightError;
use super::wait::WaitError;
use crate::exit::Exit;
use crate::pki::PkiError;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),

    #[error(transparent)]
    Process(#[from] ProcessError),

    #[error(transparent)]
    Wait(#[from] WaitError),

    #[error("kubernetes api: cannot {action}: {cause}")]
    Api { action: String, cause: kube::Error },

    #[error("cannot use kubeconfig `{}`{}: {cause}", .path.display(), context_suffix(.context))]
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error(
        "kind cluster `{name}` already exists and this run did not create it (hint: delete it with `kind delete cluster --name {name}`, or pick another `--prefix`)"
    )]
    ClusterExists { name: String },

    #[error("`{}` is not a usable kind config: {reason}", .path.display())]
    KindConfig { path: PathBuf, reason: String },

    #[error(
        "`--istio-version {want}`, but `{}` is istioctl {have} (hint: `--istioctl PATH` to the istioctl of {want})",
        .path.display()
    )]
    IstioVersion {
        want: String,
        path: PathBuf,
        have: String,
    },

    #[error("cannot parse {what}: {cause}")]
    Yaml {
        what: String,
        cause: serde_norway::Error,
    },

    #[error("cannot {action} `{}`: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error(transparent)]
    Pki(#[from] PkiError),

    #[error("{what} in namespace `{namespace}`: {reason}")]
    Workload {
        what: String,
        namespace: String,
        reason: String,
    },

    #[error("the in-pod probe in `{pod}` failed: {reason}")]
    Probe { pod: String, reason: String },

    #[error("the probe binary `{}` is not usable: {reason} (hint: build it with `just probe-static` in meshtrust's repository, then pass `--probe FILE` or set MESHTRUST_PROBE)", .path.display())]
    ProbeBinary { path: PathBuf, reason: String },
}

fn context_suffix(context: &Option<String>) -> String {
    context
        .as_ref()
        .map(|c| format!(" (context `{c}`)"))
        .unwrap_or_default()
}

impl KubeError {
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let action = action.into();
        move |source| KubeError::Api {
            action,
            cause: source,
        }
    }

    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> KubeError {
        let path = path.into();
        move |source| KubeError::Io {
            action,
            path,
            cause: source,
        }
    }

    /// Every error of the kind target means the run could not be carried out: a missing tool,
    /// a cluster that would not come up, a timeout. None of them is a verdict on the chain
    /// (verdicts are data, decided in `chain` and `scenario`), so all exit 2.
    pub fn exit(&self) -> Exit {
        Exit::BadInput
    }
}

/// Whether a kube error is the API server's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}
