//! The plan against what runs: a whole kind run (`KindClusters::start`, then
//! [`run_scenarios`](super::run_scenarios), as `meshtrust run --target kind` does) against
//! fake tools and fake API servers that record every command, every change and every exec,
//! compared step for step with the plan of the same run.

use super::fake::{self, FakeCluster, HTTPBIN_IP, Log};
use super::plan::{
    DOCKER_FOUND, KIND_FOUND, KUBECTL_FOUND, Plan, PlanStep, PlannedClusters, REGISTRY_DOWN,
    REGISTRY_UP, display_argv, plan_run,
};
use super::process::{self, Cmd};
use super::{KindClusters, KindRun, ProbeDelivery, ToolSearch, kind};
use crate::pki::KeyAlg;
use crate::scenario::{RunCerts, RunOptions, Scenario};

/// What the plan says the run does to its clusters: each change (`PATCH`/`POST`/`DELETE`
/// with kind and name) and each exec, as `<cluster>: <what>`.
fn planned_changes(plan: &Plan) -> Vec<String> {
    plan.steps()
        .iter()
        .filter_map(|step| match step {
            PlanStep::Apply {
                cluster, object, ..
            } => {
                let verb = if object.starts_with("TokenRequest ") {
                    "POST"
                } else {
                    "PATCH"
                };
                // The ephemeral container's name carries meshtrust's pid.
                let object = object.split(" meshtrust-probe-").next().unwrap_or(object);
                Some(format!("{cluster}: {verb} {object}"))
            }
            PlanStep::Delete {
                cluster, object, ..
            } => Some(format!("{cluster}: DELETE {object}")),
            PlanStep::Exec {
                cluster,
                target,
                argv,
                ..
            } => {
                let container = target.rsplit('/').next().unwrap_or_default();
                Some(format!("{cluster}: EXEC {container}: {argv}"))
            }
            _ => None,
        })
        .collect()
}

/// The fake clusters' log in the plan's words: a request path becomes its object's kind and
/// name; an exec's pod IP, probe size and curl format as the plan shows them.
fn recorded_changes(log: &[String]) -> Vec<String> {
    log.iter()
        .map(|line| {
            let (cluster, what) = line.split_once(": ").unwrap_or(("?", line));
            let (verb, rest) = what.split_once(' ').unwrap_or((what, ""));
            if verb == "EXEC" {
                let (container, argv) = rest.split_once(": ").unwrap_or((rest, ""));
                let argv = argv.replace(HTTPBIN_IP, "<httpbin pod IP>");
                let argv = match argv.split_once("head -c ") {
                    Some((before, after)) => {
                        let tail = after.split_once(' ').map_or("", |(_, t)| t);
                        format!("{before}head -c <size> {tail}")
                    }
                    None => argv,
                };
                let argv = argv.replace(
                    "-w \n%{http_code}",
                    &display_argv(&["-w".into(), "\n%{http_code}".into()]),
                );
                return format!("{cluster}: EXEC {container}: {argv}");
            }
            format!("{cluster}: {verb} {}", object_of(rest))
        })
        .collect()
}

/// `/api/v1/namespaces/foo/services/httpbin` -> `Service foo/httpbin`.
fn object_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return format!("? {path}"),
    };
    let kind = |plural: &str| match plural {
        "namespaces" => "Namespace",
        "secrets" => "Secret",
        "configmaps" => "ConfigMap",
        "serviceaccounts" => "ServiceAccount",
        "services" => "Service",
        "deployments" => "Deployment",
        "peerauthentications" => "PeerAuthentication",
        "pods" => "Pod",
        _ => "?",
    };
    match rest {
        ["namespaces", ns] => format!("Namespace {ns}"),
        ["namespaces", ns, "serviceaccounts", sa, "token"] => format!("TokenRequest {ns}/{sa}"),
        ["namespaces", ns, "pods", pod, "ephemeralcontainers"] => {
            let app = pod.rsplit_once('-').map_or(*pod, |(app, _)| app);
            format!("Pod {ns}/<{app} pod> ephemeralContainers")
        }
        ["namespaces", ns, plural, name, ..] => format!("{} {ns}/{name}", kind(plural)),
        _ => format!("? {path}"),
    }
}

