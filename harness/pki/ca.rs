//! Root and intermediate CA certificates with the field profile of Istio's
//! `tools/certs/Makefile.selfsigned.mk` (ISTIO-FACTS §1).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::{KeyAlg, PkiError, encoding};

/// The Makefile's `ROOTCA_*` variables.
#[derive(Debug, Clone)]
pub struct RootSpec {
    pub org: String,
    pub cn: String,
    pub days: u32,
    pub key: KeyAlg,
}

impl Default for RootSpec {
    fn default() -> Self {
        RootSpec {
            org: "Istio".into(),
            cn: "Root CA".into(),
            days: 3650,
            key: KeyAlg::Rsa4096,
        }
    }
}

/// The Makefile's `INTERMEDIATE_*` variables; `cluster` becomes the subject's `L=`.
#[derive(Debug, Clone)]
pub struct IntermediateSpec {
    pub cluster: String,
    pub org: String,
    pub cn: String,
    pub days: u32,
    pub san_dns: String,
    pub key: KeyAlg,
}

impl IntermediateSpec {
    pub fn new(cluster: impl Into<String>) -> Self {
        IntermediateSpec {
            cluster: cluster.into(),
            org: "Istio".into(),
            cn: "Intermediate CA".into(),
            days: 3650,
            san_dns: "istiod.istio-system.svc".into(),
            key: KeyAlg::Rsa4096,
        }
    }
}

/// A CA certificate with its private key. The key never leaves this type except
/// through [`Ca::key_pem`], which only the file writer and the embedded CA call.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_der_len", &self.cert_der.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Ca {
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The end of the certificate's validity (NotAfter).
    pub fn not_after(&self) -> OffsetDateTime {
        x509_parser::parse_x509_certificate(&self.cert_der)
            .map(|(_, x509)| x509.validity().not_after.to_datetime())
            .expect("a Ca holds a certificate that parses")
    }

    /// PKCS#8 PEM of the private key. Write it only to 0600 files.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// An rcgen issuer for signing certificates below this CA. The authority key
    /// identifier of what it signs is this certificate's subject key identifier.
    pub fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_der(&self.cert_der, &self.key).map_err(|source| PkiError::Generate {
            what: "an issuer from the CA certificate".into(),
            source,
        })
    }

    /// Pairs an existing certificate with its key, refusing a pair that does not match.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Ca, PkiError> {
        let cert_der = encoding::parse_certs(cert_pem.as_bytes(), cert_path)?
            .into_iter()
            .next()
            .expect("parse_certs returns at least one certificate");
        let key = encoding::parse_key(key_pem.as_bytes(), key_path)?;
        if !encoding::key_matches_cert(&key, &cert_der) {
            return Err(PkiError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        Ok(Ca {
            cert_pem: encoding::to_pem(&cert_der),
            cert_der,
            key,
        })
    }

    /// Reads a certificate and key pair from disk.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Ca, PkiError> {
        let cert = std::fs::read_to_string(cert_path).map_err(PkiError::io("read", cert_path))?;
        let key = std::fs::read_to_string(key_path).map_err(PkiError::io("read", key_path))?;
        Ca::from_pem(&cert, &key, cert_path, key_path)
    }
}

/// How far past its root an intermediate may be asked to end and still keep its asked
/// lifetime (backdated instead): a root and its intermediates made in one run with the same
/// days differ by the seconds of key generation. Beyond it the lifetime is cut, and said.
pub(crate) const CLAMP_SLACK: Duration = Duration::hours(1);

/// `make root-ca`: a self-signed root, subject `O=<org>, CN=<cn>`.
pub fn generate_root(spec: &RootSpec) -> Result<Ca, PkiError> {
    generate_root_with_key(spec, spec.key.generate()?)
}

/// As [`generate_root`], with a key generated elsewhere (keys are made in parallel).
pub fn generate_root_with_key(spec: &RootSpec, key: KeyPair) -> Result<Ca, PkiError> {
    let mut params = ca_params(spec.days, &key);
    params.distinguished_name = dn(&[
        (DnType::OrganizationName, &spec.org),
        (DnType::CommonName, &spec.cn),
    ]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // The Makefile's root has a subject key identifier and no authority key identifier.
    params.use_authority_key_identifier_extension = false;
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "the root certificate".into(),
            source,
        })?;
    Ok(Ca {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key,
    })
}

/// `make <cluster>-cacerts`: an intermediate `O=<org>, CN=<cn>, L=<cluster>` with
/// pathlen:0 and `DNS:<san_dns>`, signed by `root`. It never outlives `root`: its
/// NotAfter is at most the root's (the Makefile's openssl would not clamp).
pub fn generate_intermediate(root: &Ca, spec: &IntermediateSpec) -> Result<Ca, PkiError> {
    generate_intermediate_with_key(root, spec, spec.key.generate()?)
}

/// As [`generate_intermediate`], with a key generated elsewhere.
pub fn generate_intermediate_with_key(
    root: &Ca,
    spec: &IntermediateSpec,
    key: KeyPair,
) -> Result<Ca, PkiError> {
    let mut params = ca_params(spec.days, &key);
    let root_end = root.not_after();
    if params.not_after > root_end {
        let over = params.not_after - root_end;
        params.not_after = root_end;
        if over <= CLAMP_SLACK {
            // The seconds between making the root and this intermediate in one run: keep the
            // asked lifetime by starting as early (never before the root: its days are these).
            params.not_before -= over;
        }
    }
    params.distinguished_name = dn(&[
        (DnType::OrganizationName, &spec.org),
        (DnType::CommonName, &spec.cn),
        (DnType::LocalityName, &spec.cluster),
    ]);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = vec![SanType::DnsName(spec.san_dns.clone().try_into().map_err(
        |source| PkiError::Generate {
            what: format!("a DNS SAN from `{}`", spec.san_dns),
            source,
        },
    )?)];
    let cert = params
        .signed_by(&key, &root.issuer()?)
        .map_err(|source| PkiError::Generate {
            what: format!("the intermediate for `{}`", spec.cluster),
            source,
        })?;
    Ok(Ca {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key,
    })
}

fn ca_params(days: u32, key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid");
    params.not_before = now;
    params.not_after = now + Duration::days(days.into());
    params.serial_number = Some(random_serial());
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(openssl_key_id(key.public_key_raw()));
    params
}

fn dn(entries: &[(DnType, &String)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in entries {
        dn.push(ty.clone(), value.as_str());
    }
    dn
}

/// A positive 20-byte serial, as `openssl x509 -req` makes (rcgen's default is a
/// hash of the key, which repeats for a reused key).
pub fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG is available");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// OpenSSL's `subjectKeyIdentifier = hash`: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1)).
pub fn openssl_key_id(public_key_bits: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        public_key_bits,
    )
    .as_ref()
    .to_vec()
}
