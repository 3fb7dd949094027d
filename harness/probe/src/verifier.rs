//! A server certificate verifier that trusts nothing and records everything.
//!
//! The probe's job is to show the chain a server presents, right or wrong, so the chain itself is
//! accepted unexamined (the `chain` module judges it later against the plugged bundle). What is
//! still checked is the handshake signature: it proves the peer holds the leaf's private key, so
//! a captured chain cannot be a replay of someone else's certificates.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug, Default)]
struct Seen {
    chain: Option<Vec<CertificateDer<'static>>>,
    signature_valid: bool,
}

#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Seen>,
}

impl RecordingVerifier {
    pub fn new(provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(Self {
            algorithms: provider.signature_verification_algorithms,
            seen: Mutex::default(),
        })
    }

    /// The chain as presented, once the server has also signed the handshake with the leaf's
    /// key. A chain without a valid signature is not a capture.
    pub fn proven_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.chain.clone().filter(|_| seen.signature_valid)
    }

    fn record_signature(
        &self,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if result.is_ok() {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.signature_valid = true;
        }
        result
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|cert| cert.clone().into_owned())
            .collect();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.chain = Some(chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.record_signature(rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.record_signature(rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rustls::internal::msgs::codec::{Codec, Reader};
    use rustls_pki_types::pem::PemObject;

    use super::*;

    const MESSAGE: &[u8] = b"the bytes a server signs in its handshake";

    /// A P-256 certificate and an ECDSA signature of `MESSAGE` by its key, made by openssl so
    /// the check is against an independent signer.
    struct Signed {
        cert: CertificateDer<'static>,
        signature: Vec<u8>,
    }

    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("this test needs `openssl` on PATH");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn signed_by_openssl() -> Signed {
        // Tests run in parallel threads: one directory per call.
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "meshtrust-probe-verifier-{}-{call}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("message"), MESSAGE).unwrap();
        #[rustfmt::skip]
        openssl(&dir, &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=signer", "-days", "1"]);
        openssl(
            &dir,
            &[
                "dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "message",
            ],
        );
        let signed = Signed {
            cert: CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap(),
            signature: std::fs::read(dir.join("sig")).unwrap(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        signed
    }

    fn dss(signature: &[u8]) -> DigitallySignedStruct {
        let mut wire = Vec::new();
        SignatureScheme::ECDSA_NISTP256_SHA256.encode(&mut wire);
        wire.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        wire.extend_from_slice(signature);
        DigitallySignedStruct::read(&mut Reader::init(&wire)).unwrap()
    }

    fn verifier() -> Arc<RecordingVerifier> {
        RecordingVerifier::new(&rustls::crypto::aws_lc_rs::default_provider())
    }

    fn present(verifier: &RecordingVerifier, cert: &CertificateDer<'static>) {
        let name = ServerName::try_from("probe.test").unwrap();
        verifier
            .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .expect("the recording verifier accepts any chain");
    }

    #[test]
    fn accepts_any_chain_but_keeps_it_back_until_the_handshake_signature_verifies() {
        let garbage = CertificateDer::from(b"not even der".to_vec());
        let intermediate = CertificateDer::from(b"also garbage".to_vec());
        let verifier = verifier();
        let name = ServerName::try_from("probe.test").unwrap();
        verifier
            .verify_server_cert(
                &garbage,
                std::slice::from_ref(&intermediate),
                &name,
                &[],
                UnixTime::now(),
            )
            .unwrap();
        assert_eq!(verifier.proven_chain(), None);
    }

    #[test]
    fn a_valid_tls12_and_tls13_signature_proves_the_chain() {
        let signed = signed_by_openssl();
        for tls13 in [false, true] {
            let verifier = verifier();
            present(&verifier, &signed.cert);
            let dss = dss(&signed.signature);
            let result = if tls13 {
                verifier.verify_tls13_signature(MESSAGE, &signed.cert, &dss)
            } else {
                verifier.verify_tls12_signature(MESSAGE, &signed.cert, &dss)
            };
            result.unwrap_or_else(|e| panic!("tls13={tls13}: {e}"));
            assert_eq!(verifier.proven_chain(), Some(vec![signed.cert.clone()]));
        }
    }

    #[test]
    fn a_bad_signature_is_an_error_and_proves_nothing() {
        let signed = signed_by_openssl();
        let mut corrupted = signed.signature.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0x01;
        for tls13 in [false, true] {
            let verifier = verifier();
            present(&verifier, &signed.cert);
            for (message, signature) in [
                (MESSAGE, &corrupted),
                (&b"another message"[..], &signed.signature),
            ] {
                let dss = dss(signature);
                let result = if tls13 {
                    verifier.verify_tls13_signature(message, &signed.cert, &dss)
                } else {
                    verifier.verify_tls12_signature(message, &signed.cert, &dss)
                };
                assert!(result.is_err(), "tls13={tls13}: a bad signature verified");
            }
            assert_eq!(verifier.proven_chain(), None);
        }
    }
}
