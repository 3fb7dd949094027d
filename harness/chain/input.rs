//! The captured chain as a file: PEM blocks (with any text between them, as
//! `openssl s_client -showcerts` prints), or one DER certificate; `-` is stdin.
//!
//! The PEM reading itself is `pki`'s; this only turns its errors into the
//! verify command's wording.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

use super::ChainError;
use crate::pki::{self, PkiError};

/// Reads the chain at `path` (`-`: standard input), in served order.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ChainError> {
    let (bytes, shown) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|source| ChainError::Io {
                path: PathBuf::from("<stdin>"),
                cause: source,
            })?;
        (bytes, PathBuf::from("<stdin>"))
    } else {
        let bytes = std::fs::read(path).map_err(|source| ChainError::Io {
            path: path.to_owned(),
            cause: source,
        })?;
        (bytes, path.to_owned())
    };
    parse_chain(&bytes, &shown)
}

/// Parses a chain; `origin` only names it in errors.
pub fn parse_chain(
    bytes: &[u8],
    origin: &Path,
) -> Result<Vec<CertificateDer<'static>>, ChainError> {
    let bad = |reason: String| ChainError::BadChain {
        path: origin.to_owned(),
        reason,
    };
    match pki::parse_certs_pem_or_der(bytes, origin) {
        Ok(certs) => Ok(certs),
        // Binary that starts like a DER SEQUENCE is a DER certificate gone wrong,
        // not a PEM file without blocks: say so.
        Err(PkiError::BadCertificate { .. })
            if bytes.first() == Some(&0x30) && !pki::contains_label(bytes, "CERTIFICATE") =>
        {
            let reason = match x509_parser::parse_x509_certificate(bytes) {
                Err(e) => format!("it looks like DER but does not parse as X.509 ({e})"),
                Ok(_) => "it looks like DER but does not parse as X.509".into(),
            };
            Err(bad(reason))
        }
        Err(PkiError::BadCertificate { reason, .. }) => Err(bad(reason)),
        Err(other) => Err(ChainError::Bundle(other)),
    }
}
