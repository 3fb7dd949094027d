//! `meshtrust check DIR...`: a bundle's problems before istiod or the mesh finds them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::output::Format;
use meshtrust::check::{self, CheckOptions, IstioVersion};
use meshtrust::exit::Exit;

#[derive(Args)]
pub struct CheckArgs {
    /// cacerts directories (istiod layout or kubernetes.io/tls layout), one per cluster.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The Istio version whose istiod will load the bundle (MAJOR.MINOR).
    #[arg(long, default_value_t = IstioVersion::LATEST, value_parser = |s: &str| s.parse::<IstioVersion>())]
    istio_version: IstioVersion,
    /// The workload certificate TTL (istio-agent's SECRET_TTL), e.g. 24h, 90m.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    workload_ttl: Duration,
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let opts = CheckOptions {
        istio_version: args.istio_version,
        workload_ttl: args.workload_ttl,
        ..CheckOptions::default()
    };
    let report = check::check(&args.dirs, &opts)?;
    match args.format {
        Format::Text => print!("{}", check::render_text(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(report.exit(args.strict))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = meshtrust::chain::duration::parse(s).map_err(|e| e.to_string())?;
    Duration::try_from(d).map_err(|_| format!("`{s}` is negative"))
}
