//! `meshtrust check DIR...`: a bundle's problems before istiod or the mesh finds them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
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

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
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

/// `24h`, `90m`, `30s`, `2d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (expected e.g. `24h`, `90m`, `2d`)");
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}
