//! A fake kind cluster for the kind target's whole-scenario tests: a loopback HTTP API server
//! that keeps just enough state for the scenarios to take their path (namespaces, the cacerts
//! Secret, the Deployments it was given, PeerAuthentications, which istiod revisions the fake
//! `istioctl` installed), serves exec over WebSocket (the Kubernetes channel protocol), and
//! writes every request that changes something, and every exec, to one shared log. istiod's
//! answer to the plugged Secret is `meshtrust check`'s: the refusal it predicts, or the CA log
//! line. Unit tests only; nothing here contacts a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::istio;
use crate::check::{CheckOptions, Severity};
use crate::pki::Bundle;

/// What the clusters did, in order, each line `<cluster>: <what>`.
pub type Log = Arc<Mutex<Vec<String>>>;

/// The fake `istioctl` (1.31.2, not the newest release: the kind target must speak for the
/// istioctl it runs): records its revision changes in `<dir>/<context>.revisions`, refuses
/// (after a moment, as a real install that waits for istiod) while `<dir>/<context>.refuse`
/// exists, and prints a remote Secret.
pub const ISTIOCTL: &str = r#"ctx=""; rev="default"; prev=""; name=""
for a in "$@"; do
  [ "$prev" = "--context" ] && ctx="$a"; [ "$prev" = "--revision" ] && rev="$a"
  [ "$prev" = "--name" ] && name="$a"; prev="$a"
done
dir="$(dirname "$0")/state"; revs="$dir/$ctx.revisions"
case "$1" in
  version) echo "client version: 1.31.2" ;;
  install)
    grep -qx "$rev" "$revs" 2>/dev/null || echo "$rev" >> "$revs"
    if [ -f "$dir/$ctx.refuse" ]; then sleep 2; echo "Error: istiod is not ready" >&2; exit 1; fi ;;
  uninstall)
    case " $* " in
      *" --purge "*) : > "$revs" ;;
      *) grep -vx "$rev" "$revs" > "$revs.new" 2>/dev/null; mv "$revs.new" "$revs" ;;
    esac ;;
  create-remote-secret)
    printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: istio-remote-secret-%s\n  namespace: istio-system\nstringData:\n  %s: kubeconfig\n' "$name" "$name" ;;
esac
exit 0"#;

/// The fake `docker`: a node's IP is the plan's placeholder for it (`<ip of NODE>`), and
/// everything else succeeds.
pub const DOCKER: &str = r#"for last in "$@"; do :; done
case "$1" in
  info) echo 27.3.1 ;;
  inspect) echo "<ip of $last>" ;;
esac
exit 0"#;

/// The fake `kind`: `create cluster` writes a kubeconfig for the fake API server whose address
/// is in `state/<logical cluster>.server` (the cluster name's last `-` part).
pub const KIND: &str = r#"kc=""; name=""; prev=""
for a in "$@"; do [ "$prev" = "--kubeconfig" ] && kc="$a"; [ "$prev" = "--name" ] && name="$a"; prev="$a"; done
dir="$(dirname "$0")/state"
case "$1 $2" in
  "version ") echo "kind v0.33.0 go1.26.8 linux/amd64" ;;
  "create cluster") printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: kind-%s\n  context:\n    cluster: c\n    user: u\ncurrent-context: kind-%s\n' "$(cat "$dir/${name##*-}.server")" "$name" "$name" > "$kc" ;;
esac
exit 0"#;

