//! What a scenario saw while it ran: phases with their durations, observations,
//! captured chains, verdict snapshots, and the reasons it did not meet its
//! expectation. A scenario writes here; the runner turns it into a report.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;

use super::target::{Outcome, WorkloadRef};
use crate::chain::{Snapshot, Verdict};
use crate::report::{
    BundleArtifact, ChainArtifact, Observation, Observed, Phase, TrustBundleArtifact,
};

/// Called with (scenario, phase) as each phase starts, for progress displays.
pub type Progress<'a> = &'a (dyn Fn(&str, &str) + Send + Sync);

pub struct Recorder<'a> {
    pub(crate) scenario: &'static str,
    pub(crate) phases: Vec<Phase>,
    pub(crate) observations: Vec<Observation>,
    pub(crate) reasons: Vec<String>,
    pub(crate) chains: Vec<ChainArtifact>,
    pub(crate) bundles: Vec<BundleArtifact>,
    pub(crate) trust_bundles: Vec<TrustBundleArtifact>,
    bundle_dirs: Vec<PathBuf>,
    pub(crate) snapshots: Vec<(String, Snapshot)>,
    progress: Progress<'a>,
}

impl<'a> Recorder<'a> {
    pub fn new(scenario: &'static str, progress: Progress<'a>) -> Self {
        Recorder {
            scenario,
            phases: Vec::new(),
            observations: Vec::new(),
            reasons: Vec::new(),
            chains: Vec::new(),
            bundles: Vec::new(),
            trust_bundles: Vec::new(),
            bundle_dirs: Vec::new(),
            snapshots: Vec::new(),
            progress,
        }
    }

    /// Runs one step of the scenario, timing it.
    pub async fn phase<T>(&mut self, name: &str, step: impl Future<Output = T>) -> T {
        (self.progress)(self.scenario, name);
        tracing::info!(scenario = self.scenario, phase = name, "phase");
        let start = Instant::now();
        let out = step.await;
        self.phases.push(Phase {
            name: name.to_owned(),
            duration: start.elapsed(),
        });
        out
    }

    /// Records what was seen about `subject`.
    pub fn observe(&mut self, subject: impl Into<String>, observed: Observed) {
        self.observations.push(Observation::new(subject, observed));
    }

    /// Records a request's outcome: its HTTP status (and whether the server saw
    /// `identity`, the caller's SPIFFE id, in the body) or the refusal.
    pub fn request(
        &mut self,
        subject: &str,
        (from, to): (&WorkloadRef, &WorkloadRef),
        transport: crate::report::Transport,
        outcome: &Outcome,
        identity: Option<&str>,
    ) {
        let (status, peer_identity, refused) = match outcome {
            Outcome::Response { status, body } => (
                Some(*status),
                identity
                    .filter(|id| String::from_utf8_lossy(body).contains(id))
                    .map(str::to_owned),
                None,
            ),
            Outcome::Refused { reason } => (None, None, Some(reason.clone())),
        };
        self.observe(
            subject,
            Observed::Request {
                from: from.to_string(),
                to: to.to_string(),
                transport,
                status,
                peer_identity,
                refused,
            },
        );
    }

    /// Records a failed expectation; the scenario goes on so that the report is complete.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }

    /// `fail(reason)` unless `ok`.
    pub fn expect(&mut self, ok: bool, reason: impl FnOnce() -> String) {
        if !ok {
            self.fail(reason());
        }
    }

    /// Keeps the public files of a bundle the scenario used (read now: the run's
    /// directory may be gone by the time the report is written).
    pub fn bundle(&mut self, dir: &Path) {
        if !self.bundle_dirs.iter().any(|b| b == dir) {
            self.bundle_dirs.push(dir.to_owned());
            self.bundles.push(BundleArtifact::read(dir));
        }
    }

    /// Keeps `cluster`'s trust bundle as its workloads see it (the latest read wins).
    pub fn trust_bundle(&mut self, cluster: &str, pem: &[u8]) {
        let pem = String::from_utf8_lossy(pem).into_owned();
        match self.trust_bundles.iter_mut().find(|t| t.cluster == cluster) {
            Some(t) => t.pem = pem,
            None => self.trust_bundles.push(TrustBundleArtifact {
                cluster: cluster.to_owned(),
                pem,
            }),
        }
    }

    pub fn chain(&mut self, label: &str, chain: &[CertificateDer<'_>]) {
        self.chains.push(ChainArtifact {
            label: label.to_owned(),
            pem: chain.iter().map(crate::pki::to_pem).collect(),
        });
    }

    /// Keeps the verdict's checks and bottom line as observations and its redacted
    /// snapshot under `label`.
    pub fn verdict(&mut self, label: &str, verdict: &Verdict) {
        for check in &verdict.checks {
            self.observations.push(Observation::check(label, check));
        }
        self.observe(
            label,
            Observed::Verdict {
                certificates: verdict.length,
                bundle: verdict.bundle.clone(),
                conformant: verdict.conformant,
                failed: verdict.failures().map(|c| c.id.name().to_owned()).collect(),
            },
        );
        self.snapshots
            .push((label.to_owned(), Snapshot::of(verdict)));
    }

    pub fn elapsed(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}
