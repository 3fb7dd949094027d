//! Plugging in the CA with kube-rs: namespace `istio-system`, the `cacerts` Secret (the very
//! object `meshtrust certs secret` prints), created or replaced, and no stale
//! `istio-ca-root-cert` ConfigMap left from an earlier install.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use super::cluster::{FIELD_MANAGER, OwnedNamespaces, namespace};
use super::error::{KubeError, is_not_found};
use crate::pki;

pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The root-of-trust ConfigMap istiod writes into every namespace.
pub const ROOT_CONFIGMAP: &str = "istio-ca-root-cert";

/// The `cacerts` Secret of the cacerts files in `dir`, as `kubectl create secret generic
/// cacerts --from-file=DIR` makes it: `pki::present_cacerts_secret_yaml` parsed, so there is
/// one definition of that object. An incomplete directory gives an incomplete Secret (istiod
/// refuses it: the bad-cacerts scenario); a directory with none of the four files is an error.
pub fn cacerts_secret(dir: &Path) -> Result<Secret, KubeError> {
    let yaml = pki::present_cacerts_secret_yaml(dir)?;
    serde_norway::from_str(&yaml).map_err(|source| KubeError::Yaml {
        what: format!("the cacerts Secret of `{}`", dir.display()),
        cause: source,
    })
}

/// What plugging in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlugIn {
    /// A stale `istio-ca-root-cert` was found in istio-system and deleted.
    pub deleted_stale_root_configmap: bool,
    /// The live Secret had keys beyond ours (e.g. `tls.crt`) and was replaced whole.
    pub replaced: bool,
}

/// Applies namespace `istio-system` and Secret `cacerts`, then deletes a stale
/// `istio-ca-root-cert` in istio-system.
pub async fn plug_in(
    client: &kube::Client,
    namespaces: &mut OwnedNamespaces,
    dir: &Path,
) -> Result<PlugIn, KubeError> {
    let secret = cacerts_secret(dir)?;
    namespaces
        .ensure(client, &namespace(ISTIO_NAMESPACE, &[]))
        .await?;
    let replaced = apply_secret(client, &secret).await?;
    let deleted_stale_root_configmap = delete_stale_root_configmap(client).await?;
    tracing::info!(
        dir = %dir.display(),
        replaced,
        deleted_stale_root_configmap,
        "plugged in cacerts"
    );
    Ok(PlugIn {
        deleted_stale_root_configmap,
        replaced,
    })
}

/// Server-side apply keeps keys that another manager set, and istiod takes the
/// `kubernetes.io/tls` layout whenever `tls.crt` is present (ISTIO-FACTS §2): a leftover
/// `tls.crt` would silently win over our files. So after applying, a Secret with foreign keys
/// is replaced whole (PUT). Returns whether it was.
pub async fn apply_secret(client: &kube::Client, secret: &Secret) -> Result<bool, KubeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    let name = secret.metadata.name.clone().unwrap_or_default();
    // The error would print the request, never the data; keep the action text free of it too.
    let live = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(secret),
        )
        .await
        .map_err(KubeError::api(format!(
            "apply secret `{ISTIO_NAMESPACE}/{name}`"
        )))?;
    if data_keys(&live) == data_keys(secret) {
        return Ok(false);
    }
    let mut whole = secret.clone();
    whole.metadata.resource_version = live.metadata.resource_version;
    api.replace(&name, &PostParams::default(), &whole)
        .await
        .map_err(KubeError::api(format!(
            "replace secret `{ISTIO_NAMESPACE}/{name}`"
        )))?;
    Ok(true)
}

fn data_keys(secret: &Secret) -> BTreeSet<String> {
    let data = secret.data.iter().flat_map(|d| d.keys().cloned());
    let string_data = secret.string_data.iter().flat_map(|d| d.keys().cloned());
    data.chain(string_data).collect()
}

/// An `istio-ca-root-cert` ConfigMap in istio-system from an earlier install holds the old
/// root; istiod's namespace controller does not always rewrite it before workloads read it
/// (ISTIO-FACTS §8, "a stale istio-ca-root-cert after reinstall"). Deleting it makes istiod
/// write the plugged root afresh.
pub async fn delete_stale_root_configmap(client: &kube::Client) -> Result<bool, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    match api.delete(ROOT_CONFIGMAP, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(KubeError::api(format!(
            "delete configmap `{ISTIO_NAMESPACE}/{ROOT_CONFIGMAP}`"
        ))(e)),
    }
}

