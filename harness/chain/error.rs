//! Everything that makes a chain or an expectation unusable as input.
//!
//! A chain that parses but is wrong is not an error: it is a failed check in a
//! [`Verdict`](super::Verdict). These errors are bad input (exit 2).

use std::path::PathBuf;

use crate::pki::PkiError;

/// What a user passes to `meshtrust verify`; shown after the problem as the fix.
const CHAIN_HINT: &str = "hint: CHAIN_FILE is the chain a workload serves: the PEM blocks printed by `openssl s_client -showcerts` or `meshtrust probe`, or one DER certificate";

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a certificate chain: {reason} ({CHAIN_HINT})", path.display())]
    BadChain { path: PathBuf, reason: String },
    #[error("the chain holds no certificate")]
    EmptyChain,
    #[error("certificate does not parse as X.509: {reason}")]
    BadCertificate { reason: String },
    #[error(
        "`{id}` is not a SPIFFE workload identity: {reason} (hint: write it as `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`)"
    )]
    BadSpiffeId { id: String, reason: &'static str },
    #[error(
        "`{value}` is not a duration (hint: write a number and a unit, as in `24h`, `90m`, `2160h` or `1h30m`)"
    )]
    BadDuration { value: String },
    #[error(transparent)]
    Bundle(#[from] PkiError),
}
