//! `meshtrust run`: the conformance scenarios on a target, with reports.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use meshtrust::exit::Exit;
use meshtrust::mesh::LocalTarget;
use meshtrust::pki::KeyAlg;
use meshtrust::report;
use meshtrust::scenario::{self, RunOptions, Scenario};

use crate::output;

#[derive(Args)]
pub struct RunArgs {
    /// Where the mesh runs: `local` (embedded, no Docker), `istiod` (real etcd, kube-apiserver
    /// and istiod as processes, no Docker; needs `--features istiod` and `just e2e-tools`),
    /// `kind` or `kubeconfig` (need `--features e2e`).
    #[arg(long, value_enum, default_value_t = TargetKind::Local)]
    target: TargetKind,
    /// A scenario to run; repeat for several. Default: all of them.
    #[arg(long = "scenario", value_name = "NAME", value_parser = output::scenario())]
    scenarios: Vec<Scenario>,
    /// Write a JUnit XML report (one test case per scenario); `-` is stdout.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the JSON report; `-` is stdout (the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write captured chains (PEM), the plugged bundles' public files, each scenario's trust graph (`<scenario>.dot`) and report.json here. Never keys.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Write a Markdown summary with each scenario's trust graph as Mermaid (e.g. `--summary "$GITHUB_STEP_SUMMARY"`); `-` is stdout.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Keep what the run made (the certificates directory; on kind, the clusters).
    #[arg(long)]
    keep: bool,
    /// Print the plan without touching anything (kind target).
    #[arg(long)]
    dry_run: bool,
    /// Key type of the generated roots and intermediates.
    #[arg(long, default_value = "rsa4096", value_parser = output::key_alg())]
    key: KeyAlg,
    /// kind/kubeconfig: istioctl to use, once per phase (install, then upgrade). Default:
    /// `ISTIOCTL`, then PATH.
    #[arg(long = "istioctl", value_name = "PATH")]
    istioctl: Vec<PathBuf>,
    /// kind/kubeconfig: the Istio version the run expects (MAJOR.MINOR); the install-phase
    /// istioctl must be that version.
    #[arg(long, value_name = "X.Y")]
    istio_version: Option<String>,
    /// kubeconfig: the contexts of the existing clusters, one per cluster (cluster1, cluster2).
    #[arg(long = "context", value_name = "CONTEXT")]
    contexts: Vec<String>,
    /// kubeconfig: the kubeconfig file (default: `KUBECONFIG` or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// kind: the kind cluster config each cluster is made from (its subnets are set per
    /// cluster). Default: the built-in one (the repository's kind-config.yaml).
    #[arg(long, value_name = "FILE")]
    kind_config: Option<PathBuf>,
    /// kind: cluster names are `<prefix>-cluster1`, ...
    #[arg(long, default_value = "meshtrust")]
    prefix: String,
    /// kind/kubeconfig: the static probe (`just probe-static`).
    #[arg(long, env = "MESHTRUST_PROBE", value_name = "FILE")]
    probe: Option<PathBuf>,
    /// istiod: the directory of etcd, kube-apiserver and pilot-discovery-<release> (`just
    /// e2e-tools` builds them into target/e2e-tools).
    #[arg(
        long,
        env = "MESHTRUST_CONTROL_PLANE",
        value_name = "DIR",
        default_value = "target/e2e-tools"
    )]
    control_plane: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    Local,
    Istiod,
    Kind,
    Kubeconfig,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            TargetKind::Local => "local",
            TargetKind::Istiod => "istiod",
            TargetKind::Kind => "kind",
            TargetKind::Kubeconfig => "kubeconfig",
        }
    }
}

/// The flags that apply to some targets only: `(argument id, flag, targets)`.
const TARGET_FLAGS: [(&str, &str, &[TargetKind]); 8] = [
    ("kind_config", "--kind-config", &[TargetKind::Kind]),
    ("control_plane", "--control-plane", &[TargetKind::Istiod]),
    ("contexts", "--context", &[TargetKind::Kubeconfig]),
    ("kubeconfig", "--kubeconfig", &[TargetKind::Kubeconfig]),
    ("prefix", "--prefix", &[TargetKind::Kind]),
    (
        "istioctl",
        "--istioctl",
        &[TargetKind::Kind, TargetKind::Kubeconfig],
    ),
    (
        "istio_version",
        "--istio-version",
        &[TargetKind::Kind, TargetKind::Kubeconfig],
    ),
    (
        "probe",
        "--probe",
        &[TargetKind::Kind, TargetKind::Kubeconfig],
    ),
];

