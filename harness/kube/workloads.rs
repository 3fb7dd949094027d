//! The workloads of the plug-in doc: namespace `foo` labelled for injection, httpbin and sleep
//! from `fixtures/`, and the STRICT PeerAuthentication, all applied as dynamic objects
//! (discovery, `DynamicObject`, server-side apply with field manager `meshtrust`). Readiness
//! means every container Ready, not a Running phase: a pod whose sidecar never got its
//! certificate is Running and useless.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::discovery::{self, Scope};
use serde::Deserialize as _;

use super::cluster::{FIELD_MANAGER, OwnedNamespaces, namespace};
use super::error::KubeError;
use super::wait::{self, Check, Patience};

pub const WORKLOAD_NAMESPACE: &str = "foo";
pub const HTTPBIN_YAML: &str = include_str!("../../fixtures/httpbin.yaml");
pub const SLEEP_YAML: &str = include_str!("../../fixtures/sleep.yaml");
pub const PEER_AUTHENTICATION_YAML: &str =
    include_str!("../../fixtures/peer-authentication-strict.yaml");
/// httpbin's Service port; the probe connects to the pod IP on the container port behind it.
pub const HTTPBIN_SERVICE_PORT: u16 = 8000;
pub const HTTPBIN_CONTAINER_PORT: u16 = 8080;

/// Pods pull their images on first start (httpbin, curl, proxyv2): two minutes on a warm node,
/// more on a cold CI runner, where `MESHTRUST_PATIENCE` raises it.
pub const PODS_READY: Patience = Patience::new(Duration::from_secs(180), Duration::from_secs(2));

/// PeerAuthentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsMode {
    Strict,
    Permissive,
    Disable,
}

impl MtlsMode {
    pub fn name(self) -> &'static str {
        match self {
            MtlsMode::Strict => "STRICT",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Disable => "DISABLE",
        }
    }
}

/// Every document of a multi-document manifest, as dynamic objects.
pub fn parse_manifest(what: &str, yaml: &str) -> Result<Vec<DynamicObject>, KubeError> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value = serde_norway::Value::deserialize(doc).map_err(|source| KubeError::Yaml {
            what: what.to_owned(),
            cause: source,
        })?;
        if value.is_null() {
            continue;
        }
        let object = serde_norway::from_value(value).map_err(|source| KubeError::Yaml {
            what: what.to_owned(),
            cause: source,
        })?;
        out.push(object);
    }
    Ok(out)
}

/// The PeerAuthentication fixture with `mode` in place of STRICT.
pub fn peer_authentication(mode: MtlsMode) -> Result<DynamicObject, KubeError> {
    let mut objects = parse_manifest(
        "fixtures/peer-authentication-strict.yaml",
        PEER_AUTHENTICATION_YAML,
    )?;
    let mut pa = objects.remove(0);
    pa.data["spec"]["mtls"]["mode"] = mode.name().into();
    Ok(pa)
}

/// `kind/namespace/name` of an object, for plans and messages.
pub fn describe(object: &DynamicObject, default_ns: &str) -> String {
    let kind = object.types.as_ref().map_or("?", |t| t.kind.as_str());
    let name = object.metadata.name.as_deref().unwrap_or("?");
    let ns = object.metadata.namespace.as_deref().unwrap_or(default_ns);
    format!("{kind} {ns}/{name}")
}

/// Server-side applies each object into `ns` (if it is namespaced), finding its API through
/// discovery: the PeerAuthentication's CRD exists only once Istio is installed.
pub async fn apply(
    client: &kube::Client,
    ns: &str,
    objects: &[DynamicObject],
) -> Result<(), KubeError> {
    for object in objects {
        let what = describe(object, ns);
        let types = object.types.as_ref().ok_or_else(|| KubeError::Workload {
            what: what.clone(),
            namespace: ns.to_owned(),
            reason: "the object has no apiVersion/kind".into(),
        })?;
        let gvk = GroupVersionKind::try_from(types).map_err(|e| KubeError::Workload {
            what: what.clone(),
            namespace: ns.to_owned(),
            reason: e.to_string(),
        })?;
        let (resource, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .map_err(KubeError::api(format!("discover the API of {what}")))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), ns, &resource),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let name = object.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(KubeError::api(format!("apply {what}")))?;
        tracing::info!("applied {what}");
    }
    Ok(())
}

