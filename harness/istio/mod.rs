//! The model of Istio that every part of meshtrust shares: releases and the rules
//! each one has ([`version`]), how istiod reads PEM ([`gopem`]) and keys ([`key`]),
//! what it does with a `cacerts` bundle at start-up ([`load`]), which chain a sidecar
//! serves ([`served`]) and what a hot reload does ([`reload`]).
//!
//! `check`, `chain` (verify), the local target (`mesh`) and the kind target use it;
//! it imports nothing above it but the X.509 path and signature checks of `chain` and
//! the bundle files of `pki`. Where this model and Istio's own code disagree, the model
//! is wrong: the oracle tier (`scenarios/oracle.rs`, `oracle/`) runs Istio's code on
//! the same inputs.

pub mod gopem;
pub mod key;
pub mod load;
pub mod reload;
pub mod served;
pub mod version;

pub use load::{Detail, Evaluation, Incomplete, KeyProblem, Rule, RuleFailure, evaluate};
pub use version::IstioVersion;

#[cfg(test)]
mod tests;
