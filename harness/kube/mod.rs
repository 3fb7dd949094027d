//! The kind target (feature `e2e`): real clusters, real Istio, the in-pod probe.
//!
//! One concept per module, in the order a run uses them:
//! [`tools`] (preflight) -> [`process`] (running CLIs) -> [`kind`] (clusters and their guard)
//! -> [`cluster`] (kube clients, owned namespaces) -> [`plugin`] (cacerts) -> [`istio`]
//! (install, upgrade, CA mode) -> [`workloads`] (httpbin, sleep, PeerAuthentication) ->
//! [`probe`] (the chain, captured in the pod) with [`registry`] for distroless proxies.
//! [`plan`] prints all of it without running anything: the scenarios themselves drive a plan
//! target that emits the kind target's steps verb by verb, and a test runs a whole kind run
//! against recording fakes and compares it with that plan; [`wait`] is every poll's deadline.
//!
//! Nothing here decides a verdict: the target returns data, `chain` and `scenario` judge.

pub mod cluster;
pub mod config;
pub mod error;
#[cfg(test)]
mod fake;
pub mod istio;
pub mod kind;
#[cfg(test)]
mod mock;
pub mod plan;
pub mod plugin;
pub mod probe;
pub mod process;
#[cfg(test)]
mod recorded;
pub mod registry;
pub mod run;
pub mod target;
pub mod tools;
pub mod wait;
pub mod workloads;

pub use config::{KindRun, ProbeDelivery};
pub use error::KubeError;
pub use plan::{
    Plan, PlanStep, PlanTarget, PlannedClusters, dry_run_plan, plan_run, planned_commands,
};
pub use run::run_scenarios;
pub use target::{KindCluster, KindClusters, KindTarget};
pub use tools::{PreflightError, Scope, ToolSearch, Toolbox, preflight, preflight_for};
