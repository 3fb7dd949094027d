//! Runs the `meshtrust-probe` binary and keeps everything a failure message needs.

use std::fmt;
use std::process::Command;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_meshtrust-probe");

pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

pub fn run_probe<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    run_bin(BIN, args)
}

pub fn run_bin<I, S>(bin: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let started = Instant::now();
    let out = Command::new(bin)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{bin}`: {e}"));
    Run {
        args,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

impl Run {
    /// Asserts the exit code, showing the whole run if it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        assert!(
            !self.stderr.contains("panicked"),
            "the probe panicked:\n{self}"
        );
        self
    }

    /// Asserts stderr verbatim: what users read is part of the contract.
    pub fn expect_stderr(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr, expected, "unexpected stderr:\n{self}");
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: meshtrust-probe {}", self.args.join(" "))?;
        writeln!(f, "exit code: {:?} after {:?}", self.code, self.elapsed)?;
        writeln!(f, "--- stdout\n{}", self.stdout)?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}
