//! One certificate, described: the fields a conformance check or a person reads.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::oid_registry as oids;
use x509_parser::public_key::PublicKey;

use super::{ChainError, SpiffeId, signature};

/// A parsed certificate. Built once per certificate; checks read it, never the DER.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertInfo {
    /// RFC 4514-ish, as OpenSSL prints it (`O=Istio, CN=Root CA`); empty for istiod's leaves.
    pub subject: String,
    pub issuer: String,
    /// Upper-case hex, colon-separated, as `openssl x509 -text` prints it.
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub key: KeyInfo,
    /// OpenSSL's short name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`), else the OID.
    pub signature_algorithm: String,
    pub basic_constraints: Option<BasicConstraintsInfo>,
    pub key_usage: Option<KeyUsageInfo>,
    /// `None` when the extension is absent (any purpose), unlike an empty list.
    pub extended_key_usage: Option<Vec<String>>,
    pub subject_alt_names: Option<SubjectAltNames>,
    /// Every well-formed SPIFFE URI SAN.
    pub spiffe_ids: Vec<SpiffeId>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    /// SHA-256 of the DER, upper-case hex with colons (`openssl x509 -fingerprint -sha256`).
    pub sha256: String,
    /// Subject and issuer are the same name (a root, or a root-rollover certificate).
    pub self_issued: bool,
    /// Self-issued and its own key verifies its signature.
    pub self_signed: bool,
    #[serde(skip)]
    pub der: CertificateDer<'static>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// `RSA`, `EC`, `Ed25519`, or the algorithm OID.
    pub algorithm: String,
    /// Modulus bits for RSA, field bits for EC.
    pub bits: usize,
    /// `P-256`, `P-384`, `P-521` for EC keys.
    pub curve: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BasicConstraintsInfo {
    pub ca: bool,
    pub pathlen: Option<u32>,
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyUsageInfo {
    /// RFC 5280 names: `digitalSignature`, `keyEncipherment`, `keyCertSign`, ...
    pub usages: Vec<&'static str>,
    pub critical: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SubjectAltNames {
    pub dns: Vec<String>,
    pub uri: Vec<String>,
    pub ip: Vec<String>,
    pub critical: bool,
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> Result<CertInfo, ChainError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| ChainError::BadCertificate {
                reason: e.to_string(),
            })?;
        Ok(describe(&cert, der))
    }

    /// Whether `der` is this certificate, byte for byte.
    pub fn is(&self, der: &[u8]) -> bool {
        self.der.as_ref() == der
    }

    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|b| b.ca)
    }

    pub fn lifetime(&self) -> time::Duration {
        self.not_after - self.not_before
    }

    /// The subject, or for istiod's subject-less leaves the first SAN, for messages.
    pub fn display_name(&self) -> String {
        if !self.subject.is_empty() {
            return self.subject.clone();
        }
        match &self.subject_alt_names {
            Some(san) => match san.uri.first().or(san.dns.first()).or(san.ip.first()) {
                Some(first) => format!("<empty subject, SAN {first}>"),
                None => "<empty subject>".into(),
            },
            None => "<empty subject>".into(),
        }
    }

    /// `` `subject` (SHA-256 AB:CD:...) ``: what a failure prints to tell two certificates apart.
    pub fn identify(&self) -> String {
        format!("`{}` (SHA-256 {})", self.display_name(), self.sha256)
    }
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.curve {
            Some(curve) => write!(f, "{} {curve}", self.algorithm),
            None if self.bits > 0 => write!(f, "{} {}", self.algorithm, self.bits),
            None => f.write_str(&self.algorithm),
        }
    }
}