/// What a whole run did and what its plan says, side by side.
struct Compared {
    planned_commands: Vec<String>,
    recorded_commands: Vec<String>,
    planned_changes: Vec<String>,
    recorded_changes: Vec<String>,
    /// The scenarios that failed on the fake (it serves no leaf certificates).
    failed: Vec<String>,
    /// `meshtrust check`'s message about each `bad-*` bundle, by cluster.
    findings: Vec<(String, String)>,
}

/// Runs `scenarios` on fake clusters as `meshtrust run --target kind` does, the probe
/// delivered by `delivery`; plans `planned`.
async fn run_and_plan(
    scenarios: &[Scenario],
    planned: &[Scenario],
    delivery: ProbeDelivery,
) -> Compared {
    run_and_plan_on(scenarios, planned, delivery, false).await
}

/// [`run_and_plan`], on clusters the run makes (kind) or on `existing` ones (`--target
/// kubeconfig`: two contexts of one kubeconfig file).
async fn run_and_plan_on(
    scenarios: &[Scenario],
    planned: &[Scenario],
    delivery: ProbeDelivery,
    existing: bool,
) -> Compared {
    let tools = tempfile::tempdir().unwrap();
    let state = fake::write_tools(tools.path());
    let probe = tools.path().join("probe");
    std::fs::write(&probe, b"\x7fELF not really").unwrap();
    // A stamped prefix is kept as it is, so the fakes know the names beforehand.
    let prefix = "mt-1796000000-7";
    let clusters = super::target::clusters_for(scenarios);
    let log: Log = Log::default();
    let mut fakes = Vec::new();
    let mut kubeconfig = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    let mut contexts = Vec::new();
    for c in &clusters {
        let context = match existing {
            true => format!("ctx-{c}"),
            false => kind::context_name(&kind::cluster_name(prefix, c)),
        };
        let fake = FakeCluster::start(c, &context, &state, log.clone()).await;
        std::fs::write(state.join(format!("{c}.server")), &fake.url).unwrap();
        kubeconfig.push_str(&format!(
            "- name: {c}\n  cluster:\n    server: {}\n",
            fake.url
        ));
        contexts.push((context, c.clone()));
        fakes.push(fake);
    }
    kubeconfig.push_str("users:\n- name: u\n  user:\n    token: t\ncontexts:\n");
    for (context, c) in &contexts {
        kubeconfig.push_str(&format!(
            "- name: {context}\n  context:\n    cluster: {c}\n    user: u\n"
        ));
    }
    let kubeconfig_path = tools.path().join("existing.kubeconfig");
    std::fs::write(&kubeconfig_path, kubeconfig).unwrap();
    let mut run = KindRun::single(prefix);
    run.clusters = clusters;
    run.scenarios = scenarios.to_vec();
    run.artifacts = tools.path().join("artifacts");
    run.probe_binary = probe;
    run.delivery = delivery;
    let search = ToolSearch {
        path: Some(tools.path().as_os_str().to_owned()),
        istioctl_env: None,
        istioctl: Vec::new(),
    };
    let refs = super::cluster::from_contexts(
        Some(&kubeconfig_path),
        &contexts.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
    );
    let started = match existing {
        true => KindClusters::attach(run, &search, refs.clone()).await,
        false => KindClusters::start(run, &search).await,
    }
    .unwrap_or_else(|e| panic!("{e}"));
    // The plan of the run as it actually is (its work dir, tool paths and versions).
    let mut as_run = started.run.clone();
    let opts = RunOptions {
        scenarios: scenarios.to_vec(),
        key: KeyAlg::P256,
        ..RunOptions::default()
    };
    let silent = |_: &str, _: &str| {};
    let (output, _cleanup) = super::run_scenarios(started, &opts, &silent).await;
    let report = output.unwrap_or_else(|e| panic!("{e}")).report;
    let findings: Vec<(String, String)> = report
        .scenarios
        .iter()
        .flat_map(|s| &s.observations)
        .filter_map(|o| match &o.observed {
            crate::report::Observed::Finding { message, .. } => {
                Some((o.subject.clone(), message.clone()))
            }
            _ => None,
        })
        .collect();
    // The fake serves no leaf certificates: scenarios may fail their verdicts, and a failure
    // adds its evidence and the cluster logs, as the plan says it would.
    let failed: Vec<&str> = report
        .scenarios
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.name.as_str())
        .collect();
    for s in &report.scenarios {
        let failed_steps: Vec<&String> = s
            .reasons
            .iter()
            .filter(|r| r.contains("could not carry out a step"))
            .collect();
        assert!(failed_steps.is_empty(), "{}: {failed_steps:?}", s.name);
    }
    as_run.scenarios = planned.to_vec();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = RunCerts::generate(certs_dir.path(), KeyAlg::P256).unwrap();
    let clusters = match existing {
        true => PlannedClusters::Attached(refs),
        false => PlannedClusters::Created,
    };
    let plan = plan_run(&as_run, &clusters, &certs)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let show = |cmds: Vec<Cmd>| -> Vec<String> { cmds.iter().map(Cmd::display_short).collect() };
    let recorded_commands = show(process::recorded_under(tools.path()));
    // kubectl is among the fakes; the registry (testcontainers) runs only where a docker
    // engine does: which route the probe image took is read off the run.
    let mut conditions = vec![KUBECTL_FOUND];
    if existing {
        // docker and kind are among the fakes: preflight asks them, needed or not.
        conditions.extend([DOCKER_FOUND, KIND_FOUND]);
    }
    if delivery == ProbeDelivery::Image {
        conditions.push(
            match recorded_commands.iter().any(|c| c.contains("docker push")) {
                true => REGISTRY_UP,
                false => REGISTRY_DOWN,
            },
        );
    }
    let recorded_changes = recorded_changes(&log.lock().unwrap());

    drop(fakes);
    Compared {
        planned_commands: in_run_order(show(plan.commands_of_run(&failed, &conditions))),
        recorded_commands: in_run_order(recorded_commands),
        planned_changes: planned_changes(&plan),
        recorded_changes,
        failed: failed.iter().map(|s| (*s).to_owned()).collect(),
        findings,
    }
}

