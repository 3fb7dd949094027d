//! rustls configurations for the mesh, all on aws-lc-rs: workload servers that
//! demand a client chain to the mesh's roots, sidecar clients that check the
//! server chain and its SPIFFE identity (secure naming), and a probe that records
//! what it is shown without trusting it.

use std::sync::Arc;

use rcgen::KeyPair;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::chain::path::{self, PathError, PathOptions, Purpose, Rules};

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The PKCS#8 DER of a key, for rustls. It stays in memory.
pub fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(key.serialize_der()).into()
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone())?;
    }
    Ok(store)
}

/// A server presenting `chain`. With `client_roots`, a client chain to one of them is
/// required (Envoy's inbound listener under mTLS); without, no client certificate is asked.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: &KeyPair,
    client_roots: Option<&[CertificateDer<'static>]>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, rustls::Error> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(root_store(roots)?),
                provider(),
            )
            .build()
            .map_err(|e| rustls::Error::General(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, private_key(key))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client checking the server with `verifier`, presenting `identity` (chain and key) if given.
pub fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<(Vec<CertificateDer<'static>>, &KeyPair)>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, private_key(key))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client that trusts `roots` for a DNS name (the workload agent calling istiod).
pub fn dns_client_config(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
) -> Result<ClientConfig, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(roots)?)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn verify_signature_12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls12_signature(
        message,
        cert,
        dss,
        &provider().signature_verification_algorithms,
    )
}

fn verify_signature_13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider().signature_verification_algorithms,
    )
}

/// The sidecar's check of a server: a path from the leaf through the presented
/// certificates to the mesh's roots, then the leaf's SPIFFE ID against the
/// expected service account (Istio's secure naming).
#[derive(Debug)]
pub struct MeshServerVerifier {
    roots: Vec<CertificateDer<'static>>,
    expected_id: String,
}

impl MeshServerVerifier {
    pub fn new(roots: Vec<CertificateDer<'static>>, expected_id: String) -> Self {
        MeshServerVerifier { roots, expected_id }
    }
}

impl ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let opts = PathOptions {
            at: OffsetDateTime::now_utc(),
            purpose: Purpose::ServerAuth,
            rules: Rules::Peer,
        };
        path::verify(end_entity, intermediates, &self.roots, &opts).map_err(|e| {
            rustls::Error::InvalidCertificate(match e {
                // What BoringSSL reports as CERTIFICATE_VERIFY_FAILED: unable to get local issuer.
                PathError::NoIssuer { .. } => CertificateError::UnknownIssuer,
                PathError::Expired { .. } => CertificateError::Expired,
                PathError::NotYetValid { .. } => CertificateError::NotValidYet,
                other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
            })
        })?;
        let ids = spiffe_ids(end_entity);
        if !ids.contains(&self.expected_id) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature_12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature_13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The `spiffe://` URIs of a certificate's SAN.
pub fn spiffe_ids(cert: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::URI(uri) = name
                    && uri.starts_with("spiffe://")
                {
                    ids.push((*uri).to_owned());
                }
            }
        }
    }
    ids
}
