//! meshtrust: a conformance harness for Istio's plug-in CA certificates.
//!
//! Data flows one way: [`pki`] (certificates on disk) -> a target ([`mesh`] locally,
//! `kube` on kind) -> [`chain`] (the captured chain and its verdict) -> [`report`].

pub mod chain;
pub mod check;
pub mod exit;
pub mod istio;
#[cfg(feature = "e2e")]
pub mod kube;
pub mod mesh;
pub mod pki;
pub mod report;
pub mod scenario;
