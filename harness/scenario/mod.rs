//! Scenarios and the interface they drive: a target speaks the doc's verbs
//! (plug in, install, deploy, STRICT, capture, request, tear down) and returns
//! data; verdicts are made from that data by `chain` and the scenarios.

pub mod catalog;
pub mod certs;
pub mod record;
pub mod runner;
pub mod target;

pub use catalog::Scenario;
pub use certs::RunCerts;
pub use runner::{RunError, RunOptions, RunOutput, run};
pub use target::{
    App, CaSource, CapturedChain, Handshake, InstallOptions, InstallOutcome, IstioVersion,
    Milestone, Mode, Outcome, Target, TargetError, Transport, UpgradeOptions, WorkloadRef,
};
