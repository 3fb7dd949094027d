//! X.509 path building and signature checks, below everything that judges a chain:
//! the model of Istio ([`crate::istio`]) verifies with Go's rules, `chain` and `check`
//! with a peer's. Nothing here knows about Istio.

pub mod path;
pub mod signature;
