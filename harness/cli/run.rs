//! `meshtrust run`: the conformance scenarios on a target, with reports.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use meshtrust::exit::Exit;
use meshtrust::mesh::LocalTarget;
use meshtrust::pki::KeyAlg;
use meshtrust::report;
use meshtrust::scenario::{self, RunOptions, Scenario};

#[derive(Args)]
pub struct RunArgs {
    /// Where the mesh runs: `local` (embedded, no Docker), `kind` or `kubeconfig` (need `--features e2e`).
    #[arg(long, value_enum, default_value_t = TargetKind::Local)]
    target: TargetKind,
    /// A scenario to run; repeat for several. Default: all of them.
    #[arg(long = "scenario", value_name = "NAME", value_parser = |s: &str| s.parse::<Scenario>())]
    scenarios: Vec<Scenario>,
    /// Write a JUnit XML report (one test case per scenario).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the JSON report.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write captured chains (PEM), the plugged bundles' public files and report.json here. Never keys.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Keep what the run made (the certificates directory; on kind, the clusters).
    #[arg(long)]
    keep: bool,
    /// Print the plan without touching anything (kind target).
    #[arg(long)]
    dry_run: bool,
    /// Key type of the generated roots and intermediates.
    #[arg(long, default_value = "rsa4096", value_parser = |s: &str| s.parse::<KeyAlg>())]
    key: KeyAlg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    Local,
    Kind,
    Kubeconfig,
}

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios.clone()
    };
    if args.target != TargetKind::Local {
        return run_cluster_target(&args, &scenarios);
    }
    if args.dry_run {
        bail!(
            "`--dry-run` plans a cluster run; the local target touches nothing outside this process (hint: `--target kind --dry-run`)"
        );
    }
    let workdir = if args.keep {
        let dir = tempfile::Builder::new()
            .prefix("meshtrust-run.")
            .tempdir()
            .context("cannot create the run directory")?
            .keep();
        eprintln!("certificates are kept in {}", dir.display());
        Some(dir)
    } else {
        None
    };
    let opts = RunOptions {
        scenarios,
        key: args.key,
        workdir,
        ..RunOptions::default()
    };
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
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
    let output = runtime.block_on(scenario::run(LocalTarget::new, &opts, &progress))?;
    bar.finish_and_clear();
    write_reports(&args, &output.report)?;
    print!("{}", report::render_summary(&output.report));
    Ok(if output.report.passed() {
        Exit::Conformant
    } else {
        Exit::NotConformant
    })
}

fn write_reports(args: &RunArgs, report: &report::RunReport) -> anyhow::Result<()> {
    if let Some(path) = &args.junit {
        meshtrust::pki::layout::write_atomic(path, report::to_junit(report).as_bytes(), 0o644)?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(report)?;
        meshtrust::pki::layout::write_atomic(path, json.as_bytes(), 0o644)?;
    }
    if let Some(dir) = &args.artifacts {
        report::write_artifacts(report, dir)?;
    }
    Ok(())
}

#[cfg(not(feature = "e2e"))]
fn run_cluster_target(_args: &RunArgs, _scenarios: &[Scenario]) -> anyhow::Result<Exit> {
    bail!(
        "this meshtrust was built without the kind target (hint: `cargo run --features e2e -- run --target kind`, or `cargo install --path . --features e2e`)"
    )
}

#[cfg(feature = "e2e")]
fn run_cluster_target(_args: &RunArgs, _scenarios: &[Scenario]) -> anyhow::Result<Exit> {
    bail!("the kind target is not wired into `meshtrust run` yet")
}