/// Writes the fake tools (`istioctl`, `docker`, `kind`, `kubectl`) into `dir`, with the state
/// directory they share with the fake API servers.
pub fn write_tools(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("a state directory");
    for (name, body) in [
        ("istioctl", ISTIOCTL),
        ("docker", DOCKER),
        ("kind", KIND),
        (
            "kubectl",
            "[ \"$1\" = version ] && echo 'Client Version: v1.35.1'; exit 0",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("a fake tool");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("an executable fake tool");
    }
    state
}

/// The pod IP of each sample app (the plan shows `<httpbin pod IP>`).
pub const HTTPBIN_IP: &str = "10.11.0.7";
pub const SLEEP_IP: &str = "10.11.0.8";

struct State {
    cluster: String,
    context: String,
    dir: PathBuf,
    log: Log,
    namespaces: BTreeMap<String, Value>,
    cacerts: Option<BTreeMap<String, Vec<u8>>>,
    strict: BTreeSet<String>,
    deployments: BTreeSet<(String, String)>,
    /// Ephemeral containers added, by pod (the distroless route of the probe).
    ephemeral: BTreeMap<String, String>,
}

impl State {
    fn record(&self, what: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(format!("{}: {what}", self.cluster));
        }
    }

    fn revisions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("{}.revisions", self.context)))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// istiod's refusal of the plugged Secret, as `meshtrust check` predicts it.
    fn refusal(&self) -> Option<String> {
        let data = self.cacerts.as_ref()?;
        let dir = tempfile::tempdir().ok()?;
        for (file, bytes) in data {
            std::fs::write(dir.path().join(file), bytes).ok()?;
        }
        let bundle = Bundle::read(dir.path()).ok()?;
        crate::check::check_bundle(&bundle, &CheckOptions::default())
            .into_iter()
            .find(|f| f.severity == Severity::Error)
            .and_then(|f| f.istiod_error)
    }

    fn sync_refusal(&self) {
        let path = self.dir.join(format!("{}.refuse", self.context));
        match self.refusal() {
            Some(reason) => {
                let _ = std::fs::write(path, reason);
            }
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn root_pem(&self) -> Option<String> {
        let data = self.cacerts.as_ref()?;
        String::from_utf8(data.get("root-cert.pem")?.clone()).ok()
    }
}

/// One fake cluster: its address (a kubeconfig's `server`), and the server task (stopped on
/// drop).
pub struct FakeCluster {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCluster {
    /// Serves cluster `cluster` (kind context `context`) on a loopback port; `dir` is the fake
    /// tools' state directory ([`write_tools`]).
    pub async fn start(cluster: &str, context: &str, dir: &Path, log: Log) -> FakeCluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State {
            cluster: cluster.to_owned(),
            context: context.to_owned(),
            dir: dir.to_owned(),
            log,
            namespaces: BTreeMap::new(),
            cacerts: None,
            strict: BTreeSet::new(),
            deployments: BTreeSet::new(),
            ephemeral: BTreeMap::new(),
        }));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        FakeCluster {
            url: format!("http://{addr}"),
            task,
        }
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a response")
}

fn text(body: String) -> Reply {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .expect("a response")
}

fn not_found() -> Reply {
    reply(
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
            "code": 404, "message": "not found"}),
    )
}

fn resources(group_version: &str, list: &[(&str, &str, bool)]) -> Value {
    let resources: Vec<Value> = list
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": resources})
}

fn ready_deployment(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {"replicas": 1, "selector": {}, "template": {}},
        "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "observedGeneration": 1}})
}