/// Preflight asks its tools at once and the clusters are created at once: those are compared
/// as sets (sorted in place); everything else in order.
fn in_run_order(mut cmds: Vec<String>) -> Vec<String> {
    let concurrent = |c: &String| {
        c.contains(" version") || c.starts_with("docker info") || c.contains(" create cluster ")
    };
    let at: Vec<usize> = (0..cmds.len()).filter(|&i| concurrent(&cmds[i])).collect();
    let mut sorted: Vec<String> = at.iter().map(|&i| cmds[i].clone()).collect();
    sorted.sort();
    for (i, line) in at.into_iter().zip(sorted) {
        cmds[i] = line;
    }
    cmds
}

fn diff(what: &str, recorded: &[String], planned: &[String]) -> Option<String> {
    if recorded == planned {
        return None;
    }
    let first = recorded
        .iter()
        .zip(planned)
        .position(|(r, p)| r != p)
        .unwrap_or(recorded.len().min(planned.len()));
    Some(format!(
        "{what} differ from step {first}:\nrecorded:\n  {}\nplanned:\n  {}",
        recorded[first..].join("\n  "),
        planned[first..].join("\n  ")
    ))
}

fn differences(c: &Compared) -> Vec<String> {
    [
        diff("commands", &c.recorded_commands, &c.planned_commands),
        diff("changes", &c.recorded_changes, &c.planned_changes),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every scenario but `intermediate-rotation` (its certificates come through a port-forward,
/// which the fake API server does not serve).
fn scenarios() -> Vec<Scenario> {
    Scenario::ALL
        .into_iter()
        .filter(|s| *s != Scenario::IntermediateRotation)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_kind_run_does_exactly_what_its_plan_says() {
    let all = scenarios();
    let c = run_and_plan(&all, &all, ProbeDelivery::Exec).await;
    let problems = differences(&c);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // Failed scenarios keep evidence and the run exports kind's logs: those steps were
    // compared too.
    assert!(
        !c.failed.is_empty(),
        "nothing failed: the evidence steps went untested"
    );
    assert!(
        c.recorded_commands
            .iter()
            .any(|l| l.contains("kind export logs"))
    );
    assert!(c.recorded_commands.iter().any(|l| l.contains("kubectl ")));
    // check predicted istiod's refusals by the release of the istioctl that installed (the
    // fake's 1.31.2), not the newest.
    let incomplete = c
        .findings
        .iter()
        .find(|(cluster, _)| cluster == "bad-incomplete")
        .map(|(_, m)| m.as_str())
        .unwrap_or_default();
    assert!(
        incomplete.contains("istiod 1.31.2 refuses to start"),
        "{:?}",
        c.findings
    );
    // A comparison of nothing is not a pass: every kind of step was there.
    let joined = c.recorded_changes.join("\n");
    for needle in [
        "cluster1: PATCH Secret istio-system/cacerts",
        "cluster1: DELETE Namespace foo",
        "cluster1: EXEC istio-proxy: /etc/istio/proxy/meshtrust-probe",
        "cluster1: EXEC istio-proxy: curl",
        "cluster2: PATCH Secret istio-system/istio-remote-secret-cluster1",
        "cluster1: PATCH Namespace foo",
    ] {
        assert!(joined.contains(needle), "no `{needle}` in\n{joined}");
    }
    let cmds = c.recorded_commands.join("\n");
    for needle in [
        "kind create cluster",
        "istioctl install --revision canary",
        "istioctl uninstall --revision default",
        "istioctl create-remote-secret",
        "docker exec mt-1796000000-7-cluster1-control-plane ip route replace",
        "kind delete cluster",
    ] {
        assert!(cmds.contains(needle), "no `{needle}` in\n{cmds}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_that_is_not_what_ran_is_told_apart() {
    // The twin: the run takes STRICT and the default CA; the plan leaves the default CA out.
    let ran = [Scenario::DefaultCa, Scenario::StrictRejectsPlaintext];
    let c = run_and_plan(
        &ran,
        &[Scenario::StrictRejectsPlaintext],
        ProbeDelivery::Exec,
    )
    .await;
    let problems = differences(&c);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("commands differ"),
        "{}",
        problems[0]
    );
    assert!(problems[1].starts_with("changes differ"), "{}", problems[1]);
    // The same run against its own plan is the same.
    let c = run_and_plan(&ran, &ran, ProbeDelivery::Exec).await;
    assert_eq!(differences(&c), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_distroless_route_of_the_probe_does_what_its_plan_says() {
    // The probe as an image in an ephemeral container: the registry where a docker engine
    // runs, `kind load` where none does (here).
    let ran = [Scenario::PluginCa, Scenario::DefaultCa];
    let c = run_and_plan(&ran, &ran, ProbeDelivery::Image).await;
    let problems = differences(&c);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let changes = c.recorded_changes.join("\n");
    assert!(
        changes.contains("cluster1: PATCH Pod foo/<sleep pod> ephemeralContainers"),
        "{changes}"
    );
    assert!(!changes.contains("EXEC istio-proxy: /etc/istio/proxy/meshtrust-probe"));
    let cmds = c.recorded_commands.join("\n");
    assert!(
        cmds.contains("docker build -t localhost:5001/meshtrust-probe:dev"),
        "{cmds}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_on_existing_clusters_connects_nothing_and_does_what_its_plan_says() {
    // Two existing clusters with docker and kind on PATH: nothing of kind's is touched (no
    // node routes, no remote secrets), and nothing is created or deleted but namespaces.
    let ran = [Scenario::PluginCa, Scenario::MulticlusterSharedRoot];
    let c = run_and_plan_on(&ran, &ran, ProbeDelivery::Exec, true).await;
    let problems = differences(&c);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let cmds = c.recorded_commands.join("\n");
    for absent in [
        "docker inspect",
        "ip route",
        "create-remote-secret",
        "kind create",
        "kind delete",
        "docker pull",
    ] {
        assert!(!cmds.contains(absent), "`{absent}` ran:\n{cmds}");
    }
    // It did run the scenarios there.
    assert!(cmds.contains("istioctl install"), "{cmds}");
    assert!(
        c.recorded_changes
            .iter()
            .any(|l| l.starts_with("cluster2: PATCH Secret istio-system/cacerts")),
        "{:#?}",
        c.recorded_changes
    );
}

#[test]
fn request_paths_read_as_the_plans_objects() {
    assert_eq!(object_of("/api/v1/namespaces/foo"), "Namespace foo");
    assert_eq!(
        object_of("/api/v1/namespaces/istio-system/secrets/cacerts"),
        "Secret istio-system/cacerts"
    );
    assert_eq!(
        object_of("/apis/apps/v1/namespaces/foo/deployments/httpbin"),
        "Deployment foo/httpbin"
    );
    assert_eq!(
        object_of("/api/v1/namespaces/foo/serviceaccounts/sleep/token"),
        "TokenRequest foo/sleep"
    );
    assert!(object_of("/healthz").starts_with('?'));
}
