//! meshtrust: a conformance harness for Istio's plug-in CA certificates.
//!
//! Data flows one way: [`pki`] (certificates on disk) -> a target ([`mesh`] locally,
//! `kube` on kind) -> [`chain`] (the captured chain and its verdict) -> [`report`].
//! Beside the flow and below every step that needs it: [`x509`] (path building and
//! signatures) and [`istio`], the one model of istiod that `check`, `chain`, `mesh` and
//! `kube` share and that the oracle tier holds to Istio's own code.

pub mod chain;
pub mod check;
pub mod console;
#[cfg(feature = "istiod")]
pub mod control_plane;
pub mod exit;
pub mod istio;
#[cfg(feature = "e2e")]
pub mod kube;
pub mod mesh;
pub mod pki;
pub mod report;
pub mod scenario;
pub mod x509;
