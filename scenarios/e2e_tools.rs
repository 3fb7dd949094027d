//! The e2e-tools tier (`--features e2e-tools`; `.ci/run` runs it, as does `just e2e-tools-test`):
//! the kind target's command lines against the REAL kind and istioctl, which `just e2e-tools`
//! builds from the Go module proxy into `target/e2e-tools/` (kind at `KIND_VERSION`, istioctl
//! from the Istio commit the oracle pins). No docker, no cluster: every flag of every command
//! the plan names is looked up in its subcommand's `--help`, and `istioctl manifest generate`
//! renders the install offline with the harness's own values, so the istiod it would install
//! can be read. A missing binary FAILS, naming `just e2e-tools`; nothing here skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust::kube::cluster::ClusterRef;
use meshtrust::kube::istio::{self, InstallSpec};
use meshtrust::kube::process::Cmd;
use meshtrust::kube::target::{InstallStep, install_spec};
use meshtrust::kube::{KindRun, PlannedClusters, ProbeDelivery, planned_commands};
use meshtrust::scenario::target::{CANARY_REVISION, DEFAULT_REVISION};
use serde_norway::Value;

/// The istioctl `just e2e-tools` builds: Istio release-1.31 at the oracle's commit.
const ISTIOCTL: &str = "istioctl-1.31";
/// That commit, as the Go module proxy names it (oracle/e2e-tools/istioctl-1.31/go.mod).
const ISTIO_MODULE: &str = "istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad";

/// A real tool from `target/e2e-tools/` (or `MESHTRUST_E2E_TOOLS`), or a failure that says how
/// to build it.
pub(crate) fn real(name: &str) -> PathBuf {
    let dir = std::env::var_os("MESHTRUST_E2E_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-tools"));
    let path = dir.join(name);
    let runs = Command::new(&path)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        runs,
        "`{}` is missing or does not run (hint: build the real tools (kind, istioctl, etcd, kube-apiserver, pilot-discovery) with `just e2e-tools`)",
        path.display()
    );
    path
}

/// The binary that plays `cmd`'s program.
fn real_for(cmd: &Cmd) -> Option<PathBuf> {
    match cmd.program_name().as_str() {
        "kind" => Some(real("kind")),
        "istioctl" => Some(real(ISTIOCTL)),
        _ => None,
    }
}