fn pod(ns: &str, name: &str, labels: Value, ip: &str, crashed: bool) -> Value {
    let containers = if crashed {
        json!([{"name": "discovery", "ready": false, "restartCount": 3, "image": "pilot",
            "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
    } else {
        json!([{"name": "app", "ready": true, "restartCount": 0, "image": "app", "imageID": "",
            "state": {"running": {}}},
            {"name": "istio-proxy", "ready": true, "restartCount": 0, "image": "proxyv2",
            "imageID": "", "state": {"running": {}}}])
    };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "status": {"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": if crashed { "False" } else { "True" }}],
            "containerStatuses": containers}})
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Reply {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let q = query(&req);
    if path.ends_with("/exec") {
        return exec(state, req, &path, &q);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut s = state.lock().expect("the fake cluster's state");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if method != "GET" {
        s.record(format!("{method} {path}"));
    }
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v1"]) => reply(
            200,
            resources(
                "v1",
                &[
                    ("namespaces", "Namespace", false),
                    ("serviceaccounts", "ServiceAccount", true),
                    ("services", "Service", true),
                    ("secrets", "Secret", true),
                    ("configmaps", "ConfigMap", true),
                    ("pods", "Pod", true),
                ],
            ),
        ),
        ("GET", ["apis", "apps", "v1"]) => reply(
            200,
            resources("apps/v1", &[("deployments", "Deployment", true)]),
        ),
        ("GET", ["apis", "security.istio.io", "v1"]) => reply(
            200,
            resources(
                "security.istio.io/v1",
                &[("peerauthentications", "PeerAuthentication", true)],
            ),
        ),
        (_, ["api", "v1", "namespaces", ns]) => namespace(&mut s, &method, ns, &body),
        (_, ["api", "v1", "namespaces", ns, "secrets", name]) => {
            secret(&mut s, &method, ns, name, &body)
        }
        (
            "GET",
            [
                "api",
                "v1",
                "namespaces",
                ns,
                "configmaps",
                "istio-ca-root-cert",
            ],
        ) => {
            let running = !s.revisions().is_empty() && s.refusal().is_none();
            match (running, s.root_pem()) {
                (true, Some(pem)) => reply(
                    200,
                    json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "istio-ca-root-cert", "namespace": ns},
                        "data": {"root-cert.pem": pem}}),
                ),
                _ => not_found(),
            }
        }
        ("DELETE", ["api", "v1", "namespaces", _, "configmaps", _]) => not_found(),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            let selector = q
                .iter()
                .find(|(k, _)| k == "labelSelector")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            reply(200, pods(&s, ns, &selector))
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", _, "log"])
            if q.iter()
                .any(|(k, v)| k == "container" && v.starts_with("meshtrust-probe")) =>
        {
            let argv = [super::probe::PROBE_PATH.to_owned()];
            text(exec_answer(&s, ns, "meshtrust-probe", &argv).0)
        }
        (
            "PATCH",
            [
                "api",
                "v1",
                "namespaces",
                _,
                "pods",
                pod,
                "ephemeralcontainers",
            ],
        ) => {
            let name = body["spec"]["ephemeralContainers"][0]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            s.ephemeral.insert((*pod).to_owned(), name);
            reply(
                200,
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}}),
            )
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", pod]) => match s.ephemeral.get(*pod) {
            Some(name) => reply(
                200,
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": ns},
                    "status": {"ephemeralContainerStatuses": [{"name": name, "ready": false,
                        "restartCount": 0, "image": "probe", "imageID": "",
                        "state": {"terminated": {"exitCode": 0}}}]}}),
            ),
            None => not_found(),
        },
        ("GET", ["api", "v1", "namespaces", _, "pods", _, "log"]) => {
            let log = match s.refusal() {
                Some(reason) => format!("2026-12-01T05:00:00Z\terror\t{reason}\n"),
                None if s.cacerts.is_some() => {
                    format!("2026-12-01T05:00:00Z\tinfo\t{}\n", istio::PLUGGED_IN_LINE)
                }
                None => format!("2026-12-01T05:00:00Z\tinfo\t{}\n", istio::SELF_SIGNED_LINE),
            };
            text(log)
        }
        ("PATCH", ["api", "v1", "namespaces", ns, _, name]) => {
            let mut object = body.clone();
            object["metadata"]["name"] = json!(name);
            object["metadata"]["namespace"] = json!(ns);
            reply(200, object)
        }
        (
            _,
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                ns,
                "deployments",
                rest @ ..,
            ],
        ) => deployment(&mut s, &method, ns, rest, &body),
        ("PATCH", ["apis", "security.istio.io", "v1", "namespaces", ns, _, name]) => {
            if body["spec"]["mtls"]["mode"] == "STRICT" {
                s.strict.insert((*ns).to_owned());
            } else {
                s.strict.remove(*ns);
            }
            let mut object = body.clone();
            object["metadata"]["name"] = json!(name);
            reply(200, object)
        }
        _ => {
            s.record(format!("UNHANDLED {method} {path}"));
            not_found()
        }
    }
}