/// The `root-cert.pem` of namespace `ns`'s `istio-ca-root-cert`, as istiod wrote it.
pub async fn root_configmap(client: &kube::Client, ns: &str) -> Result<Option<String>, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = api
        .get_opt(ROOT_CONFIGMAP)
        .await
        .map_err(KubeError::api(format!(
            "get configmap `{ns}/{ROOT_CONFIGMAP}`"
        )))?;
    Ok(cm
        .and_then(|cm| cm.data)
        .and_then(|mut d| d.remove("root-cert.pem")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    use crate::kube::mock::api_server;
    use crate::pki::{IntermediateSpec, KeyAlg, RootSpec, make};

    fn cacerts_dir() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = RootSpec {
            key: KeyAlg::P256,
            ..RootSpec::default()
        };
        let mut spec = IntermediateSpec::new("cluster1");
        spec.key = KeyAlg::P256;
        make::cacerts(tmp.path(), &root, &[spec], false, false).unwrap();
        let dir = tmp.path().join("cluster1");
        (tmp, dir)
    }

    #[test]
    fn the_secret_is_the_object_kubectl_create_secret_generic_makes() {
        let (_tmp, dir) = cacerts_dir();
        let ours = cacerts_secret(&dir).unwrap();
        let kubectl = Command::new("kubectl")
            .args([
                "create",
                "secret",
                "generic",
                "cacerts",
                "-n",
                "istio-system",
            ])
            .args(
                [
                    "ca-cert.pem",
                    "ca-key.pem",
                    "cert-chain.pem",
                    "root-cert.pem",
                ]
                .map(|f| format!("--from-file={}", dir.join(f).display())),
            )
            .args(["--dry-run=client", "-o", "yaml"])
            .output()
            .expect("kubectl is needed for this comparison (hint: `apt-get install kubectl`)");
        assert!(
            kubectl.status.success(),
            "{}",
            String::from_utf8_lossy(&kubectl.stderr)
        );
        let mut theirs: Secret = serde_norway::from_slice(&kubectl.stdout).unwrap();
        // kubectl prints `creationTimestamp: null` for an object it never sent.
        theirs.metadata.creation_timestamp = None;
        assert_eq!(ours, theirs);
        assert_eq!(
            data_keys(&ours).into_iter().collect::<Vec<_>>(),
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem"
            ]
        );
    }

    #[test]
    fn the_secret_serialises_with_its_type_meta_for_server_side_apply() {
        let (_tmp, dir) = cacerts_dir();
        let json = serde_json::to_value(cacerts_secret(&dir).unwrap()).unwrap();
        assert_eq!(json["apiVersion"], "v1");
        assert_eq!(json["kind"], "Secret");
        assert_eq!(json["metadata"]["namespace"], "istio-system");
        assert_eq!(json["metadata"]["name"], "cacerts");
    }

    #[test]
    fn an_incomplete_directory_makes_an_incomplete_secret_and_an_empty_one_an_error() {
        let (_tmp, dir) = cacerts_dir();
        std::fs::remove_file(dir.join("cert-chain.pem")).unwrap();
        let secret = cacerts_secret(&dir).unwrap();
        assert_eq!(
            data_keys(&secret).into_iter().collect::<Vec<_>>(),
            ["ca-cert.pem", "ca-key.pem", "root-cert.pem"]
        );
        for file in ["ca-cert.pem", "ca-key.pem", "root-cert.pem"] {
            std::fs::remove_file(dir.join(file)).unwrap();
        }
        let err = cacerts_secret(&dir).unwrap_err();
        assert!(matches!(err, KubeError::Pki(_)), "{err}");
        assert!(err.to_string().contains("ca-cert.pem"), "{err}");
    }

    const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}"#;

    fn secret_json(dir: &Path, extra_key: Option<&str>) -> String {
        let mut v = serde_json::to_value(cacerts_secret(dir).unwrap()).unwrap();
        if let Some(k) = extra_key {
            v["data"][k] = "eA==".into();
        }
        v.to_string()
    }

    #[tokio::test]
    async fn plugging_in_applies_as_meshtrust_and_deletes_the_stale_root_configmap() {
        let (_tmp, dir) = cacerts_dir();
        let secret = secret_json(&dir, None);
        let (client, calls) = api_server(move |method, path| {
            match (method, path) {
            ("GET", "/api/v1/namespaces/istio-system") => (404, NOT_FOUND.into()),
            ("PATCH", "/api/v1/namespaces/istio-system") => (
                200,
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"istio-system"}}"#.into(),
            ),
            ("PATCH", "/api/v1/namespaces/istio-system/secrets/cacerts") => (200, secret.clone()),
            ("DELETE", "/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert") => (
                200,
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio-ca-root-cert","namespace":"istio-system"}}"#.into(),
            ),
            _ => (500, "{}".into()),
        }
        });
        let mut owned = OwnedNamespaces::default();
        let done = plug_in(&client, &mut owned, &dir).await.unwrap();
        assert_eq!(
            done,
            PlugIn {
                deleted_stale_root_configmap: true,
                replaced: false
            }
        );
        assert_eq!(owned.names(), ["istio-system"]);
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "GET /api/v1/namespaces/istio-system",
                "PATCH /api/v1/namespaces/istio-system?&force=true&fieldManager=meshtrust",
                "PATCH /api/v1/namespaces/istio-system/secrets/cacerts?&force=true&fieldManager=meshtrust",
                "DELETE /api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert?",
            ]
        );
    }

    #[tokio::test]
    async fn a_live_secret_with_a_leftover_tls_crt_is_replaced_whole() {
        let (_tmp, dir) = cacerts_dir();
        let live = secret_json(&dir, Some("tls.crt"));
        let ours = secret_json(&dir, None);
        let (client, calls) = api_server(move |method, _| match method {
            "PATCH" => (200, live.clone()),
            "PUT" => (200, ours.clone()),
            _ => (500, "{}".into()),
        });
        let replaced = apply_secret(&client, &cacerts_secret(&dir).unwrap())
            .await
            .unwrap();
        assert!(replaced);
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 2);
        assert!(calls[1].starts_with("PUT /api/v1/namespaces/istio-system/secrets/cacerts"));
    }

    #[tokio::test]
    async fn an_api_error_names_the_action_and_never_the_secret_data() {
        let (_tmp, dir) = cacerts_dir();
        let (client, _) = api_server(|_, _| {
            (
                403,
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"cacerts\" is forbidden","reason":"Forbidden","code":403}"#.into(),
            )
        });
        let err = apply_secret(&client, &cacerts_secret(&dir).unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("kubernetes api: cannot apply secret `istio-system/cacerts`: "),
            "{err}"
        );
        assert!(!err.contains("BEGIN"), "{err}");
    }
}
