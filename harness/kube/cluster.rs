//! A cluster the harness talks to: a kind cluster it created, or (target `kubeconfig`) an
//! existing one named by its context. Also the record of the namespaces a run created, so that
//! on someone else's cluster it deletes only its own.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::{KubeError, is_not_found};

/// The field manager of everything meshtrust applies.
pub const FIELD_MANAGER: &str = "meshtrust";

/// Where a cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    /// The logical name (`cluster1`): the cacerts directory and Istio's `clusterName`.
    pub cluster: String,
    /// `None`: the default kubeconfig (`KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the kubeconfig's current context.
    pub context: Option<String>,
}

impl ClusterRef {
    /// `--kubeconfig` and `--context` for istioctl and kubectl.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(path) = &self.kubeconfig {
            args.extend(["--kubeconfig".to_owned(), path.display().to_string()]);
        }
        if let Some(context) = &self.context {
            args.extend(["--context".to_owned(), context.clone()]);
        }
        args
    }

    /// A kube client for this cluster.
    pub async fn client(&self) -> Result<kube::Client, KubeError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| KubeError::Kubeconfig {
            path: self
                .kubeconfig
                .clone()
                .unwrap_or_else(|| PathBuf::from("$KUBECONFIG")),
            context: self.context.clone(),
            cause: source,
        };
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| fail(Box::new(e)))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| fail(Box::new(e)))?
            }
            None => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| fail(Box::new(e)))?,
        };
        kube::Client::try_from(config).map_err(|e| fail(Box::new(e)))
    }
}

/// Target `kubeconfig`: one cluster per context, named `cluster1`, `cluster2`, ... in order
/// (the scenarios' logical names, and the cacerts each gets).
pub fn from_contexts(kubeconfig: Option<&std::path::Path>, contexts: &[String]) -> Vec<ClusterRef> {
    contexts
        .iter()
        .enumerate()
        .map(|(i, c)| ClusterRef {
            cluster: format!("cluster{}", i + 1),
            kubeconfig: kubeconfig.map(Into::into),
            context: Some(c.clone()),
        })
        .collect()
}

/// A namespace object, optionally labelled.
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_owned());
    if !labels.is_empty() {
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }
    ns
}

/// The namespaces this run created (not those it found), to delete at teardown.
#[derive(Debug, Default, Clone)]
pub struct OwnedNamespaces {
    names: Vec<String>,
}

impl OwnedNamespaces {
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Server-side applies `ns`; remembers it as ours only if it did not exist before.
    pub async fn ensure(&mut self, client: &kube::Client, ns: &Namespace) -> Result<(), KubeError> {
        let api: Api<Namespace> = Api::all(client.clone());
        let name = ns.metadata.name.clone().unwrap_or_default();
        let existed = api
            .get_opt(&name)
            .await
            .map_err(KubeError::api(format!("get namespace `{name}`")))?
            .is_some();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(ns),
        )
        .await
        .map_err(KubeError::api(format!("apply namespace `{name}`")))?;
        if !existed && !self.names.contains(&name) {
            self.names.push(name);
        }
        Ok(())
    }

    /// Forgets them: the cluster they live in is going away whole (the istiod target's API
    /// server), so there is nothing to delete.
    pub fn forget(&mut self) {
        self.names.clear();
    }

    /// Deletes the namespaces this run created, newest first; a namespace already gone is
    /// fine. Returns the ones it could not delete, as messages.
    pub async fn delete_all(&mut self, client: &kube::Client) -> Vec<String> {
        let api: Api<Namespace> = Api::all(client.clone());
        let mut problems = Vec::new();
        while let Some(name) = self.names.pop() {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => problems.push(format!("cannot delete namespace `{name}`: {e}")),
            }
        }
        problems
    }
}

impl Drop for OwnedNamespaces {
    fn drop(&mut self) {
        // Deleting needs the API (async); teardown does it. Left over here means teardown never
        // ran: say what to delete rather than leave it silently.
        if !self.names.is_empty() {
            crate::say!(
                "meshtrust: namespaces created by this run were not deleted: {} (hint: `kubectl delete namespace {}`)",
                self.names.join(", "),
                self.names.join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_args_name_the_kubeconfig_and_context() {
        let c = ClusterRef {
            cluster: "cluster1".into(),
            kubeconfig: Some("/w/mt-cluster1.kubeconfig".into()),
            context: Some("kind-mt-cluster1".into()),
        };
        assert_eq!(
            c.cli_args(),
            [
                "--kubeconfig",
                "/w/mt-cluster1.kubeconfig",
                "--context",
                "kind-mt-cluster1"
            ]
        );
        let existing = ClusterRef {
            cluster: "east".into(),
            kubeconfig: None,
            context: Some("prod-east".into()),
        };
        assert_eq!(existing.cli_args(), ["--context", "prod-east"]);
    }

    #[tokio::test]
    async fn a_context_that_is_not_in_the_kubeconfig_is_an_error_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        )
        .unwrap();
        let c = ClusterRef {
            cluster: "east".into(),
            kubeconfig: Some(path.clone()),
            context: Some("prod-east".into()),
        };
        let Err(err) = c.client().await else {
            panic!("a missing context must be refused")
        };
        let err = err.to_string();
        assert!(
            err.starts_with(&format!(
                "cannot use kubeconfig `{}` (context `prod-east`): ",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn contexts_become_cluster1_cluster2_in_order() {
        let refs = from_contexts(None, &["prod-east".into(), "prod-west".into()]);
        assert_eq!(refs[0].cluster, "cluster1");
        assert_eq!(refs[1].cli_args(), ["--context", "prod-west"]);
    }

    #[test]
    fn a_labelled_namespace() {
        let ns = namespace("foo", &[("istio-injection", "enabled")]);
        assert_eq!(
            serde_json::to_value(&ns).unwrap(),
            serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "foo", "labels": {"istio-injection": "enabled"}}
            })
        );
    }
}