fn describe(cert: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let mut info = CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex_colon(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        key: key_info(cert),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        basic_constraints: None,
        key_usage: None,
        extended_key_usage: None,
        subject_alt_names: None,
        spiffe_ids: Vec::new(),
        subject_key_id: None,
        authority_key_id: None,
        sha256: hex_colon(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref()),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        self_signed: false,
        der: CertificateDer::from(der.to_vec()),
    };
    info.self_signed = info.self_issued && signature::signed_by(cert, cert);
    for ext in cert.extensions() {
        let critical = ext.critical;
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                info.basic_constraints = Some(BasicConstraintsInfo {
                    ca: bc.ca,
                    pathlen: bc.path_len_constraint,
                    critical,
                })
            }
            ParsedExtension::KeyUsage(ku) => {
                let flags = [
                    (ku.digital_signature(), "digitalSignature"),
                    (ku.non_repudiation(), "nonRepudiation"),
                    (ku.key_encipherment(), "keyEncipherment"),
                    (ku.data_encipherment(), "dataEncipherment"),
                    (ku.key_agreement(), "keyAgreement"),
                    (ku.key_cert_sign(), "keyCertSign"),
                    (ku.crl_sign(), "cRLSign"),
                    (ku.encipher_only(), "encipherOnly"),
                    (ku.decipher_only(), "decipherOnly"),
                ];
                info.key_usage = Some(KeyUsageInfo {
                    usages: flags
                        .iter()
                        .filter(|(on, _)| *on)
                        .map(|(_, n)| *n)
                        .collect(),
                    critical,
                });
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let mut names: Vec<String> = [
                    (eku.any, "anyExtendedKeyUsage"),
                    (eku.server_auth, "serverAuth"),
                    (eku.client_auth, "clientAuth"),
                    (eku.code_signing, "codeSigning"),
                    (eku.email_protection, "emailProtection"),
                    (eku.time_stamping, "timeStamping"),
                    (eku.ocsp_signing, "OCSPSigning"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| (*n).to_owned())
                .collect();
                names.extend(eku.other.iter().map(|o| o.to_id_string()));
                info.extended_key_usage = Some(names);
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                let mut names = SubjectAltNames {
                    critical,
                    ..SubjectAltNames::default()
                };
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => names.dns.push((*d).to_owned()),
                        GeneralName::URI(u) => names.uri.push((*u).to_owned()),
                        GeneralName::IPAddress(ip) => names.ip.push(ip_string(ip)),
                        _ => {}
                    }
                }
                info.spiffe_ids = names
                    .uri
                    .iter()
                    .filter_map(|u| SpiffeId::parse(u).ok())
                    .collect();
                info.subject_alt_names = Some(names);
            }
            ParsedExtension::SubjectKeyIdentifier(k) => info.subject_key_id = Some(hex_colon(k.0)),
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                info.authority_key_id = k.key_identifier.as_ref().map(|k| hex_colon(k.0))
            }
            _ => {}
        }
    }
    info
}

fn key_info(cert: &X509Certificate<'_>) -> KeyInfo {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == oids::OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => bit_length(rsa.modulus),
            _ => 0,
        };
        return KeyInfo {
            algorithm: "RSA".into(),
            bits,
            curve: None,
        };
    }
    if *alg == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve_oid = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let (curve, bits) = match curve_oid {
            Some(c) if c == oids::OID_EC_P256 => (Some("P-256"), 256),
            Some(c) if c == oids::OID_NIST_EC_P384 => (Some("P-384"), 384),
            Some(c) if c == oids::OID_NIST_EC_P521 => (Some("P-521"), 521),
            _ => (None, 0),
        };
        return KeyInfo {
            algorithm: "EC".into(),
            bits,
            curve,
        };
    }
    if *alg == oids::OID_SIG_ED25519 {
        return KeyInfo {
            algorithm: "Ed25519".into(),
            bits: 256,
            curve: None,
        };
    }
    KeyInfo {
        algorithm: alg.to_id_string(),
        bits: 0,
        curve: None,
    }
}

/// Significant bits of a big-endian unsigned integer (x509-parser's `key_size`
/// reports 0 for a modulus without a leading zero byte).
fn bit_length(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    trimmed.len() * 8 - trimmed[0].leading_zeros() as usize
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    oid2sn(oid, oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn ip_string(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => hex_colon(bytes),
    }
}

/// `AB:CD:EF`, as OpenSSL prints serials, key identifiers and fingerprints.
pub fn hex_colon(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}