/// Namespace `foo` (labelled for injection), httpbin and sleep; waits until both are Ready.
pub async fn deploy(
    client: &kube::Client,
    namespaces: &mut OwnedNamespaces,
) -> Result<(), KubeError> {
    namespaces
        .ensure(
            client,
            &namespace(WORKLOAD_NAMESPACE, &[("istio-injection", "enabled")]),
        )
        .await?;
    apply(
        client,
        WORKLOAD_NAMESPACE,
        &parse_manifest("fixtures/httpbin.yaml", HTTPBIN_YAML)?,
    )
    .await?;
    apply(
        client,
        WORKLOAD_NAMESPACE,
        &parse_manifest("fixtures/sleep.yaml", SLEEP_YAML)?,
    )
    .await?;
    for app in ["httpbin", "sleep"] {
        wait_pods_ready(
            client,
            WORKLOAD_NAMESPACE,
            &format!("app={app}"),
            PODS_READY,
        )
        .await?;
    }
    Ok(())
}

/// The manifest of one sample app (`httpbin` or `sleep`).
pub fn app_manifest(app: &str) -> Result<Vec<DynamicObject>, KubeError> {
    match app {
        "httpbin" => parse_manifest("fixtures/httpbin.yaml", HTTPBIN_YAML),
        "sleep" => parse_manifest("fixtures/sleep.yaml", SLEEP_YAML),
        other => Err(KubeError::Workload {
            what: format!("app `{other}`"),
            namespace: "-".into(),
            reason: "not one of the samples (httpbin, sleep)".into(),
        }),
    }
}

/// Namespace `ns` (labelled for injection) and one app in it; waits until its pods are Ready.
pub async fn deploy_app(
    client: &kube::Client,
    namespaces: &mut OwnedNamespaces,
    ns: &str,
    app: &str,
) -> Result<(), KubeError> {
    namespaces
        .ensure(client, &namespace(ns, &[("istio-injection", "enabled")]))
        .await?;
    let mut objects = app_manifest(app)?;
    for o in &mut objects {
        o.metadata.namespace = Some(ns.to_owned());
    }
    apply(client, ns, &objects).await?;
    wait_pods_ready(client, ns, &format!("app={app}"), PODS_READY).await?;
    Ok(())
}

/// The label patch that moves a namespace to `revision`: `istio.io/rev=<revision>`, and
/// `istio-injection` removed (a JSON merge patch's `null`), since Istio's injector webhooks
/// give `istio-injection` precedence over `istio.io/rev` (Istio's canary upgrade guide).
pub fn revision_labels_patch(revision: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"labels": {"istio-injection": null, "istio.io/rev": revision}}
    })
}

/// Moves namespace `ns` to `revision` (`kubectl label namespace NS istio-injection-
/// istio.io/rev=REVISION`): pods started afterwards get that revision's sidecar.
pub async fn set_namespace_revision(
    client: &kube::Client,
    ns: &str,
    revision: &str,
) -> Result<(), KubeError> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.patch(
        ns,
        &PatchParams::default(),
        &Patch::Merge(revision_labels_patch(revision)),
    )
    .await
    .map_err(KubeError::api(format!(
        "label namespace `{ns}` istio.io/rev={revision}"
    )))?;
    tracing::info!("namespace {ns} moved to revision {revision}");
    Ok(())
}

