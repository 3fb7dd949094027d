//! Does `issuer` sign `child`? X.509 signature checks with aws-lc-rs.

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{self as oids, Oid};

/// How a certificate is signed, as far as a verifier cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStrength {
    /// SHA-256 or better.
    Strong,
    /// SHA-1 or MD5: Go (istiod) and current TLS stacks reject these.
    Weak,
    /// An algorithm meshtrust does not know.
    Unknown,
}

pub fn strength(oid: &Oid<'_>) -> SignatureStrength {
    if *oid == oids::OID_PKCS1_SHA1WITHRSA
        || *oid == oids::OID_PKCS1_MD5WITHRSAENC
        || *oid == oids::OID_PKCS1_MD2WITHRSAENC
        || oid.to_id_string() == "1.2.840.10045.4.1" // ecdsa-with-SHA1
        || *oid == oids::OID_SIG_DSA_WITH_SHA1
    {
        SignatureStrength::Weak
    } else if algorithm(oid, &[]).is_some() {
        SignatureStrength::Strong
    } else {
        SignatureStrength::Unknown
    }
}

/// Whether `issuer`'s key made `child`'s signature. Weak (SHA-1) signatures are
/// still checked here, so that a relationship can be named; [`strength`] judges them.
/// RSA keys from 1024 bits count, as in Go and BoringSSL (aws-lc-rs names those
/// variants "legacy"; the key size is judged by `check`'s `weak-rsa`).
pub fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    made_by(
        child.tbs_certificate.as_ref(),
        &child.signature_algorithm.algorithm,
        child.signature_value.data.as_ref(),
        issuer,
    )
}

/// Whether `issuer`'s key made `signature` (algorithm `alg`) over `signed`: the
/// check behind [`signed_by`], for anything an issuer signs (certificates, CRLs).
pub fn made_by(
    signed: &[u8],
    alg: &Oid<'_>,
    signature: &[u8],
    issuer: &X509Certificate<'_>,
) -> bool {
    let spki = issuer.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_default();
    let Some(alg) = algorithm(alg, &curve).or_else(|| legacy_algorithm(alg)) else {
        return false;
    };
    signature::UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
        .verify(signed, signature)
        .is_ok()
}

fn algorithm(sig: &Oid<'_>, curve: &[u8]) -> Option<&'static dyn VerificationAlgorithm> {
    let is_p384 = curve == oids::OID_NIST_EC_P384.as_bytes();
    let is_p256 = curve == oids::OID_EC_P256.as_bytes() || curve.is_empty();
    Some(if *sig == oids::OID_PKCS1_SHA256WITHRSA {
        &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
    } else if *sig == oids::OID_PKCS1_SHA384WITHRSA {
        &signature::RSA_PKCS1_2048_8192_SHA384
    } else if *sig == oids::OID_PKCS1_SHA512WITHRSA {
        &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
    } else if *sig == oids::OID_SIG_ECDSA_WITH_SHA256 && is_p384 {
        &signature::ECDSA_P384_SHA256_ASN1
    } else if *sig == oids::OID_SIG_ECDSA_WITH_SHA256 && is_p256 {
        &signature::ECDSA_P256_SHA256_ASN1
    } else if *sig == oids::OID_SIG_ECDSA_WITH_SHA384 && is_p384 {
        &signature::ECDSA_P384_SHA384_ASN1
    } else if *sig == oids::OID_SIG_ECDSA_WITH_SHA384 && is_p256 {
        &signature::ECDSA_P256_SHA384_ASN1
    } else if *sig == oids::OID_SIG_ED25519 {
        &signature::ED25519
    } else {
        return None;
    })
}

fn legacy_algorithm(sig: &Oid<'_>) -> Option<&'static dyn VerificationAlgorithm> {
    (*sig == oids::OID_PKCS1_SHA1WITHRSA)
        .then_some(&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY as _)
}