/// Refuses what would be silently ignored: a flag of another target, a scenario named twice.
fn check_flags(args: &RunArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    for (id, flag, targets) in TARGET_FLAGS {
        if matches.value_source(id) == Some(ValueSource::CommandLine)
            && !targets.contains(&args.target)
        {
            let names: Vec<_> = targets
                .iter()
                .map(|t| format!("`--target {}`", t.name()))
                .collect();
            bail!(
                "`{flag}` applies to {} only, and this run is `--target {}` (hint: drop `{flag}`, or pass {})",
                names.join(" and "),
                args.target.name(),
                names.join(" or ")
            );
        }
    }
    if args.istioctl.len() > 2 {
        bail!(
            "`--istioctl` is given {} times; it takes at most two: the install's, then the upgrade's (hint: `--istioctl A --istioctl B` upgrades from A to B; the canary revision comes from B)",
            args.istioctl.len()
        );
    }
    #[cfg(feature = "e2e")]
    if args.target == TargetKind::Kind {
        meshtrust::kube::kind::check_prefix(&args.prefix).map_err(anyhow::Error::msg)?;
    }
    if let Some(path) = &args.kind_config {
        check_kind_config(path)?;
    }
    if let Some(v) = &args.istio_version {
        v.parse::<meshtrust::scenario::IstioVersion>()
            .map_err(|e| anyhow::anyhow!("`--istio-version {v}`: {e}"))?;
    }
    let mut seen = Vec::new();
    for s in &args.scenarios {
        if seen.contains(s) {
            bail!("scenario `{s}` is given twice (hint: name each scenario once)");
        }
        seen.push(*s);
    }
    Ok(())
}

/// `--kind-config FILE` is read and patched as a run would (cluster 1's subnets), so that a
/// directory, bad YAML or another kind of object is bad input now, not after preflight.
fn check_kind_config(path: &std::path::Path) -> anyhow::Result<()> {
    let hint = "(hint: drop `--kind-config` to use the built-in kind config)";
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("`--kind-config {}`: {e} {hint}", path.display()))?;
    // Without the kind target the flag is refused before this (it applies to kind only).
    #[cfg(feature = "e2e")]
    meshtrust::kube::kind::patch_config(&text, path, 1)
        .map_err(|e| anyhow::anyhow!("`--kind-config {}`: {e} {hint}", path.display()))?;
    #[cfg(not(feature = "e2e"))]
    drop(text);
    Ok(())
}

/// Every output path is checked before any scenario runs (a run takes minutes).
fn check_outputs(args: &RunArgs) -> anyhow::Result<()> {
    let reports: Vec<(&str, &PathBuf)> = [
        ("--junit", &args.junit),
        ("--json", &args.json),
        ("--summary", &args.summary),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_ref().map(|p| (flag, p)))
    .collect();
    let to_stdout: Vec<&str> = reports
        .iter()
        .filter(|(_, p)| is_stdout(p))
        .map(|(flag, _)| *flag)
        .collect();
    if to_stdout.len() > 1 {
        bail!(
            "{} each ask for stdout (`-`); only one report can go there (hint: give the others a file)",
            to_stdout.join(" and ")
        );
    }
    for (_, path) in reports {
        if !is_stdout(path) {
            meshtrust::pki::layout::check_report_path(path)?;
        }
    }
    if let Some(dir) = &args.artifacts {
        meshtrust::pki::layout::check_output_dir(dir)?;
    }
    Ok(())
}