/// The revision a namespace's new pods are injected by: its `istio.io/rev` label, else
/// `default` when `istio-injection=enabled` (Istio's injector webhooks: `istio-injection`
/// wins over `istio.io/rev`, and means the default revision), else none.
pub fn namespace_revision(labels: &BTreeMap<String, String>) -> Option<String> {
    if labels.get("istio-injection").map(String::as_str) == Some("enabled") {
        return Some("default".to_owned());
    }
    labels.get("istio.io/rev").cloned()
}

/// Whether a pod runs the sidecar of the revision its namespace names: the injector labels
/// each pod it injects `istio.io/rev=<revision>` (`default` for the unrevisioned control
/// plane). `Err` says what the pod carries instead.
pub fn check_injected_revision(
    pod: &str,
    pod_labels: &BTreeMap<String, String>,
    want: &str,
) -> Result<(), String> {
    match pod_labels.get("istio.io/rev") {
        Some(rev) if rev == want => Ok(()),
        Some(rev) => Err(format!(
            "pod `{pod}` runs the sidecar of revision `{rev}`, not `{want}` (its label istio.io/rev)"
        )),
        None => Err(format!(
            "pod `{pod}` has no istio.io/rev label: it was not injected (want revision `{want}`)"
        )),
    }
}

/// Reads back which revision injected `app`'s Ready pods in `ns`, and checks it is the one
/// the namespace names (after a move to a canary and a restart).
pub async fn check_app_revision(
    client: &kube::Client,
    ns: &str,
    app: &str,
) -> Result<(), KubeError> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let labels: BTreeMap<String, String> = namespaces
        .get(ns)
        .await
        .map_err(KubeError::api(format!("get namespace `{ns}`")))?
        .metadata
        .labels
        .unwrap_or_default();
    let Some(want) = namespace_revision(&labels) else {
        return Ok(());
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map_err(KubeError::api(format!("list pods `app={app}` in `{ns}`")))?;
    for pod in list.items.iter().filter(|p| pod_state(p).is_ok()) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
        check_injected_revision(&name, &pod_labels, &want).map_err(|reason| {
            KubeError::Workload {
                what: format!("{app}'s sidecar"),
                namespace: ns.to_owned(),
                reason,
            }
        })?;
    }
    Ok(())
}

/// The Service `<app>-<cluster>` that names one cluster's instance of an app across the mesh.
/// In the app's own cluster it selects the app's pods; in every other cluster it exists only so
/// that the name resolves there (a selector no pod carries), so istiod's merged endpoints for
/// the name are the app's cluster's alone. A request to it from another cluster can only be
/// served by that cluster: the cross-cluster path is the only path.
pub fn cluster_alias_service(app: &str, cluster: &str, ns: &str, home: bool) -> DynamicObject {
    let selector = if home {
        serde_json::json!({ "app": app })
    } else {
        serde_json::json!({ "meshtrust.io/alias-of": format!("{app}-{cluster}") })
    };
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": format!("{app}-{cluster}"),
            "namespace": ns,
            "labels": { "app": app, "meshtrust.io/cluster": cluster },
        },
        "spec": {
            "ports": [{ "name": "http", "port": HTTPBIN_SERVICE_PORT, "targetPort": HTTPBIN_CONTAINER_PORT }],
            "selector": selector,
        },
    });
    serde_json::from_value(value).expect("a valid Service")
}

/// Applies PeerAuthentication `default` in `ns` with `mode`.
pub async fn set_peer_authentication_in(
    client: &kube::Client,
    ns: &str,
    mode: MtlsMode,
) -> Result<(), KubeError> {
    let mut pa = peer_authentication(mode)?;
    pa.metadata.namespace = Some(ns.to_owned());
    apply(client, ns, &[pa]).await
}

/// Applies PeerAuthentication `default` in `foo` with `mode`.
pub async fn set_peer_authentication(
    client: &kube::Client,
    mode: MtlsMode,
) -> Result<(), KubeError> {
    apply(client, WORKLOAD_NAMESPACE, &[peer_authentication(mode)?]).await
}

