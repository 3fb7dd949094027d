//! meshtrust's probe: capture the certificate chain a TLS server presents, in order and without
//! trusting it, the way `openssl s_client -showcerts` does, but as a small static binary and a
//! library, and with a verdict on client authentication (ISTIO-FACTS §6).
//!
//! Blocking std I/O on purpose: the probe runs inside a pod for one connection.

pub mod cli;

mod capture;
mod deadline;
mod duration;
mod error;
mod identity;
mod options;
mod session;
mod target;
mod verifier;

pub use capture::{Capture, ClientAuthOutcome};
pub use error::{Phase, ProbeError};
pub use identity::ClientIdentity;
pub use options::{DEFAULT_TIMEOUT, ProbeOptions, TlsVersions};
pub use session::probe;
