//! What a run tells its readers: the console summary, JSON, JUnit XML, and the
//! artifacts directory. Certificates only: no private key ever reaches a report.

mod artifacts;
mod console;
mod junit;

use std::time::Duration;

use serde::Serialize;

pub use artifacts::write_artifacts;
pub use console::render_summary;
pub use junit::to_junit;

/// One `meshtrust run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub target: String,
    /// RFC 3339.
    pub started: String,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    pub scenarios: Vec<ScenarioReport>,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.passed)
    }
}

/// One scenario: whether it met its expectation, why not, and what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    /// `conformant`, or the named reason a negative scenario must fail with.
    pub expectation: String,
    pub passed: bool,
    /// Why it did not meet its expectation; empty when it passed.
    pub reasons: Vec<String>,
    /// What was observed, in order (verdict lines, refusals, HTTP outcomes).
    pub observations: Vec<String>,
    pub phases: Vec<Phase>,
    /// Captured chains, PEM, by label (`cluster1/foo/httpbin`).
    pub chains: Vec<ChainArtifact>,
    /// The cacerts directories the scenario plugged in (their public files are artifacts).
    pub bundles: Vec<std::path::PathBuf>,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainArtifact {
    pub label: String,
    pub pem: String,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