/// One pod's readiness: done when it is not being deleted, its Ready condition is True, and
/// every container (the injected istio-proxy included) is Ready.
pub fn pod_state(pod: &Pod) -> Result<(), String> {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(format!("{name}: terminating"));
    }
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_else(|| "Unknown".into());
    let ready_condition = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    // istio-proxy is a restartable init container when Istio injects native sidecars; a
    // finished init container (istio-init, istio-validation) is done, not unready.
    let containers = status
        .init_container_statuses
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.ready && c.state.as_ref().is_some_and(|s| s.terminated.is_none()))
        .chain(status.container_statuses.unwrap_or_default());
    let mut not_ready = Vec::new();
    let mut seen_any = false;
    for c in containers {
        seen_any = true;
        if c.ready {
            continue;
        }
        let state = c.state.unwrap_or_default();
        let why = if let Some(w) = state.waiting {
            format!(
                "waiting ({}{})",
                w.reason.unwrap_or_default(),
                w.message.map(|m| format!(": {m}")).unwrap_or_default()
            )
        } else if let Some(t) = state.terminated {
            format!(
                "terminated ({}, exit {})",
                t.reason.unwrap_or_default(),
                t.exit_code
            )
        } else {
            "running, not ready".to_owned()
        };
        not_ready.push(format!("{} {why}", c.name));
    }
    if ready_condition && seen_any && not_ready.is_empty() {
        Ok(())
    } else if not_ready.is_empty() {
        Err(format!("{name}: phase {phase}, Ready condition not True"))
    } else {
        Err(format!("{name}: phase {phase}, {}", not_ready.join(", ")))
    }
}

/// Waits until at least one pod matches `selector` and every matching pod is Ready; on timeout
/// the error shows each pod's state and the namespace's recent events for those pods.
pub async fn wait_pods_ready(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    patience: Patience,
) -> Result<Vec<Pod>, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let waited = wait::poll(
        format!("pods `{selector}` in `{ns}` to be Ready"),
        patience.scaled(),
        || {
            let pods = pods.clone();
            let selector = selector.to_owned();
            async move {
                let list = match pods.list(&ListParams::default().labels(&selector)).await {
                    Ok(list) => list.items,
                    Err(e) => return Check::NotYet(format!("api error: {e}")),
                };
                if list.is_empty() {
                    return Check::NotYet("no pods yet".into());
                }
                let problems: Vec<String> =
                    list.iter().filter_map(|p| pod_state(p).err()).collect();
                if problems.is_empty() {
                    Check::Done(list)
                } else {
                    Check::NotYet(problems.join("; "))
                }
            }
        },
    )
    .await;
    match waited {
        Ok(list) => Ok(list),
        Err(mut e) => {
            let events = pod_events(client, ns).await;
            e.last_seen
                .push_str(&format!("\nevents in `{ns}`:\n{events}"));
            Err(e.into())
        }
    }
}

/// The namespace's Pod events, oldest first, one line each (what `kubectl describe` shows).
pub async fn pod_events(client: &kube::Client, ns: &str) -> String {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    match api
        .list(&ListParams::default().fields("involvedObject.kind=Pod"))
        .await
    {
        Ok(list) => {
            let lines: Vec<String> = list.items.iter().map(event_line).collect();
            if lines.is_empty() {
                "  (none)".to_owned()
            } else {
                lines.join("\n")
            }
        }
        Err(e) => format!("  (cannot list events: {e})"),
    }
}

pub fn event_line(e: &Event) -> String {
    format!(
        "  {} {} {}: {}",
        e.type_.as_deref().unwrap_or("?"),
        e.involved_object.name.as_deref().unwrap_or("?"),
        e.reason.as_deref().unwrap_or("?"),
        e.message.as_deref().unwrap_or("").trim()
    )
}

