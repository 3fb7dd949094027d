//! The `meshtrust` command: parse, call the library, print. No logic lives here.

mod certs;
mod check;
mod output;
mod run;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use meshtrust::exit::Exit;

/// Conformance harness for Istio's plug-in CA certificates.
///
/// Generates the root and per-cluster intermediates the way Istio's
/// tools/certs Makefile does, and checks that the mesh really serves them.
///
/// Exit codes: 0 ok (conformant), 1 a conformance check failed, 2 bad input (a flag,
/// a file) or a missing tool. Durations (`--workload-ttl`, `--expect-ttl`, `--timeout`)
/// are a number and a unit: `500ms`, `1.5s`, `90m`, `24h`, `1h30m`, `3650d`.
#[derive(Parser)]
#[command(
    name = "meshtrust",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// No progress and no notes on stderr; results, warnings and errors still print.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// When to colour the output: `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = output::ColorWhen::Auto, value_name = "WHEN")]
    color: output::ColorWhen,
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
    /// Print a shell completion script, e.g. `meshtrust completions bash > /etc/bash_completion.d/meshtrust`.
    ///
    /// bash: `source <(meshtrust completions bash)`; zsh: `meshtrust completions zsh >
    /// "${fpath[1]}/_meshtrust"`; fish: `meshtrust completions fish >
    /// ~/.config/fish/completions/meshtrust.fish`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    output::set_quiet(cli.quiet);
    cli.color.apply();
    init_tracing(cli.verbose, cli.quiet, cli.color.ansi_on_stderr());
    // Which flags were given on the command line (not defaults): some are refused or
    // warned about when they would be ignored.
    let sub = matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    let result = match cli.command {
        Command::Certs(c) => certs::run(c, &sub),
        Command::Check(c) => check::run(c),
        Command::Run(r) => run::run(r, &sub),
        Command::Probe(p) => return ExitCode::from(meshtrust_probe::cli::run(p)),
        Command::Verify(v) => verify::run(v),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "meshtrust",
                &mut std::io::stdout(),
            );
            Ok(Exit::Conformant)
        }
    };
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            let message = output::render_error(&err);
            // A caller that asked for JSON reads the error as JSON too (on stdout, where
            // the document would have been), and still sees it on stderr.
            let json = sub
                .try_get_raw("format")
                .ok()
                .flatten()
                .and_then(|mut v| v.next())
                .is_some_and(|v| v == "json");
            if json {
                meshtrust::console::out(&format!(
                    "{}\n",
                    meshtrust::report::error_json(&message, 2)
                ));
            }
            meshtrust::console::err(&output::paint(&format!("error: {message}\n")));
            Exit::BadInput.into()
        }
    }
}

/// Log lines on stderr: warnings by default (errors only with `-q`), more with `-v`; coloured
/// as `--color` says.
fn init_tracing(verbose: u8, quiet: bool, ansi: bool) {
    let default = match verbose {
        0 if quiet => "error",
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
        .with_ansi(ansi)
        .init();
}
