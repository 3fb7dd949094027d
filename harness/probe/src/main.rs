use clap::Parser;
use meshtrust_probe::cli::{ProbeArgs, run};

#[derive(Parser)]
#[command(name = "meshtrust-probe", version, about)]
struct Cli {
    #[command(flatten)]
    args: ProbeArgs,
}

fn main() -> std::process::ExitCode {
    run(Cli::parse().args).into()
}
