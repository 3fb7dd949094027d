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
    let mut first_key = None;
    for (index, item) in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes).enumerate() {
        let (kind, der) = item.map_err(|e| bad(format!("malformed PEM ({})", pem_error(&e))))?;
        if is_private_key(kind) {
            first_key.get_or_insert(index + 1);
        }
        if is_private_key(kind) && !certs.is_empty() {
            // Key material never belongs in a certificate file; say where, never what.
            return Err(bad(format!(
                "PEM block {} is a private key (after certificate {}): remove it; a certificate file must hold no key material, and the key should be treated as exposed",
                index + 1,
                certs.len()
            )));
        }
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
        let reason = if other.iter().copied().any(is_private_key) {
            "it holds a private key, not a certificate".to_string()
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            "the file is empty".to_string()
        } else {
            "no `-----BEGIN CERTIFICATE-----` block in it".to_string()
        };
        return Err(bad(reason));
    }
    if let Some(n) = first_key {
        // A key block before the first certificate (caught above only after one).
        return Err(bad(format!(
            "it holds a private key (PEM block {n}) beside its certificates: remove it; a certificate file must hold no key material, and the key should be treated as exposed"
        )));
    }
    Ok(certs)
}

fn is_private_key(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    )
}

/// A PEM framing error in words (the library's own `Display` prints markers as byte arrays).
pub fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "`-----END {}-----` is missing: the file is truncated",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => format!(
            "bad BEGIN line `{}`",
            String::from_utf8_lossy(line).trim_end()
        ),
        E::Base64Decode(reason) => format!("bad base64 inside a block: {reason}"),
        other => other.to_string(),
    }
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
