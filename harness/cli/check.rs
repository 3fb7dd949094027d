//! `meshtrust check DIR...`: a bundle's problems before istiod or the mesh finds them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::output::{self, Format, shell_word};
use meshtrust::check::{self, CheckOptions, IstioVersion};
use meshtrust::exit::Exit;

#[derive(Args)]
pub struct CheckArgs {
    /// cacerts directories (istiod layout or kubernetes.io/tls layout), one per cluster.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The Istio release whose istiod will load the bundle: a minor line (`1.30`: its newest
    /// patch's rules) or a patch (`1.26.0`); 1.24 to 1.32.
    #[arg(long, value_name = "VERSION", default_value_t = IstioVersion::LATEST, value_parser = IstioVersion::parse_known)]
    istio_version: IstioVersion,
    /// The workload certificate TTL (istio-agent's SECRET_TTL), above zero: e.g. `24h`, `90m`, `1h30m`.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = output::parse_positive_duration, allow_hyphen_values = true)]
    workload_ttl: Duration,
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    for dir in &args.dirs {
        refuse_parent_of_bundles(dir)?;
    }
    let opts = CheckOptions {
        istio_version: args.istio_version,
        workload_ttl: args.workload_ttl,
        ..CheckOptions::default()
    };
    let report = check::check(&args.dirs, &opts)?;
    match args.format {
        Format::Text => {
            meshtrust::console::out(&output::paint(&check::render_text(&report)));
        }
        Format::Json => {
            meshtrust::console::out(&format!("{}\n", report.to_json(args.strict)));
        }
    }
    Ok(report.exit(args.strict))
}

/// The files that make a directory a cacerts bundle rather than the parent of some (the
/// parent `certs cacerts` writes holds root-cert.pem and root-key.pem only).
const SIGNING_FILES: [&str; 4] = [
    meshtrust::pki::layout::CA_CERT,
    meshtrust::pki::layout::CA_KEY,
    meshtrust::pki::layout::CERT_CHAIN,
    meshtrust::pki::TLS_CRT,
];

/// `check certs` where `certs` holds the cluster directories: say which ones were meant.
fn refuse_parent_of_bundles(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() || SIGNING_FILES.iter().any(|f| dir.join(f).exists()) {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut bundles: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && SIGNING_FILES.iter().any(|f| p.join(f).exists()))
        .collect();
    if bundles.is_empty() {
        return Ok(());
    }
    bundles.sort();
    let listed: Vec<_> = bundles
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect();
    let words: Vec<_> = bundles.iter().map(|p| shell_word(p)).collect();
    bail!(
        "`{}` is not a cacerts directory but holds {}: {} (hint: `meshtrust check {}`)",
        dir.display(),
        if bundles.len() == 1 { "one" } else { "some" },
        listed.join(", "),
        words.join(" ")
    )
}