/// The leading words of a command line that name its subcommand (`create cluster`), before
/// the first flag or positional value.
fn subcommand(args: &[String]) -> Vec<String> {
    args.iter()
        .take_while(|a| {
            a.starts_with(|c: char| c.is_ascii_lowercase())
                && a.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .cloned()
        .collect()
}

/// `tool <words> --help`, which must succeed.
fn help(tool: &Path, words: &[String]) -> String {
    let out = Command::new(tool)
        .args(words)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{} {} --help` failed:\n{text}",
        tool.display(),
        words.join(" ")
    );
    text
}

/// The flags of `args` that `help` does not list.
fn flags_missing(help: &str, args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| a.starts_with('-'))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .filter(|flag| {
            ![" ", ",", "=", "\n"]
                .iter()
                .any(|end| help.contains(&format!("{flag}{end}")))
        })
        .collect()
}

/// Whether the help is the subcommand's own (cobra prints the parent's help for a subcommand
/// it does not know): its usage line names every word.
fn is_help_of(help: &str, root: &str, words: &[String]) -> bool {
    let usage = format!("{root} {}", words.join(" "));
    help.lines()
        .skip_while(|l| !l.starts_with("Usage:"))
        .nth(1)
        .is_some_and(|l| l.trim_start().starts_with(usage.trim_end()))
}

/// Every plan the kind target can make: one cluster with every single-cluster scenario; two
/// clusters with every scenario (the upgrade, the canary upgrade) and the probe as an image
/// (distroless proxies).
fn plans() -> Vec<KindRun> {
    let single = KindRun::single("meshtrust");
    let mut two = KindRun::single("mt");
    two.clusters.push("cluster2".into());
    two.istioctl = vec![
        "/opt/istio-1.31.4/bin/istioctl".into(),
        "/opt/istio-1.32.0/bin/istioctl".into(),
    ];
    two.delivery = ProbeDelivery::Image;
    two.scenarios = meshtrust::scenario::Scenario::ALL.to_vec();
    vec![single, two]
}

#[test]
fn every_kind_and_istioctl_command_of_the_plan_uses_flags_the_real_tools_have() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for run in plans() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cmds = rt
            .block_on(planned_commands(&run, &PlannedClusters::Created))
            .unwrap_or_else(|e| panic!("{e}"));
        for cmd in cmds {
            let Some(tool) = real_for(&cmd) else {
                // docker: no engine here, and its CLI is not built by `just e2e-tools`.
                continue;
            };
            let words = subcommand(&cmd.args);
            let text = help(&tool, &words);
            let root = cmd.program_name();
            if !is_help_of(&text, &root, &words) {
                problems.push(format!("`{root} {}` is not a subcommand", words.join(" ")));
            }
            for flag in flags_missing(&text, &cmd.args) {
                problems.push(format!(
                    "`{}`: `{root} {}` has no flag `{flag}`",
                    cmd.display_short(),
                    words.join(" ")
                ));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // create, delete, get clusters, export logs, load, version; install, upgrade, uninstall,
    // create-remote-secret, version; the canary's install --revision and uninstall
    // --revision: a plan that lost its commands is not a pass.
    assert!(checked >= 17, "only {checked} commands checked");
}

#[test]
fn a_flag_or_subcommand_the_real_tool_lacks_is_reported() {
    let kind = real("kind");
    let words = vec!["create".to_owned(), "cluster".to_owned()];
    let text = help(&kind, &words);
    assert!(flags_missing(&text, &["--name".into(), "x".into()]).is_empty());
    assert_eq!(
        flags_missing(&text, &["--name".into(), "--nodes-count".into()]),
        ["--nodes-count"]
    );
    assert!(is_help_of(&text, "kind", &words));
    let parent = help(&kind, &["create".to_owned()]);
    assert!(!is_help_of(&parent, "kind", &words));
}

#[test]
fn the_real_tools_are_the_pinned_releases() {
    let out = Command::new(real("kind")).arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("kind {} ", meshtrust::kube::tools::KIND_VERSION)),
        "{text}"
    );
    // `--remote=false`, as preflight runs it: no cluster needed.
    let out = Command::new(real(ISTIOCTL))
        .args(["version", "--remote=false"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1.31.0-rc.0+eed52ebb66ad"),
        "istioctl is not the oracle's commit: {text}"
    );
}

/// The install's values, as `KindTarget::install_with` makes them for the first cluster.
fn spec(multi_root: bool, trust_domain: Option<&str>) -> InstallSpec {
    InstallSpec {
        trust_domain: trust_domain.map(str::to_owned),
        multi_root,
        ..step_spec(InstallStep::Install)
    }
}

/// The install of `step` on the first cluster, exactly as the kind target makes it.
fn step_spec(step: InstallStep<'_>) -> InstallSpec {
    let run = KindRun::single("mt");
    let r = ClusterRef {
        cluster: "cluster1".into(),
        kubeconfig: None,
        context: None,
    };
    install_spec(&run, &r, 0, None, step)
}

/// `istioctl manifest generate` with exactly the install's values, as YAML documents.
fn generate(spec: &InstallSpec) -> Vec<Value> {
    let cmd = istio::manifest_generate_cmd(&real(ISTIOCTL), spec);
    let out = Command::new(&cmd.program).args(&cmd.args).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("the generated manifest has no {kind} `{name}`"))
}

fn discovery(istiod: &Value) -> &Value {
    istiod["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .and_then(|c| c.iter().find(|c| c["name"].as_str() == Some("discovery")))
        .expect("istiod has a `discovery` container")
}

fn env(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

#[test]
fn the_install_renders_an_istiod_that_mounts_cacerts_in_cluster1_of_mesh1_on_network1() {
    let docs = generate(&spec(false, None));
    let istiod = object(&docs, "Deployment", "istiod");
    assert_eq!(
        istiod["metadata"]["namespace"].as_str(),
        Some("istio-system")
    );
    // The cacerts Secret, mounted where istiod looks for a plugged CA.
    let volumes = istiod["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap();
    let cacerts = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some("cacerts"))
        .expect("istiod has a `cacerts` volume");
    assert_eq!(cacerts["secret"]["secretName"].as_str(), Some("cacerts"));
    assert_eq!(cacerts["secret"]["optional"].as_bool(), Some(true));
    let c = discovery(istiod);
    let mounted = c["volumeMounts"].as_sequence().unwrap().iter().any(|m| {
        m["name"].as_str() == Some("cacerts") && m["mountPath"].as_str() == Some("/etc/cacerts")
    });
    assert!(
        mounted,
        "cacerts is not mounted at /etc/cacerts: {:?}",
        c["volumeMounts"]
    );
    assert_eq!(env(c, "CLUSTER_ID").as_deref(), Some("cluster1"));
    // Multi-root is off unless asked for (the negative twin is the next test).
    assert_eq!(env(c, "ISTIO_MULTIROOT_MESH"), None);
    // Mesh ID: in the mesh config every proxy gets; network and cluster: in the injector's
    // values, from which each injected sidecar gets ISTIO_META_NETWORK and its cluster.
    let mesh = object(&docs, "ConfigMap", "istio")["data"]["mesh"]
        .as_str()
        .unwrap();
    assert!(mesh.contains("meshId: mesh1"), "{mesh}");
    assert!(!mesh.contains("trustDomain: example.org"), "{mesh}");
    let values = object(&docs, "ConfigMap", "istio-sidecar-injector")["data"]["values"]
        .as_str()
        .unwrap();
    let values: serde_json::Value = serde_json::from_str(values).unwrap();
    assert_eq!(values["global"]["meshID"], "mesh1");
    assert_eq!(values["global"]["network"], "network1");
    assert_eq!(values["global"]["multiCluster"]["clusterName"], "cluster1");
}

#[test]
fn multi_root_and_a_trust_domain_reach_istiod_when_the_install_asks_for_them() {
    let docs = generate(&spec(true, Some("example.org")));
    let c = discovery(object(&docs, "Deployment", "istiod"));
    assert_eq!(env(c, "ISTIO_MULTIROOT_MESH").as_deref(), Some("true"));
    let mesh = object(&docs, "ConfigMap", "istio")["data"]["mesh"]
        .as_str()
        .unwrap();
    assert!(mesh.contains("trustDomain: example.org"), "{mesh}");
}

/// The revisions of the sidecar injector's webhooks: each `istio.io/rev In [..]` value of a
/// namespaceSelector or objectSelector, by webhook configuration name.
fn injected_revisions(docs: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("MutatingWebhookConfiguration"))
    {
        let name = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for hook in d["webhooks"].as_sequence().into_iter().flatten() {
            for selector in ["namespaceSelector", "objectSelector"] {
                for e in hook[selector]["matchExpressions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    if e["key"].as_str() == Some("istio.io/rev")
                        && e["operator"].as_str() == Some("In")
                    {
                        for v in e["values"].as_sequence().into_iter().flatten() {
                            out.push((name.clone(), v.as_str().unwrap_or_default().to_owned()));
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_canary_revision_renders_its_own_istiod_that_mounts_the_same_cacerts() {
    let docs = generate(&step_spec(InstallStep::Revision(CANARY_REVISION)));
    let name = istio::istiod_deployment(CANARY_REVISION);
    assert_eq!(name, "istiod-canary");
    let istiod = object(&docs, "Deployment", &name);
    // The pods the kind target selects for this revision's log and refusals.
    let labels = &istiod["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app"].as_str(), Some("istiod"));
    assert_eq!(labels["istio.io/rev"].as_str(), Some(CANARY_REVISION));
    assert_eq!(
        istio::istiod_selector(CANARY_REVISION),
        format!("app=istiod,istio.io/rev={CANARY_REVISION}")
    );
    // The same plugged CA: the canary reads Secret cacerts, like the default revision.
    let cacerts = istiod["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some("cacerts"))
        .expect("istiod-canary has a `cacerts` volume");
    assert_eq!(cacerts["secret"]["secretName"].as_str(), Some("cacerts"));
    // istiod only (profile minimal): no second ingress gateway fights the first.
    assert!(
        !docs.iter().any(|d| d["kind"].as_str() == Some("Deployment")
            && d["metadata"]["name"].as_str() == Some("istio-ingressgateway")),
        "the canary install renders a gateway"
    );
    // A namespace labelled istio.io/rev=canary is injected by the canary's webhook.
    let revisions = injected_revisions(&docs);
    assert!(
        revisions.iter().any(|(_, r)| r == CANARY_REVISION),
        "no webhook selects istio.io/rev=canary: {revisions:?}"
    );
    assert!(
        !revisions.iter().any(|(_, r)| r == DEFAULT_REVISION),
        "the canary's webhooks select the default revision: {revisions:?}"
    );
}

#[test]
fn the_default_install_is_revision_default_and_injects_only_its_own_namespaces() {
    let docs = generate(&step_spec(InstallStep::Install));
    let name = istio::istiod_deployment(DEFAULT_REVISION);
    assert_eq!(name, "istiod");
    let istiod = object(&docs, "Deployment", &name);
    let labels = &istiod["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["istio.io/rev"].as_str(), Some(DEFAULT_REVISION));
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"].as_str() == Some("istiod-canary")),
        "the default install renders a canary"
    );
    let revisions = injected_revisions(&docs);
    assert!(
        revisions.iter().any(|(_, r)| r == DEFAULT_REVISION),
        "no webhook selects istio.io/rev=default: {revisions:?}"
    );
    assert!(
        !revisions.iter().any(|(_, r)| r == CANARY_REVISION),
        "the default install's webhooks select the canary: {revisions:?}"
    );
}

/// Istio's samples in the module cache, at the commit the fixtures follow.
fn sample(path: &str) -> Vec<Value> {
    let out = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .expect("the e2e-tools tier needs Go (`just e2e-tools` built the tools with it)");
    let cache = String::from_utf8(out.stdout).unwrap();
    let file = Path::new(cache.trim()).join(ISTIO_MODULE).join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "cannot read `{}`: {e} (hint: `just e2e-tools` downloads it)",
            file.display()
        )
    });
    docs(&text)
}

fn docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn first_container(docs: &[Value]) -> (Value, Value) {
    let d = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .expect("a Deployment");
    let spec = &d["spec"]["template"]["spec"];
    (spec["containers"][0].clone(), spec["volumes"].clone())
}

#[test]
fn the_workload_fixtures_follow_istios_current_samples() {
    let (fixture, fixture_volumes) = first_container(&docs(include_str!("../fixtures/sleep.yaml")));
    let (curl, curl_volumes) = first_container(&sample("samples/curl/curl.yaml"));
    for field in [
        "image",
        "command",
        "volumeMounts",
        "securityContext",
        "ports",
    ] {
        assert_eq!(
            fixture[field], curl[field],
            "sleep.yaml's `{field}` is not samples/curl's"
        );
    }
    // The sample's optional TLS secret, under the doc's name.
    assert_eq!(
        fixture_volumes[0]["secret"]["secretName"].as_str(),
        Some("sleep-secret")
    );
    assert_eq!(fixture_volumes[0]["name"], curl_volumes[0]["name"]);
    let (fixture, _) = first_container(&docs(include_str!("../fixtures/httpbin.yaml")));
    let (httpbin, _) = first_container(&sample("samples/httpbin/httpbin.yaml"));
    for field in ["image", "command", "args", "ports", "securityContext"] {
        assert_eq!(
            fixture[field], httpbin[field],
            "httpbin.yaml's `{field}` is not the sample's"
        );
    }
}
