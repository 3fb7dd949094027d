//! The captured chain: parsing, relating it to a plugged bundle, verifying it,
//! and its redacted snapshot.
//!
//! Flow: [`read_chain`] -> [`relate()`] -> [`evaluate`] -> [`render`] or [`Snapshot`].
//! [`verify_chain`] does relate and evaluate in one call.

pub mod cert;
/// Re-exported from [`crate::x509`], where they sit below `istio` and `chain`.
pub use crate::x509::{path, signature};
pub mod duration;
mod error;
pub mod input;
pub mod relate;
pub mod render;
pub mod snapshot;
pub mod spiffe;
pub mod verdict;

pub use cert::{BasicConstraintsInfo, CertInfo, KeyInfo, KeyUsageInfo, SubjectAltNames};
pub use error::ChainError;
pub use input::{parse_chain, read_chain};
pub use relate::{IssuerLink, Plugged, PluggedName, Related, RelatedCert, Role, relate};
pub use snapshot::Snapshot;
pub use spiffe::SpiffeId;
pub use verdict::{Check, CheckId, Expectations, Status, Verdict, evaluate};

use rustls_pki_types::CertificateDer;

use crate::pki::Bundle;

/// Relates `chain` to `bundle` (naming certificates of `others` too) and runs every check.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    bundle: &Bundle,
    others: &[Bundle],
    expect: &Expectations,
) -> Result<Verdict, ChainError> {
    Ok(evaluate(relate(chain, bundle, others)?, expect))
}