fn namespace(s: &mut State, method: &str, ns: &str, body: &Value) -> Reply {
    let object = |labels: &Value| {
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels}})
    };
    match method {
        "GET" => match s.namespaces.get(ns) {
            Some(labels) => reply(200, object(labels)),
            None => not_found(),
        },
        "PATCH" => {
            let labels = s.namespaces.entry(ns.to_owned()).or_insert(json!({}));
            if let Some(new) = body["metadata"]["labels"].as_object() {
                for (k, v) in new {
                    match v {
                        Value::Null => {
                            labels.as_object_mut().map(|m| m.remove(k));
                        }
                        v => labels[k] = v.clone(),
                    }
                }
            }
            let labels = labels.clone();
            reply(200, object(&labels))
        }
        "DELETE" => match s.namespaces.remove(ns) {
            Some(labels) => {
                s.deployments.retain(|(n, _)| n != ns);
                s.strict.remove(ns);
                if ns == super::plugin::ISTIO_NAMESPACE {
                    s.cacerts = None;
                    s.sync_refusal();
                }
                reply(200, object(&labels))
            }
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn secret(s: &mut State, method: &str, ns: &str, name: &str, body: &Value) -> Reply {
    let is_cacerts = ns == super::plugin::ISTIO_NAMESPACE && name == "cacerts";
    match method {
        "PATCH" | "PUT" => {
            if is_cacerts {
                let decode = |v: &Value| {
                    base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default()
                };
                let data = body["data"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), decode(v))).collect())
                    .unwrap_or_default();
                s.cacerts = Some(data);
                s.sync_refusal();
            }
            reply(200, body.clone())
        }
        "DELETE" if is_cacerts => {
            s.cacerts = None;
            s.sync_refusal();
            reply(
                200,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
            )
        }
        _ => not_found(),
    }
}

fn deployment(s: &mut State, method: &str, ns: &str, rest: &[&str], body: &Value) -> Reply {
    let _ = body;
    match (method, rest) {
        ("GET", []) => {
            let items: Vec<Value> = s
                .deployments
                .iter()
                .filter(|(n, _)| n == ns)
                .map(|(n, d)| ready_deployment(n, d))
                .collect();
            reply(
                200,
                json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {},
                    "items": items}),
            )
        }
        ("GET", [name]) if ns == super::plugin::ISTIO_NAMESPACE => {
            let running = s
                .revisions()
                .iter()
                .any(|r| istio::istiod_deployment(r) == *name);
            match (running, s.refusal()) {
                (true, None) => reply(200, ready_deployment(ns, name)),
                (true, Some(_)) => {
                    let mut d = ready_deployment(ns, name);
                    d["status"]["readyReplicas"] = json!(0);
                    reply(200, d)
                }
                (false, _) => not_found(),
            }
        }
        ("GET", [name]) if s.deployments.contains(&(ns.to_owned(), (*name).to_owned())) => {
            reply(200, ready_deployment(ns, name))
        }
        ("PATCH", [name]) => {
            s.deployments.insert((ns.to_owned(), (*name).to_owned()));
            reply(200, ready_deployment(ns, name))
        }
        _ => not_found(),
    }
}

fn pods(s: &State, ns: &str, selector: &str) -> Value {
    let mut items = Vec::new();
    let labels: BTreeMap<&str, &str> = selector
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    if ns == super::plugin::ISTIO_NAMESPACE && labels.get("app") == Some(&"istiod") {
        let crashed = s.refusal().is_some();
        for rev in s.revisions() {
            if labels.get("istio.io/rev").is_some_and(|r| *r != rev) {
                continue;
            }
            items.push(pod(
                ns,
                &format!("{}-1", istio::istiod_deployment(&rev)),
                json!({"app": "istiod", "istio.io/rev": rev}),
                "10.11.0.2",
                crashed,
            ));
        }
    } else if let Some(app) = labels.get("app")
        && s.deployments.contains(&(ns.to_owned(), (*app).to_owned()))
    {
        let ip = if *app == "httpbin" {
            HTTPBIN_IP
        } else {
            SLEEP_IP
        };
        // Injected by the revision the namespace names (as a restart after a move sees it).
        let ns_labels = s.namespaces.get(ns).cloned().unwrap_or(json!({}));
        let rev = match (
            ns_labels["istio-injection"].as_str(),
            ns_labels["istio.io/rev"].as_str(),
        ) {
            (Some("enabled"), _) | (None, None) => "default",
            (_, Some(rev)) => rev,
            (Some(_), None) => "default",
        };
        items.push(pod(
            ns,
            &format!("{app}-1"),
            json!({"app": app, "istio.io/rev": rev}),
            ip,
            false,
        ));
    }
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
}

