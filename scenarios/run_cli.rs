//! `meshtrust run`: the main job, its reports, and what never appears in them.

use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

fn meshtrust() -> Command {
    Command::cargo_bin("meshtrust").unwrap()
}

#[test]
fn a_full_run_passes_writes_every_report_and_never_a_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (junit, json, artifacts) = (
        tmp.path().join("junit.xml"),
        tmp.path().join("run.json"),
        tmp.path().join("artifacts"),
    );
    let out = meshtrust()
        .args(["run", "--key", "p256", "--junit"])
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .arg("--artifacts")
        .arg(&artifacts)
        .arg("--summary")
        .arg(tmp.path().join("summary.md"))
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("9/9 scenarios passed on target `local`"),
        "{stdout}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="local" tests="9""#) && xml.contains(r#"failures="0""#),
        "{xml}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenarios"].as_array().unwrap().len(), 9);
    assert!(
        report["scenarios"][0]["phases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "install cluster1")
    );
    let chain =
        std::fs::read_to_string(artifacts.join("plugin-ca/cluster1_foo_httpbin.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 4);
    assert!(
        artifacts
            .join("plugin-ca/cacerts/mesh/cluster1/root-cert.pem")
            .exists()
    );
    assert!(
        !artifacts
            .join("plugin-ca/cacerts/mesh/cluster1/ca-key.pem")
            .exists()
    );
    // The Markdown summary: every scenario, each with its trust graph as Mermaid.
    let md = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    assert!(
        md.starts_with("## meshtrust: 9/9 scenarios passed on target `local`"),
        "{md}"
    );
    assert_eq!(md.matches("```mermaid\nflowchart LR\n").count(), 9, "{md}");
    // Each scenario's trust graph, for Graphviz.
    let dot = std::fs::read_to_string(artifacts.join("plugin-ca.dot")).unwrap();
    assert!(dot.starts_with("digraph trust {"), "{dot}");

    // Every output of the run, including trace logs, is free of keys.
    let mut outputs = vec![
        stdout.into_owned(),
        stderr.into_owned(),
        xml,
        std::fs::read_to_string(&json).unwrap(),
    ];
    for entry in walk(&artifacts) {
        outputs.push(std::fs::read_to_string(entry).unwrap());
    }
    for text in &outputs {
        assert!(
            !text.contains("PRIVATE KEY"),
            "a private key in the run's output"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p))
        } else {
            files.push(p)
        }
    }
    files
}

#[test]
fn an_unknown_scenario_is_bad_input_with_the_valid_names() {
    meshtrust()
        .args(["run", "--scenario", "plugin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown scenario `plugin` (expected one of: plugin-ca, default-ca,",
        ));
}

#[cfg(not(feature = "e2e"))]
#[test]
fn the_kind_target_without_the_e2e_feature_says_how_to_get_it() {
    meshtrust()
        .args(["run", "--target", "kind"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "built without the kind target (hint: `cargo run --features e2e",
        ));
}

