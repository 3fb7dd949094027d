//! The local target: an embedded, istiod-compatible mesh.
//!
//! One [`cluster::Cluster`] is an istiod (the CA of [`ca`] loaded by the rules of
//! [`istiod`], serving Istio's CA API over TLS in [`grpc`]) plus sidecar-like
//! [`workload`]s serving mTLS on loopback. [`LocalTarget`] drives several of them
//! through the scenario interface.

pub mod authority;
pub mod ca;
pub mod cluster;
pub mod grpc;
pub mod istiod;
mod local;
pub mod policy;
pub mod tls;

pub mod workload;

pub use ca::{Identity, IssueError, Signer};
pub use istiod::{Loaded, Refusal, Rule};
pub use local::LocalTarget;
