//! The `meshtrust` command: parse, call the library, print. No logic lives here.

mod certs;
mod check;
mod output;
mod run;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meshtrust::exit::Exit;

/// Conformance harness for Istio's plug-in CA certificates.
///
/// Generates the root and per-cluster intermediates the way Istio's
/// tools/certs Makefile does, and checks that the mesh really serves them.
#[derive(Parser)]
#[command(
    name = "meshtrust",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a root CA and per-cluster intermediates (Istio's Makefile targets).
    #[command(subcommand)]
    Certs(certs::Certs),
    /// Report every problem of cacerts bundles before istiod or the mesh does.
    Check(check::CheckArgs),
    /// Capture the certificate chain a TLS server presents, without trusting it (like `openssl s_client -showcerts`).
    Probe(meshtrust_probe::cli::ProbeArgs),
    /// Run the conformance scenarios (default: all, on the embedded local mesh) and report.
    Run(run::RunArgs),
    /// Check a served chain against the plugged cacerts (exit 0 conformant, 1 not, 2 bad input).
    Verify(verify::Verify),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Certs(c) => certs::run(c),
        Command::Check(c) => check::run(c),
        Command::Run(r) => run::run(r),
        Command::Probe(p) => return ExitCode::from(meshtrust_probe::cli::run(p)),
        Command::Verify(v) => verify::run(v),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            Exit::BadInput.into()
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "meshtrust=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