/// The IP of the (first Ready) pod matching `selector`: the probe dials it directly, with no
/// DNS in the way.
pub async fn pod_ip(
    client: &kube::Client,
    ns: &str,
    selector: &str,
) -> Result<(String, String), KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(KubeError::api(format!("list pods `{selector}` in `{ns}`")))?;
    list.items
        .into_iter()
        .filter(|p| pod_state(p).is_ok())
        .find_map(|p| {
            let ip = p.status.and_then(|s| s.pod_ip)?;
            Some((p.metadata.name.unwrap_or_default(), ip))
        })
        .ok_or_else(|| KubeError::Workload {
            what: format!("a Ready pod `{selector}` with an IP"),
            namespace: ns.to_owned(),
            reason: "none found".into(),
        })
}

/// Labels of an object, for tests and plans.
pub fn labels(object: &DynamicObject) -> BTreeMap<String, String> {
    object.metadata.labels.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_namespaces_revision_is_its_rev_label_unless_injection_is_enabled() {
        assert_eq!(
            namespace_revision(&labels_of(&[("istio.io/rev", "canary")])).as_deref(),
            Some("canary")
        );
        // istio-injection wins over istio.io/rev, and means the default revision.
        assert_eq!(
            namespace_revision(&labels_of(&[
                ("istio-injection", "enabled"),
                ("istio.io/rev", "canary")
            ]))
            .as_deref(),
            Some("default")
        );
        assert_eq!(
            namespace_revision(&labels_of(&[("istio-injection", "disabled")])),
            None
        );
        assert_eq!(namespace_revision(&labels_of(&[])), None);
    }

    /// A scripted API server: namespace `foo` labelled `ns_labels`, one Ready httpbin pod
    /// labelled `istio.io/rev: pod_rev`.
    fn cluster_with(ns_labels: serde_json::Value, pod_rev: &'static str) -> kube::Client {
        let (client, _) = crate::kube::mock::api_server(move |_, path| match path {
            "/api/v1/namespaces/foo" => (
                200,
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "foo", "labels": ns_labels}})
                .to_string(),
            ),
            "/api/v1/namespaces/foo/pods" => (
                200,
                serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                    "items": [{"metadata": {"name": "httpbin-2", "namespace": "foo",
                        "labels": {"app": "httpbin", "istio.io/rev": pod_rev}},
                        "status": {"phase": "Running",
                            "conditions": [{"type": "Ready", "status": "True"}],
                            "containerStatuses": [{"name": "istio-proxy", "ready": true,
                                "restartCount": 0, "image": "proxyv2", "imageID": "",
                                "state": {"running": {}}}]}}]})
                .to_string(),
            ),
            _ => (404, "{}".to_owned()),
        });
        client
    }

    #[tokio::test]
    async fn a_restarted_pod_is_read_back_on_its_namespaces_revision() {
        let canary = serde_json::json!({"istio.io/rev": "canary"});
        assert!(
            check_app_revision(&cluster_with(canary.clone(), "canary"), "foo", "httpbin")
                .await
                .is_ok()
        );
        // The twin: the namespace moved, the pod still runs the default revision's sidecar.
        let e = check_app_revision(&cluster_with(canary, "default"), "foo", "httpbin")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runs the sidecar of revision `default`, not `canary`"),
            "{e}"
        );
        // A namespace that names no revision asks nothing of its pods.
        let none = serde_json::json!({});
        assert!(
            check_app_revision(&cluster_with(none, "default"), "foo", "httpbin")
                .await
                .is_ok()
        );
    }

    #[test]
    fn a_pod_must_run_the_sidecar_of_its_namespaces_revision() {
        let on_canary = labels_of(&[("app", "httpbin"), ("istio.io/rev", "canary")]);
        assert!(check_injected_revision("httpbin-2", &on_canary, "canary").is_ok());
        // Its twins: still on the old revision (a move that restarted nothing), or not injected.
        let on_default = labels_of(&[("app", "httpbin"), ("istio.io/rev", "default")]);
        let e = check_injected_revision("httpbin-1", &on_default, "canary").unwrap_err();
        assert_eq!(
            e,
            "pod `httpbin-1` runs the sidecar of revision `default`, not `canary` (its label istio.io/rev)"
        );
        let bare = labels_of(&[("app", "httpbin")]);
        let e = check_injected_revision("httpbin-1", &bare, "canary").unwrap_err();
        assert!(e.contains("was not injected"), "{e}");
    }
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Service, ServiceAccount};

    fn typed<T: serde::de::DeserializeOwned>(o: &DynamicObject) -> T {
        serde_json::from_value(serde_json::to_value(o).unwrap()).unwrap()
    }

    fn kinds(objects: &[DynamicObject]) -> Vec<String> {
        objects.iter().map(|o| describe(o, "foo")).collect()
    }

    #[test]
    fn httpbin_is_a_service_account_a_service_on_8000_and_a_deployment_on_8080() {
        let objects = parse_manifest("httpbin", HTTPBIN_YAML).unwrap();
        assert_eq!(
            kinds(&objects),
            [
                "ServiceAccount foo/httpbin",
                "Service foo/httpbin",
                "Deployment foo/httpbin"
            ]
        );
        let _: ServiceAccount = typed(&objects[0]);
        let svc: Service = typed(&objects[1]);
        let spec = svc.spec.unwrap();
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.port, i32::from(HTTPBIN_SERVICE_PORT));
        assert_eq!(
            port.target_port,
            Some(
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(
                    HTTPBIN_CONTAINER_PORT
                ))
            )
        );
        assert_eq!(spec.selector.unwrap()["app"], "httpbin");
        let d: Deployment = typed(&objects[2]);
        let template = d.spec.template;
        assert_eq!(template.metadata.unwrap().labels.unwrap()["app"], "httpbin");
        let pod = template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("httpbin"));
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("docker.io/mccutchen/go-httpbin:v2.15.0")
        );
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 8080);
    }

    #[test]
    fn sleep_runs_curl_forever_as_service_account_sleep() {
        let objects = parse_manifest("sleep", SLEEP_YAML).unwrap();
        assert_eq!(
            kinds(&objects),
            [
                "ServiceAccount foo/sleep",
                "Service foo/sleep",
                "Deployment foo/sleep"
            ]
        );
        let d: Deployment = typed(&objects[2]);
        let pod = d.spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("sleep"));
        let c = &pod.containers[0];
        assert!(
            c.image
                .as_deref()
                .unwrap()
                .starts_with("docker.io/curlimages/curl:")
        );
        assert_eq!(c.command.as_deref().unwrap(), ["/bin/sleep", "infinity"]);
    }

    #[test]
    fn a_cluster_alias_selects_the_app_at_home_and_nothing_elsewhere() {
        let home: Service = typed(&cluster_alias_service("httpbin", "cluster2", "foo", true));
        assert_eq!(home.metadata.name.as_deref(), Some("httpbin-cluster2"));
        let spec = home.spec.unwrap();
        assert_eq!(spec.selector.unwrap()["app"], "httpbin");
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 8000);
        let away: Service = typed(&cluster_alias_service("httpbin", "cluster2", "foo", false));
        let selector = away.spec.unwrap().selector.unwrap();
        assert!(!selector.contains_key("app"), "{selector:?}");
        assert_eq!(selector["meshtrust.io/alias-of"], "httpbin-cluster2");
    }

    #[test]
    fn the_peer_authentication_is_default_strict_in_security_istio_io_v1() {
        let pa = peer_authentication(MtlsMode::Strict).unwrap();
        let types = pa.types.as_ref().unwrap();
        assert_eq!(types.api_version, "security.istio.io/v1");
        assert_eq!(types.kind, "PeerAuthentication");
        assert_eq!(pa.metadata.name.as_deref(), Some("default"));
        assert_eq!(pa.data["spec"]["mtls"]["mode"], "STRICT");
        let permissive = peer_authentication(MtlsMode::Permissive).unwrap();
        assert_eq!(permissive.data["spec"]["mtls"]["mode"], "PERMISSIVE");
    }

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_running_pod_whose_sidecar_is_not_ready_is_not_ready() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "sleep-1"},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "sleep", "ready": true, "restartCount": 0, "image": "", "imageID": "",
                     "state": {"running": {}}},
                    {"name": "istio-proxy", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                     "state": {"running": {}}}
                ]
            }
        }));
        assert_eq!(
            pod_state(&p).unwrap_err(),
            "sleep-1: phase Running, istio-proxy running, not ready"
        );
    }

    #[test]
    fn a_pod_stuck_pulling_says_why() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "httpbin-1"},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "httpbin", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                     "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}
                ]
            }
        }));
        assert_eq!(
            pod_state(&p).unwrap_err(),
            "httpbin-1: phase Pending, httpbin waiting (ImagePullBackOff: Back-off pulling image)"
        );
    }

    #[test]
    fn a_pod_with_every_container_ready_is_ready() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "httpbin-1"},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "httpbin", "ready": true, "restartCount": 0, "image": "", "imageID": ""},
                    {"name": "istio-proxy", "ready": true, "restartCount": 0, "image": "", "imageID": ""}
                ]
            }
        }));
        assert_eq!(pod_state(&p), Ok(()));
    }

    #[tokio::test]
    async fn a_readiness_timeout_shows_container_states_and_pod_events() {
        let pods = r#"{"apiVersion":"v1","kind":"PodList","metadata":{},"items":[{"metadata":{"name":"httpbin-1"},
            "status":{"phase":"Pending","containerStatuses":[{"name":"httpbin","ready":false,"restartCount":0,"image":"","imageID":"",
            "state":{"waiting":{"reason":"ErrImagePull"}}}]}}]}"#;
        let events = r#"{"apiVersion":"v1","kind":"EventList","metadata":{},"items":[{"metadata":{"name":"e1"},
            "involvedObject":{"kind":"Pod","name":"httpbin-1"},"type":"Warning","reason":"Failed",
            "message":"Failed to pull image \"docker.io/mccutchen/go-httpbin:v2.15.0\": not found"}]}"#;
        let (client, _) = crate::kube::mock::api_server(move |_, path| match path {
            "/api/v1/namespaces/foo/pods" => (200, pods.into()),
            "/api/v1/namespaces/foo/events" => (200, events.into()),
            _ => (500, "{}".into()),
        });
        let quick = Patience::new(Duration::from_millis(200), Duration::from_millis(20));
        let err = wait_pods_ready(&client, "foo", "app=httpbin", quick)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "gave up waiting for pods `app=httpbin` in `foo` to be Ready after 200ms; last seen: \
             httpbin-1: phase Pending, httpbin waiting (ErrImagePull)\n\
             events in `foo`:\n  Warning httpbin-1 Failed: Failed to pull image \
             \"docker.io/mccutchen/go-httpbin:v2.15.0\": not found"
        );
    }

    #[test]
    fn moving_a_namespace_sets_the_revision_and_drops_istio_injection() {
        assert_eq!(
            revision_labels_patch("canary"),
            serde_json::json!({"metadata": {"labels": {
                "istio-injection": null, "istio.io/rev": "canary"}}})
        );
    }

    #[tokio::test]
    async fn a_namespace_move_patches_the_namespace_and_names_it_when_refused() {
        let (client, calls) = crate::kube::mock::api_server(|method, path| match (method, path) {
            ("PATCH", "/api/v1/namespaces/foo") => (
                200,
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}"#.into(),
            ),
            _ => (
                404,
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "namespaces \"bar\" not found", "reason": "NotFound", "code": 404})
                .to_string(),
            ),
        });
        set_namespace_revision(&client, "foo", "canary")
            .await
            .unwrap();
        assert_eq!(
            calls.lock().unwrap().as_slice(),
            ["PATCH /api/v1/namespaces/foo?"]
        );
        let err = set_namespace_revision(&client, "bar", "canary")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("kubernetes api: cannot label namespace `bar` istio.io/rev=canary"),
            "{err}"
        );
    }
}