#[test]
fn dry_run_on_the_local_target_is_refused_with_a_hint() {
    meshtrust()
        .args(["run", "--dry-run"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: `--target kind --dry-run`"));
}

/// The committed plan snapshot, without insta's header.
#[cfg(feature = "e2e")]
fn committed_plan(name: &str) -> String {
    let path = format!(
        "{}/fixtures/snapshots/{name}.snap",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let body = text.splitn(3, "---\n").nth(2).unwrap();
    format!("{}\n", body.trim_end())
}

#[cfg(feature = "e2e")]
#[test]
fn the_kind_dry_run_prints_the_committed_plan_and_touches_nothing() {
    // An empty PATH: the dry run must not need (or run) docker, kind or istioctl.
    meshtrust()
        .args([
            "run",
            "--target",
            "kind",
            "--dry-run",
            "--scenario",
            "plugin-ca",
            "--scenario",
            "bad-cacerts",
        ])
        .env("PATH", "")
        .env_remove("ISTIOCTL")
        .env_remove("MESHTRUST_KEEP")
        .env_remove("MESHTRUST_PROBE")
        .assert()
        .code(0)
        .stdout(committed_plan("kind_plan_single_cluster"));
}

/// The dry run's phases for `scenario` with two istioctls (install 1.31.4, upgrade 1.32.0).
#[cfg(feature = "e2e")]
fn planned_phases(scenario: &str) -> String {
    let out = meshtrust()
        .args([
            "run",
            "--target",
            "kind",
            "--dry-run",
            "--scenario",
            scenario,
        ])
        .args(["--istioctl", "/opt/istio-1.31.4/bin/istioctl"])
        .args(["--istioctl", "/opt/istio-1.32.0/bin/istioctl"])
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(feature = "e2e")]
#[test]
fn a_canary_dry_run_from_one_release_to_the_next_has_no_in_place_upgrade() {
    let plan = planned_phases("istio-canary-upgrade");
    assert!(!plan.contains("[upgrade]"), "{plan}");
    assert!(
        plan.contains("[canary] run    /opt/istio-1.32.0/bin/istioctl install --revision canary"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "[canary] run    /opt/istio-1.31.4/bin/istioctl uninstall --revision default"
        ),
        "{plan}"
    );
    // Its twin: the in-place upgrade has its phase, and no canary.
    let plan = planned_phases("istio-upgrade");
    assert!(
        plan.contains("[upgrade] run    /opt/istio-1.32.0/bin/istioctl install --set"),
        "{plan}"
    );
    assert!(!plan.contains("[canary]"), "{plan}");
}

#[cfg(feature = "e2e")]
#[test]
fn a_kind_dry_run_of_a_multicluster_scenario_plans_two_clusters() {
    meshtrust()
        .args(["run", "--target", "kind", "--dry-run"])
        .args(["--scenario", "multicluster-shared-root"])
        .env("PATH", "")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "meshtrust kind plan: 2 cluster(s) [cluster1, cluster2]",
        ))
        .stdout(predicate::str::contains(
            "istioctl create-remote-secret --name cluster2",
        ));
}

#[cfg(feature = "e2e")]
#[test]
fn the_kind_target_without_its_tools_exits_2_in_seconds_naming_each() {
    let started = std::time::Instant::now();
    meshtrust()
        .args(["run", "--target", "kind", "--scenario", "plugin-ca"])
        .env("PATH", "")
        .env_remove("ISTIOCTL")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the kind target cannot run here: `docker`, `kind`, `istioctl` missing or unusable",
        ))
        .stderr(predicate::str::contains("hint:"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[cfg(feature = "e2e")]
#[test]
fn a_kubeconfig_dry_run_plans_existing_clusters_and_no_kind() {
    let out = meshtrust()
        .args(["run", "--target", "kubeconfig", "--dry-run"])
        .args([
            "--context",
            "prod-east",
            "--kubeconfig",
            "/home/me/.kube/config",
        ])
        .args(["--scenario", "plugin-ca"])
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(
        plan.starts_with("meshtrust kubeconfig plan: 1 existing cluster(s) [cluster1]"),
        "{plan}"
    );
    assert!(
        plan.contains("--kubeconfig /home/me/.kube/config --context prod-east"),
        "{plan}"
    );
    // docker and kind only as what preflight asks if they are on PATH.
    for absent in [
        "kind create cluster",
        "docker pull",
        "docker exec",
        "docker inspect",
    ] {
        assert!(!plan.contains(absent), "`{absent}` in\n{plan}");
    }
}

#[cfg(feature = "e2e")]
#[test]
fn the_kind_config_is_built_in_and_another_must_exist() {
    // From a directory without the repository's kind-config.yaml: the built-in one.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = meshtrust()
        .current_dir(elsewhere.path())
        .args([
            "run",
            "--target",
            "kind",
            "--dry-run",
            "--scenario",
            "plugin-ca",
        ])
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(
        plan.contains("from the built-in kind-config.yaml"),
        "{plan}"
    );
    // Another one, named.
    let mine = elsewhere.path().join("mine.yaml");
    std::fs::write(&mine, "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n").unwrap();
    let out = meshtrust()
        .args([
            "run",
            "--target",
            "kind",
            "--dry-run",
            "--scenario",
            "plugin-ca",
        ])
        .arg("--kind-config")
        .arg(&mine)
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(plan.contains(&format!("from {}", mine.display())), "{plan}");
    // A missing one is bad input, named, before anything runs.
    meshtrust()
        .args(["run", "--target", "kind", "--dry-run"])
        .args(["--kind-config", "/nonexistent/kind.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`--kind-config /nonexistent/kind.yaml`",
        ))
        .stderr(predicate::str::contains("hint: drop `--kind-config`"));
    // And it belongs to the kind target only.
    meshtrust()
        .args(["run", "--kind-config"])
        .arg(&mine)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`--kind-config` applies to `--target kind` only",
        ));
}

