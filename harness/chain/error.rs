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
    #[error("cannot read `{}`: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    /// Every message of an error's chain, as a reader that walks `source()` prints them.
    fn chain_text(e: &dyn std::error::Error) -> String {
        let mut parts = vec![e.to_string()];
        let mut cur = e.source();
        while let Some(c) = cur {
            parts.push(c.to_string());
            cur = c.source();
        }
        parts.join(": ")
    }

    #[test]
    fn an_unreadable_chain_names_its_path_and_the_os_error_once() {
        let missing = std::path::Path::new("/nonexistent/meshtrust/chain.pem");
        let err = crate::chain::read_chain(missing).unwrap_err();
        let text = chain_text(&err);
        assert!(
            text.starts_with("cannot read `/nonexistent/meshtrust/chain.pem`: "),
            "{text}"
        );
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
        // The cause is in the message, so it is not a `source()` as well.
        assert!(err.source().is_none());
    }
}