pub fn run(args: RunArgs, matches: &ArgMatches) -> anyhow::Result<Exit> {
    check_flags(&args, matches)?;
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios.clone()
    };
    if args.target == TargetKind::Istiod {
        return run_istiod_target(&args, scenarios);
    }
    if args.target != TargetKind::Local {
        return run_cluster_target(&args, &scenarios);
    }
    if args.dry_run {
        bail!(
            "`--dry-run` plans a cluster run; the local target touches nothing outside this process (hint: `--target kind --dry-run`)"
        );
    }
    check_outputs(&args)?;
    let workdir = run_dir(args.keep)?;
    let opts = RunOptions {
        scenarios,
        key: args.key,
        workdir: Some(workdir.path().to_owned()),
        ..RunOptions::default()
    };
    let bar = indicatif::ProgressBar::with_draw_target(None, output::progress_target());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let progress = |scenario: &str, phase: &str| bar.set_message(format!("{scenario}: {phase}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let output = runtime.block_on(async {
        on_signal(args.keep, String::new);
        scenario::run(LocalTarget::new, &opts, &progress).await
    });
    bar.finish_and_clear();
    if args.keep {
        let _ = workdir.keep();
    }
    let output = output?;
    finish(&args, &output.report)
}

/// The run's certificates, keys included: a directory of its own, 0700, removed at the end
/// unless `--keep` (which marks it at once, so that no later run sweeps it even if this one is
/// killed).
fn run_dir(keep: bool) -> anyhow::Result<tempfile::TempDir> {
    use meshtrust::scenario::runner::{keep_run_dir, run_certs_dir};
    let dir = run_certs_dir(&std::env::temp_dir()).context("cannot create the run directory")?;
    if keep {
        keep_run_dir(dir.path()).context("cannot mark the run directory kept")?;
        meshtrust::say!("certificates are kept in {}", dir.path().display());
    }
    Ok(dir)
}

/// On SIGINT, SIGTERM or SIGHUP: `cleanup` (the target's own: processes, directories; it says
/// what it did), then the run's certificates removed (unless `--keep`), then exit 130, 143 or
/// 129. A signal ends the process without running `Drop`, so without this the CA keys would
/// stay in `$TMPDIR` until the next run swept them. Call inside the runtime.
fn on_signal(keep: bool, cleanup: impl FnOnce() -> String + Send + 'static) {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered here, before any scenario starts: a signal from now on is handled.
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        let (name, code) = tokio::select! {
            _ = interrupt.recv() => ("interrupted (SIGINT)", 130),
            _ = terminate.recv() => ("terminated (SIGTERM)", 143),
            _ = hangup.recv() => ("hung up (SIGHUP)", 129),
        };
        let done = cleanup();
        // Kept: said when the run started. Otherwise `run_dir` is one of these
        // (`run_certs_dir` registered it).
        if !keep {
            meshtrust::scenario::runner::remove_live_run_dirs();
        }
        meshtrust::say!("meshtrust: {name}{done}");
        std::process::exit(code);
    });
}

/// `-`: the report goes to stdout.
fn is_stdout(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// The summary first (it is never lost; on stderr when a report goes to stdout), then the
/// report files.
fn finish(args: &RunArgs, report: &report::RunReport) -> anyhow::Result<Exit> {
    let human = format!(
        "{}{}",
        output::paint(&report::render_summary(report)),
        report::render_failed_trees(report)
    );
    if [&args.junit, &args.json, &args.summary]
        .into_iter()
        .flatten()
        .any(|p| is_stdout(p))
    {
        meshtrust::console::err(&human);
    } else {
        meshtrust::console::out(&human);
    }
    write_reports(args, report)?;
    Ok(if report.passed() {
        Exit::Conformant
    } else {
        Exit::NotConformant
    })
}

fn write_reports(args: &RunArgs, report: &report::RunReport) -> anyhow::Result<()> {
    let write = |path: &PathBuf, text: String| -> anyhow::Result<()> {
        if is_stdout(path) {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                // The reader went away (`| head`): what it did not read it did not want; the
                // run's own exit code stands.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                // Anything else (a full disk behind a redirection) loses the report: say so.
                written => written.context("cannot write the report to stdout")?,
            }
        } else {
            meshtrust::pki::layout::write_report(path, text.as_bytes(), 0o644)?;
        }
        Ok(())
    };
    if let Some(path) = &args.junit {
        write(path, report::to_junit(report))?;
    }
    if let Some(path) = &args.json {
        write(path, report.to_json())?;
    }
    if let Some(path) = &args.summary {
        write(path, report::render_markdown(report))?;
    }
    if let Some(dir) = &args.artifacts {
        report::write_artifacts(report, dir)?;
    }
    Ok(())
}