#[cfg(feature = "e2e")]
#[test]
fn the_kubeconfig_target_needs_contexts() {
    meshtrust()
        .args(["run", "--target", "kubeconfig"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`--target kubeconfig` needs the clusters' contexts",
        ));
}

/// `meshtrust ARGS` writing `stream` (`stdout` or `stderr`) into a pipe nobody reads: every
/// write to it fails with EPIPE, as under `| head -1` or a CI runner that went away. Its exit
/// code.
fn exit_code_into_a_closed_pipe(args: &[&str], stream: &str) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    // What `--keep` keeps lands here, and goes with it.
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_meshtrust"));
    cmd.args(args).env("TMPDIR", tmp.path());
    match stream {
        "stdout" => cmd.stdout(writer).stderr(std::process::Stdio::null()),
        _ => cmd.stderr(writer).stdout(std::process::Stdio::null()),
    };
    cmd.status().unwrap().code()
}

#[test]
fn a_closed_pipe_never_turns_an_exit_code_into_a_panic() {
    // JSON on stdout (std's println! panicked here with 101), the error still exit 2.
    assert_eq!(
        exit_code_into_a_closed_pipe(&["check", "--format", "json", "/nonexistent"], "stdout"),
        Some(2)
    );
    // A conformant run whose note on stderr cannot be written still says 0.
    assert_eq!(
        exit_code_into_a_closed_pipe(
            &["run", "--scenario", "plugin-ca", "--key", "p256", "--keep"],
            "stderr"
        ),
        Some(0)
    );
    // A report asked on stdout (`--json - | head -1`): a conformant run still says 0.
    assert_eq!(
        exit_code_into_a_closed_pipe(
            &[
                "run",
                "--scenario",
                "plugin-ca",
                "--key",
                "p256",
                "--json",
                "-"
            ],
            "stdout"
        ),
        Some(0)
    );
    // And a bundle check that fails still says 1 with its report going nowhere.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster1");
    meshtrust()
        .args(["certs", "cacerts", "cluster1", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .success();
    std::fs::remove_file(dir.join("cert-chain.pem")).unwrap();
    let d = dir.display().to_string();
    assert_eq!(
        exit_code_into_a_closed_pipe(&["check", "--format", "json", &d], "stdout"),
        Some(1)
    );
}

/// `meshtrust run ARGS` started with `TMPDIR=temp`, stderr as given.
fn started_run(
    temp: &std::path::Path,
    args: &[&str],
    stderr: std::process::Stdio,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .arg("run")
        .args(args)
        .env("TMPDIR", temp)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// The certificates directory of run `pid` in `temp`, once `ready` says so (30 s at most).
fn run_dir_of(
    temp: &std::path::Path,
    pid: u32,
    ready: impl Fn(&std::path::Path) -> bool,
) -> std::path::PathBuf {
    let prefix = format!("meshtrust-run-{pid}.");
    let started = std::time::Instant::now();
    loop {
        let found = std::fs::read_dir(temp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            });
        if let Some(d) = found.filter(|d| ready(d)) {
            return d;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts `meshtrust run ARGS` with `TMPDIR=temp`, waits for its certificates directory, and
/// SIGKILLs it (no handler sees that). Returns the directory it left.
fn killed_run(temp: &std::path::Path, args: &[&str]) -> std::path::PathBuf {
    let mut child = started_run(temp, args, std::process::Stdio::null());
    // A kept run's directory is marked first thing; kill it once it is.
    let keep = args.contains(&"--keep");
    let dir = run_dir_of(temp, child.id(), |d| {
        !keep || d.join(".meshtrust-keep").exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    dir
}

#[test]
fn a_killed_runs_keys_are_removed_by_the_next_run_unless_kept() {
    let temp = tempfile::tempdir().unwrap();
    // Kept first: the next run's start sweeps, and this one must survive that too.
    let kept = killed_run(temp.path(), &["--key", "rsa4096", "--keep"]);
    let left = killed_run(temp.path(), &["--key", "rsa4096"]);
    assert!(left.exists(), "the kill came after the run cleaned up");
    assert!(kept.exists());
    meshtrust()
        .args(["run", "--scenario", "plugin-ca", "--key", "p256"])
        .env("TMPDIR", temp.path())
        .assert()
        .code(0)
        .stderr(predicate::str::contains(format!(
            "removed `{}`, the certificates of a run that was killed",
            left.display()
        )));
    assert!(!left.exists());
    // The twin: what `--keep` asked to keep stays, killed or not.
    assert!(kept.exists());
}

/// Starts `meshtrust run ARGS` (`TMPDIR=temp`), sends it `signal` once its certificates
/// directory exists; returns its exit code, its stderr and that directory.
fn signalled_run(
    temp: &std::path::Path,
    args: &[&str],
    signal: &str,
) -> (Option<i32>, String, std::path::PathBuf) {
    let child = started_run(temp, args, std::process::Stdio::piped());
    // Its certificates are being made: the scenarios (and the handler) are on their way.
    let dir = run_dir_of(temp, child.id(), |d| d.join("mesh").exists());
    let sent = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

#[test]
fn a_signalled_local_run_removes_its_keys_and_exits_with_the_signals_code() {
    let temp = tempfile::tempdir().unwrap();
    let (code, stderr, dir) = signalled_run(temp.path(), &["--key", "rsa4096"], "-TERM");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("meshtrust: terminated (SIGTERM)"),
        "{stderr}"
    );
    assert!(!dir.exists(), "{} is left", dir.display());
    let (code, _, dir) = signalled_run(temp.path(), &["--key", "rsa4096"], "-INT");
    assert_eq!(code, Some(130));
    assert!(!dir.exists());
    // The twin: `--keep` keeps them, and says where.
    let (code, stderr, dir) = signalled_run(temp.path(), &["--key", "rsa4096", "--keep"], "-TERM");
    assert_eq!(code, Some(143));
    assert!(dir.exists());
    let kept = format!("certificates are kept in {}", dir.display());
    assert_eq!(stderr.matches(&kept).count(), 1, "{stderr}");
}

#[test]
fn a_bad_report_path_is_refused_before_any_scenario_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("missing/dir/junit.xml");
    let started = std::time::Instant::now();
    meshtrust()
        .args(["run", "--key", "p256", "--junit"])
        .arg(&junit)
        .assert()
        .code(2)
        .stdout("")
        .stderr(format!(
            "error: cannot write `{}`: the directory `{}` does not exist (hint: create it first, or choose another path)\n",
            junit.display(),
            junit.parent().unwrap().display()
        ));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the scenarios ran first"
    );
}

#[test]
fn the_summary_is_printed_even_when_a_report_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = tmp.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    // A file where the scenario's artifacts directory goes: writable directory, failing write.
    std::fs::write(artifacts.join("bad-cacerts"), "in the way").unwrap();
    let json = tmp.path().join("run.json");
    meshtrust()
        .args([
            "run",
            "--key",
            "p256",
            "--scenario",
            "bad-cacerts",
            "--artifacts",
        ])
        .arg(&artifacts)
        .arg("--json")
        .arg(&json)
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "1/1 scenarios passed on target `local`",
        ))
        .stderr(predicate::str::contains(format!(
            "error: cannot create directory `{}`",
            artifacts.join("bad-cacerts").display()
        )));
    // The reports before the failing one are written.
    assert!(json.exists());
}

#[test]
fn a_kept_run_directory_holding_keys_is_0700() {
    use std::os::unix::fs::PermissionsExt;
    let out = meshtrust()
        .args([
            "run",
            "--key",
            "p256",
            "--scenario",
            "bad-cacerts",
            "--keep",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("certificates are kept in "))
        .unwrap_or_else(|| panic!("no kept directory named: {stderr}"));
    let dir = std::path::PathBuf::from(dir);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let (run_mode, cluster_mode) = (mode(&dir), mode(&dir.join("mesh/cluster1")));
    let key = dir.join("mesh/cluster1/ca-key.pem").exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(run_mode, 0o700, "{}", dir.display());
    assert_eq!(cluster_mode, 0o700);
    assert!(key, "the kept directory holds the run's keys");
}

#[test]
fn a_run_without_keep_leaves_no_directory_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = meshtrust()
        .args(["run", "--key", "p256", "--scenario", "bad-cacerts"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("kept in"));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn json_to_stdout_is_the_report_alone_with_the_summary_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = meshtrust()
        .current_dir(dir.path())
        .args([
            "run",
            "--key",
            "p256",
            "--scenario",
            "plugin-ca",
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}): {out:?}"));
    assert_eq!(report["scenarios"][0]["name"], "plugin-ca");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1/1 scenarios passed"),
        "{out:?}"
    );
    assert!(
        !dir.path().join("-").exists(),
        "a file named `-` was written"
    );
    // Without `-`, the summary stays on stdout.
    let out = meshtrust()
        .args(["run", "--key", "p256", "--scenario", "plugin-ca"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1/1 scenarios passed"));
}

#[test]
fn two_reports_cannot_both_go_to_stdout() {
    meshtrust()
        .args(["run", "--json", "-", "--junit", "-"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--junit and --json each ask for stdout (`-`)",
        ));
}

#[test]
fn log_lines_follow_color_and_quiet() {
    let stderr = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = meshtrust();
        cmd.args(args)
            .args(["run", "--key", "p256", "--scenario", "plugin-ca"])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let info = [("RUST_LOG", "info")];
    let always = stderr(&["--color", "always"], &info);
    assert!(
        always.contains("INFO") && always.contains('\x1b'),
        "{always}"
    );
    let never = stderr(&["--color", "never"], &info);
    assert!(never.contains("INFO") && !never.contains('\x1b'), "{never}");
    // Not a terminal: no colour unless forced.
    assert!(!stderr(&[], &info).contains('\x1b'));
    assert!(stderr(&[], &[("RUST_LOG", "info"), ("CLICOLOR_FORCE", "1")]).contains('\x1b'));
}

#[test]
fn a_report_path_that_is_a_fifo_or_a_symlink_is_written_into_not_replaced() {
    use std::os::unix::fs::FileTypeExt as _;
    let tmp = tempfile::tempdir().unwrap();
    // A FIFO stands for every path that is not a regular file (`/dev/null`, `/dev/stdout`,
    // `>(...)`): the run writes into it and leaves it what it was.
    let fifo = tmp.path().join("report.pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let target = tmp.path().join("junit-target.xml");
    std::fs::write(&target, "old").unwrap();
    let link = tmp.path().join("junit.xml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    meshtrust()
        .args(["run", "--scenario", "plugin-ca", "--key", "p256", "--json"])
        .arg(&fifo)
        .arg("--junit")
        .arg(&link)
        .assert()
        .code(0);
    let json: serde_json::Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert_eq!(json["conformant"], true);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // The symlink's file gets the report; the link stays a link.
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("<testsuite")
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[cfg(feature = "e2e")]
#[test]
fn a_multicluster_scenario_on_one_existing_cluster_is_bad_input_naming_it() {
    meshtrust()
        .args(["run", "--target", "kubeconfig", "--context", "only", "--dry-run"])
        .env("PATH", "")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "multicluster-shared-root and multicluster-different-roots need two clusters, and `--target kubeconfig` was given one `--context`",
        ));
    // The twin: a single-cluster scenario plans on one.
    meshtrust()
        .args([
            "run",
            "--target",
            "kubeconfig",
            "--context",
            "only",
            "--dry-run",
        ])
        .args(["--scenario", "plugin-ca"])
        .env("PATH", "")
        .assert()
        .code(0);
    // And on two existing clusters the plan connects nothing: that is the user's.
    let out = meshtrust()
        .args(["run", "--target", "kubeconfig", "--dry-run"])
        .args(["--context", "east", "--context", "west"])
        .args(["--scenario", "multicluster-shared-root"])
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(
        plan.contains("on existing clusters meshtrust connects nothing"),
        "{plan}"
    );
    for absent in ["docker inspect", "ip route", "create-remote-secret"] {
        assert!(!plan.contains(absent), "`{absent}` in\n{plan}");
    }
}

#[cfg(feature = "e2e")]
#[test]
fn a_dry_run_refuses_what_a_run_would_and_warns_of_what_preflight_would() {
    let tmp = tempfile::tempdir().unwrap();
    let pod = tmp.path().join("pod.yaml");
    std::fs::write(&pod, "kind: Pod\napiVersion: v1\n").unwrap();
    for (flag, value, says) in [
        (
            "--istio-version",
            "banana",
            "`--istio-version banana`: `banana` is not an Istio version",
        ),
        (
            "--kind-config",
            tmp.path().to_str().unwrap(),
            "`--kind-config ",
        ),
        ("--kind-config", pod.to_str().unwrap(), "not `Cluster`"),
    ] {
        meshtrust()
            .args([
                "run",
                "--target",
                "kind",
                "--dry-run",
                "--scenario",
                "plugin-ca",
            ])
            .args([flag, value])
            .env("PATH", "")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
    // A missing istioctl or probe: the plan is printed, and what preflight will say is said.
    meshtrust()
        .current_dir(tmp.path())
        .args([
            "run",
            "--target",
            "kind",
            "--dry-run",
            "--scenario",
            "plugin-ca",
        ])
        .args(["--istioctl", "/nope/istioctl", "--istio-version", "1.30"])
        .env("PATH", "")
        .env_remove("MESHTRUST_PROBE")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("/nope/istioctl install"))
        .stderr(predicate::str::contains(
            "warning: `/nope/istioctl` does not exist: a run stops at preflight",
        ))
        .stderr(predicate::str::contains(
            "the probe `target/x86_64-unknown-linux-gnu/release/meshtrust-probe` is not there",
        ));
    // The twin: ISTIOCTL names the istioctl the plan shows when --istioctl is not given.
    let istioctl = tmp.path().join("istioctl");
    std::fs::write(&istioctl, "").unwrap();
    let probe = tmp.path().join("probe");
    std::fs::write(&probe, "").unwrap();
    meshtrust()
        .args([
            "run",
            "--target",
            "kind",
            "--dry-run",
            "--scenario",
            "plugin-ca",
        ])
        .env("PATH", "")
        .env("ISTIOCTL", &istioctl)
        .env("MESHTRUST_PROBE", &probe)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "{} install",
            istioctl.display()
        )))
        .stderr(predicate::str::contains("warning").not());
}

#[cfg(feature = "e2e")]
#[test]
fn the_kubeconfig_target_without_istioctl_names_itself_and_only_istioctl() {
    meshtrust()
        .args([
            "run",
            "--target",
            "kubeconfig",
            "--context",
            "x",
            "--scenario",
            "plugin-ca",
        ])
        .env("PATH", "")
        .env_remove("ISTIOCTL")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the kubeconfig target cannot run here: `istioctl` missing or unusable",
        ));
}
