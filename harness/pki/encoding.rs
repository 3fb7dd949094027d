//! PEM and DER: reading certificates and keys, and checking a key against a certificate.

use std::path::Path;

use rcgen::KeyPair;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::PkiError;

/// Every `CERTIFICATE` block of a PEM file, in order; at least one, each a parseable X.509 certificate.
pub fn parse_certs(bytes: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let bad = |reason: String| PkiError::BadCertificate {
        path: path.to_owned(),
        reason,
    };
    let mut certs = Vec::new();
    let mut other = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = item.map_err(|e| bad(format!("malformed PEM ({e})")))?;
        match kind {
            SectionKind::Certificate => {
                let n = certs.len() + 1;
                if let Err(e) = x509_parser::parse_x509_certificate(&der) {
                    return Err(bad(format!(
                        "certificate {n} does not parse as X.509 ({e})"
                    )));
                }
                certs.push(CertificateDer::from(der));
            }
            other_kind => other.push(other_kind),
        }
    }
    if certs.is_empty() {
        let reason = if other.iter().any(|k| {
            matches!(
                k,
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
            )
        }) {
            "it holds a private key, not a certificate".to_string()
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            "the file is empty".to_string()
        } else {
            "no `-----BEGIN CERTIFICATE-----` block in it".to_string()
        };
        return Err(bad(reason));
    }
    Ok(certs)
}

/// Certificates from PEM, or from one DER certificate when the bytes are not PEM.
pub fn parse_certs_pem_or_der(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    if bytes.first() == Some(&0x30) && x509_parser::parse_x509_certificate(bytes).is_ok() {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    parse_certs(bytes, path)
}

/// The private key of a PEM file: PKCS#8, PKCS#1 RSA or SEC1 EC, as istiod accepts.
pub fn parse_key(bytes: &[u8], path: &Path) -> Result<KeyPair, PkiError> {
    let bad = |reason: String| PkiError::BadKey {
        path: path.to_owned(),
        reason,
    };
    if contains_label(bytes, "ENCRYPTED PRIVATE KEY") {
        return Err(bad("it is encrypted; istiod needs an unencrypted key (hint: `openssl pkey -in KEY -out KEY.plain`)".into()));
    }
    let der = PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            bad("the file is empty".into())
        } else {
            bad(format!(
                "no PKCS#8, PKCS#1 or SEC1 private key block in it ({e})"
            ))
        }
    })?;
    KeyPair::try_from(&der).map_err(|e| bad(format!("the key does not parse ({e})")))
}

/// Whether `key` is the private half of the certificate's public key.
pub fn key_matches_cert(key: &KeyPair, cert: &CertificateDer<'_>) -> bool {
    match x509_parser::parse_x509_certificate(cert) {
        Ok((_, x509)) => x509.public_key().subject_public_key.data.as_ref() == key.public_key_raw(),
        Err(_) => false,
    }
}

pub fn to_pem(der: &CertificateDer<'_>) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.as_ref().to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

pub fn contains_label(bytes: &[u8], label: &str) -> bool {
    let needle = format!("-----BEGIN {label}-----");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}
