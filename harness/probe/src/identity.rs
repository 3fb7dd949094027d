//! The client certificate the probe can present, and the record of whether the server asked.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ProbeError;

/// A client certificate chain (leaf first) and its private key, checked to match.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    key: Arc<CertifiedKey>,
}

impl ClientIdentity {
    /// Reads PEM files; errors name the file at fault.
    pub fn from_files(cert_chain: &Path, key: &Path) -> Result<Self, ProbeError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| ProbeError::ReadClientIdentity {
                what,
                path: path.display().to_string(),
                source,
            })
        };
        let cert_pem = read("certificate", cert_chain)?;
        let key_pem = read("key", key)?;
        Self::parse(
            &cert_pem,
            &cert_chain.display().to_string(),
            &key_pem,
            &key.display().to_string(),
        )
    }

    /// Takes PEM bytes: a certificate chain (leaf first) and a PKCS#8, PKCS#1 or SEC1 key.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, ProbeError> {
        Self::parse(cert_chain_pem, "<pem>", key_pem, "<pem>")
    }

    fn parse(
        cert_pem: &[u8],
        cert_name: &str,
        key_pem: &[u8],
        key_name: &str,
    ) -> Result<Self, ProbeError> {
        let bad = |what, path: &str, reason: String| ProbeError::BadClientIdentity {
            what,
            path: path.to_owned(),
            reason,
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", cert_name, pem_reason(e)))?;
        if chain.is_empty() {
            return Err(bad(
                "certificate",
                cert_name,
                "no `CERTIFICATE` pem block".to_owned(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            bad(
                "key",
                key_name,
                match e {
                    pem::Error::NoItemsFound => "no private key pem block".to_owned(),
                    e => pem_reason(e),
                },
            )
        })?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            let reason = match e {
                rustls::Error::InconsistentKeys(_) => {
                    format!("it does not match the certificate `{cert_name}`")
                }
                e => e.to_string(),
            };
            bad("key", key_name, reason)
        })?;
        Ok(Self { key: Arc::new(key) })
    }
}

fn pem_reason(error: pem::Error) -> String {
    match error {
        pem::Error::NoItemsFound => "no `CERTIFICATE` pem block".to_owned(),
        e => format!("not valid pem ({e})"),
    }
}

/// Offers the client identity, if any, and notes that the server asked for one: rustls calls
/// `resolve` exactly when a CertificateRequest arrives.
#[derive(Debug)]
pub(crate) struct RecordingClientAuth {
    identity: Option<Arc<CertifiedKey>>,
    requested: AtomicBool,
    presented: AtomicBool,
}

impl RecordingClientAuth {
    pub fn new(identity: Option<&ClientIdentity>) -> Arc<Self> {
        Arc::new(Self {
            identity: identity.map(|i| i.key.clone()),
            requested: AtomicBool::new(false),
            presented: AtomicBool::new(false),
        })
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    pub fn presented(&self) -> bool {
        self.presented.load(Ordering::Relaxed)
    }
}

impl ResolvesClientCert for RecordingClientAuth {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::Relaxed);
        let key = self.identity.clone()?;
        // rustls sends an empty Certificate when our key cannot sign with any scheme the
        // server accepts; that is not presenting one.
        let usable = key.key.choose_scheme(sigschemes).is_some();
        self.presented.store(usable, Ordering::Relaxed);
        Some(key)
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}