#[cfg(not(feature = "istiod"))]
fn run_istiod_target(_args: &RunArgs, _scenarios: Vec<Scenario>) -> anyhow::Result<Exit> {
    bail!(
        "this meshtrust was built without the istiod target (hint: `cargo run --features istiod -- run --target istiod`, after `just e2e-tools`)"
    )
}

/// `--target istiod`: the binaries are checked first (a missing one is exit 2 naming the build
/// command); the scenarios run one after another (each starts its own API servers and istiod;
/// two cores cannot run seven control planes at once); SIGINT/SIGTERM/SIGHUP kill every
/// process and remove every directory before exiting 130/143/129 (and a SIGKILL of meshtrust
/// takes the control plane with it: its processes have a parent-death signal).
#[cfg(feature = "istiod")]
fn run_istiod_target(args: &RunArgs, scenarios: Vec<Scenario>) -> anyhow::Result<Exit> {
    use meshtrust::control_plane::{Binaries, IstiodTarget};
    if args.dry_run {
        bail!(
            "`--dry-run` plans a kind run; the istiod target starts local processes only (hint: drop `--dry-run`, or `--target kind --dry-run`)"
        );
    }
    let bins = match Binaries::find(&args.control_plane) {
        Ok(bins) => bins,
        Err(e) => {
            meshtrust::console::err(&output::paint(&format!(
                "error: {}\n",
                output::render_error(&anyhow::Error::new(e))
            )));
            return Ok(Exit::BadInput);
        }
    };
    check_outputs(args)?;
    let workdir = run_dir(args.keep)?;
    let opts = RunOptions {
        scenarios,
        key: args.key,
        workdir: Some(workdir.path().to_owned()),
        concurrent: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let output = runtime.block_on(async {
        on_signal(args.keep, || {
            let killed = meshtrust::kube::process::kill_live_groups();
            let dirs = meshtrust::control_plane::target::remove_live_dirs();
            format!("; stopped {killed} process group(s), removed {dirs} cluster directory(ies)")
        });
        let progress = |scenario: &str, phase: &str| output::note!("{scenario}: {phase}");
        let evidence = args.artifacts.clone();
        let make = || {
            let target = IstiodTarget::new(bins.clone());
            match &evidence {
                Some(dir) => target.with_evidence_dir(dir.clone()),
                None => target,
            }
        };
        scenario::run(make, &opts, &progress).await
    });
    if args.keep {
        let _ = workdir.keep();
    }
    let output = output?;
    for s in &output.report.scenarios {
        for m in &s.milestones {
            output::note!("{}: {}: {:.1}s", s.name, m.name, m.duration.as_secs_f64());
        }
    }
    finish(args, &output.report)
}

#[cfg(not(feature = "e2e"))]
fn run_cluster_target(_args: &RunArgs, _scenarios: &[Scenario]) -> anyhow::Result<Exit> {
    bail!(
        "this meshtrust was built without the kind target (hint: `cargo run --features e2e -- run --target kind`, or `cargo install --path . --features e2e`)"
    )
}

/// The kind run the flags describe (also what `--dry-run` plans).
#[cfg(feature = "e2e")]
fn kind_run(args: &RunArgs, scenarios: &[Scenario]) -> meshtrust::kube::KindRun {
    let mut run = meshtrust::kube::KindRun::single(&args.prefix);
    run.clusters = meshtrust::kube::target::clusters_for(scenarios);
    run.scenarios = scenarios.to_vec();
    if !args.istioctl.is_empty() {
        run.istioctl = args.istioctl.clone();
    }
    if let Some(dir) = &args.artifacts {
        run.artifacts = dir.clone();
    }
    if let Some(p) = &args.probe {
        run.probe_binary = p.clone();
    }
    run.kind_config = args.kind_config.clone();
    run.keep = args.keep || meshtrust::kube::kind::keep_from_env();
    run.expect_istio_version = args.istio_version.clone();
    run
}

/// `--target kind|kubeconfig`: preflight first (a missing tool is exit 2 in seconds), one set
/// of clusters for the whole run, the scenarios one after another on it, reports as for local;
/// on failure `kind export logs` into the artifacts directory before the clusters go.
#[cfg(feature = "e2e")]
fn run_cluster_target(args: &RunArgs, scenarios: &[Scenario]) -> anyhow::Result<Exit> {
    use meshtrust::kube::{KindClusters, ToolSearch};

    let mut run = kind_run(args, scenarios);
    if args.target == TargetKind::Kubeconfig && args.contexts.is_empty() {
        bail!(
            "`--target kubeconfig` needs the clusters' contexts (hint: `--context kind-a --context kind-b`, one per cluster: cluster1, cluster2)"
        );
    }
    let multi: Vec<&str> = scenarios
        .iter()
        .filter(|s| s.is_multicluster())
        .map(|s| s.name())
        .collect();
    if args.target == TargetKind::Kubeconfig && !multi.is_empty() && args.contexts.len() < 2 {
        bail!(
            "{} need two clusters, and `--target kubeconfig` was given one `--context` (hint: `--context CTX1 --context CTX2`; or name the other scenarios with `--scenario`)",
            multi.join(" and ")
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.dry_run {
        // The istioctl a run would take when none is given.
        if args.istioctl.is_empty()
            && let Some(env) = std::env::var_os("ISTIOCTL").filter(|v| !v.is_empty())
        {
            run.istioctl = vec![env.into()];
        }
        // What preflight would refuse, said now (the plan is printed all the same).
        for istioctl in run.istioctl.iter().filter(|p| p.components().count() > 1) {
            if !istioctl.is_file() {
                output::warn(format_args!(
                    "`{}` does not exist: a run stops at preflight",
                    istioctl.display()
                ));
            }
        }
        if !run.probe_binary.is_file() {
            output::warn(format_args!(
                "the probe `{}` is not there: a run stops at preflight (hint: `just probe-static` in meshtrust's repository, then `--probe FILE` or MESHTRUST_PROBE)",
                run.probe_binary.display()
            ));
        }
        // The plan is the scenarios' own steps on the kind target (see `kube::plan`).
        let clusters = match args.target {
            TargetKind::Kubeconfig => {
                let refs = meshtrust::kube::cluster::from_contexts(
                    args.kubeconfig.as_deref(),
                    &args.contexts,
                );
                run.clusters = refs.iter().map(|r| r.cluster.clone()).collect();
                meshtrust::kube::PlannedClusters::Attached(refs)
            }
            _ => meshtrust::kube::PlannedClusters::Created,
        };
        let text = runtime
            .block_on(meshtrust::kube::dry_run_plan(&run, &clusters))
            .context("cannot plan the run")?;
        meshtrust::console::out(&text);
        return Ok(Exit::Conformant);
    }
    check_outputs(args)?;
    let search = ToolSearch::from_env(args.istioctl.clone());
    runtime.block_on(async {
        let started = match args.target {
            TargetKind::Kubeconfig => {
                let refs = meshtrust::kube::cluster::from_contexts(
                    args.kubeconfig.as_deref(),
                    &args.contexts,
                );
                KindClusters::attach(run.clone(), &search, refs).await
            }
            _ => {
                run.clusters = meshtrust::kube::target::clusters_for(scenarios);
                KindClusters::start(run.clone(), &search).await
            }
        };
        let shared = match started {
            Ok(shared) => shared,
            // A missing tool (preflight) or a cluster that would not come up: exit 2, the fix
            // is in the message.
            Err(e) => {
                let exit = e.exit();
                meshtrust::console::err(&output::paint(&format!(
                    "error: {}\n",
                    output::render_error(&anyhow::Error::new(e))
                )));
                return Ok(exit);
            }
        };
        for (phase, took) in &shared.timings {
            output::note!("{phase}: {:.1}s", took.as_secs_f64());
        }
        let opts = RunOptions {
            scenarios: scenarios.to_vec(),
            key: args.key,
            ..RunOptions::default()
        };
        let progress = |scenario: &str, phase: &str| output::note!("{scenario}: {phase}");
        let (output, cleanup) = meshtrust::kube::run_scenarios(shared, &opts, &progress).await;
        for name in &cleanup.logs_exported {
            output::note!("kind logs of `{name}` are in the artifacts directory");
        }
        let output = output?;
        finish(args, &output.report)
    })
}