/// The channel protocol's reply to one exec: what the command prints and how it exits.
fn exec_answer(s: &State, ns: &str, container: &str, argv: &[String]) -> (String, String, i32) {
    match argv.first().map(String::as_str) {
        Some("curl") => {
            let url = argv.last().cloned().unwrap_or_default();
            let plaintext = container == super::probe::PROXY_CONTAINER;
            if plaintext && s.strict.contains(ns) {
                return (
                    String::new(),
                    "curl: (56) Recv failure: Connection reset by peer".into(),
                    56,
                );
            }
            let body = json!({"headers": {"X-Forwarded-Client-Cert": [format!(
                "By=spiffe://cluster.local/ns/{ns}/sa/httpbin;Hash=0;Subject=\"\";URI=spiffe://cluster.local/ns/{ns}/sa/sleep"
            )]}, "url": url});
            (format!("{body}\n200"), String::new(), 0)
        }
        Some(p) if p == super::probe::PROBE_PATH => {
            let chain: Vec<String> = s
                .cacerts
                .as_ref()
                .and_then(|d| d.get("cert-chain.pem"))
                .map(|pem| {
                    String::from_utf8_lossy(pem)
                        .split_inclusive("-----END CERTIFICATE-----\n")
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let out = json!({"peer": format!("{HTTPBIN_IP}:8080"), "chain": chain,
                "tls_version": "TLSv1.3", "alpn": "istio", "client_cert_requested": true,
                "client_auth": null, "error_after_chain": null});
            (out.to_string(), String::new(), 0)
        }
        _ => (String::new(), String::new(), 0),
    }
}

/// Exec over WebSocket (`v4.channel.k8s.io`): stdin on channel 0 (read up to what `head -c N`
/// asks for), stdout 1, stderr 2, the status on 3.
fn exec(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
    path: &str,
    q: &[(String, String)],
) -> Reply {
    let argv: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let container = q
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let ns = path.split('/').nth(4).unwrap_or_default().to_owned();
    let (stdout, stderr, code) = {
        let s = state.lock().expect("the fake cluster's state");
        s.record(format!("EXEC {container}: {}", argv.join(" ")));
        exec_answer(&s, &ns, &container, &argv)
    };
    let stdin_len: usize = argv
        .iter()
        .find_map(|a| a.strip_prefix("head -c "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let key = req
        .headers()
        .get("sec-websocket-key")
        .cloned()
        .unwrap_or_else(|| hyper::header::HeaderValue::from_static(""));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        let mut got = 0;
        while got < stdin_len {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&0) => got += b.len() - 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        let frame = |channel: u8, bytes: &[u8]| {
            let mut v = vec![channel];
            v.extend_from_slice(bytes);
            Message::Binary(v.into())
        };
        let status = if code == 0 {
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
        };
        for (channel, bytes) in [
            (1, stdout.into_bytes()),
            (2, stderr.into_bytes()),
            (3, status.to_string().into_bytes()),
        ] {
            if !bytes.is_empty() && ws.send(frame(channel, &bytes)).await.is_err() {
                return;
            }
        }
        let _ = ws.close(None).await;
    });
    Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", "v4.channel.k8s.io")
        .body(Full::new(Bytes::new()))
        .expect("a response")
}
