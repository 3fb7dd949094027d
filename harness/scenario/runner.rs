//! Runs scenarios on a target and reports. Certificates are made once per run
//! (every key in parallel); each scenario gets a fresh target and tears it down.

use std::path::{Path, PathBuf};
use std::time::Instant;

use time::format_description::well_known::Rfc3339;

use super::catalog::Scenario;
use super::certs::RunCerts;
use super::record::{Progress, Recorder};
use super::target::Target;
use crate::chain::Snapshot;
use crate::pki::{KeyAlg, PkiError};
use crate::report::{Observed, Phase, RunReport, ScenarioReport};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenarios: Vec<Scenario>,
    /// Key type of the roots and intermediates (the Makefile's RSA 4096 by default).
    pub key: KeyAlg,
    /// Where the certificates go; a temporary directory (removed after the run) if `None`.
    pub workdir: Option<PathBuf>,
    /// Run the scenarios at once, each on its own target (the local target: yes;
    /// kind clusters are too heavy to run seven at a time).
    pub concurrent: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            scenarios: Scenario::ALL.to_vec(),
            key: KeyAlg::Rsa4096,
            workdir: None,
            concurrent: true,
        }
    }
}

/// The report, plus each scenario's verdict snapshots by label.
#[derive(Debug)]
pub struct RunOutput {
    pub report: RunReport,
    pub snapshots: Vec<(Scenario, String, Snapshot)>,
}

impl RunOutput {
    pub fn snapshot(&self, scenario: Scenario, label: &str) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .find(|(s, l, _)| *s == scenario && l == label)
            .map(|(_, _, snap)| snap)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot make the run's certificates: {0}")]
    Certs(#[from] PkiError),
}

/// Runs `opts.scenarios` in order, each on a target made by `make_target`.
pub async fn run<T: Target>(
    make_target: impl Fn() -> T,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunOutput, RunError> {
    let started = time::OffsetDateTime::now_utc();
    let clock = Instant::now();
    let tmp;
    let dir: &Path = match &opts.workdir {
        Some(d) => d,
        None => {
            tmp = tempfile::Builder::new()
                .prefix("meshtrust-run.")
                .tempdir()
                .map_err(PkiError::io(
                    "create a temporary directory in",
                    std::env::temp_dir(),
                ))?;
            tmp.path()
        }
    };
    progress("run", "certificates");
    let key = opts.key;
    let certs_dir = dir.to_owned();
    let certs = tokio::task::spawn_blocking(move || RunCerts::generate(&certs_dir, key))
        .await
        .expect("certificate generation does not panic")?;

    let one = |scenario: Scenario| {
        let mut target = make_target();
        let certs = &certs;
        async move {
            let mut rec = Recorder::new(scenario.name(), progress);
            let start = Instant::now();
            if let Err(e) = scenario.run(&mut target, certs, &mut rec).await {
                rec.fail(format!("the target could not carry out a step: {e}"));
            }
            if !rec.reasons.is_empty() {
                target.keep_evidence(scenario.name()).await;
            }
            let milestones: Vec<Phase> = target
                .milestones()
                .into_iter()
                .map(|(name, duration)| Phase { name, duration })
                .collect();
            if let Err(e) = target.teardown().await {
                rec.observe(
                    "teardown",
                    Observed::Note {
                        text: e.to_string(),
                    },
                );
            }
            (scenario, target.name(), rec, milestones, start.elapsed())
        }
    };
    let finished = if opts.concurrent {
        futures_util::future::join_all(opts.scenarios.iter().map(|&s| one(s))).await
    } else {
        let mut done = Vec::new();
        for &s in &opts.scenarios {
            done.push(one(s).await);
        }
        done
    };

    let mut scenarios = Vec::new();
    let mut snapshots = Vec::new();
    let mut target_name = "";
    for (scenario, name, mut rec, milestones, duration) in finished {
        target_name = name;
        snapshots.extend(
            rec.snapshots
                .drain(..)
                .map(|(label, snap)| (scenario, label, snap)),
        );
        scenarios.push(ScenarioReport {
            name: scenario.name().to_owned(),
            description: scenario.description().to_owned(),
            expectation: scenario.expectation().to_owned(),
            passed: rec.reasons.is_empty(),
            reasons: rec.reasons,
            observations: rec.observations,
            phases: rec.phases,
            milestones,
            chains: rec.chains,
            bundles: rec.bundles,
            trust_bundles: rec.trust_bundles,
            duration,
        });
    }
    Ok(RunOutput {
        report: RunReport {
            target: target_name.to_owned(),
            started: started.format(&Rfc3339).unwrap_or_default(),
            duration: clock.elapsed(),
            scenarios,
        },
        snapshots,
    })
}
