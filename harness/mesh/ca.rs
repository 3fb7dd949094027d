//! The signing half of istiod's CA: a loaded signer, and workload certificates
//! with istiod's profile (ISTIO-FACTS §3).
//!
//! The profile is rebuilt from scratch for every certificate: nothing of the CSR
//! is kept but its public key, so a CSR asking for CA:TRUE or naming another
//! identity still gets a workload leaf for the caller's identity.

use std::fmt;

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, IsCa, Issuer, KeyPair, PublicKeyData,
    SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

use crate::istio::served;
use crate::pki::to_pem;
use crate::scenario::target::CaSource;

/// The TTL the agent asks for (`SECRET_TTL`) and istiod's default for a request without one.
pub const DEFAULT_TTL: Duration = Duration::hours(24);
/// istiod's `MAX_WORKLOAD_CERT_TTL`.
pub const MAX_TTL: Duration = Duration::days(90);
/// istiod backdates NotBefore to tolerate clock skew between nodes.
const BACKDATE: Duration = Duration::minutes(2);

const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];

/// A caller's authenticated identity: what its token says, never what its CSR says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub namespace: String,
    pub service_account: String,
}

impl Identity {
    pub fn new(namespace: impl Into<String>, service_account: impl Into<String>) -> Self {
        Identity {
            namespace: namespace.into(),
            service_account: service_account.into(),
        }
    }

    pub fn spiffe_id(&self, trust_domain: &str) -> String {
        format!(
            "spiffe://{trust_domain}/ns/{}/sa/{}",
            self.namespace, self.service_account
        )
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service_account)
    }
}

/// Why a signing request was refused; each maps to a gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("failed to parse the CSR: {0}")]
    BadCsr(String),
    #[error("requested TTL {} is greater than the max allowed TTL {}", go_duration(*.requested), go_duration(*.max))]
    TtlTooLong { requested: Duration, max: Duration },
    #[error("failed to sign the certificate: {0}")]
    Sign(#[from] rcgen::Error),
    /// istiod's text (security/pkg/pki/util generate_cert.go, with the clamp: 1.28.7+).
    #[error("signing certificate has expired at {0}")]
    SignerExpired(String),
}

/// Go's `time.Duration.String()` for whole seconds (`2160h0m1s`), as istiod prints TTLs.
fn go_duration(d: Duration) -> String {
    let s = d.whole_seconds();
    format!("{}h{}m{}s", s / 3600, s % 3600 / 60, s % 60)
}

/// A CA that signs: its key, its certificate, and what it appends to every leaf.
pub struct Signer {
    source: CaSource,
    issuer: Issuer<'static, KeyPair>,
    ca_cert: CertificateDer<'static>,
    cert_chain: Vec<CertificateDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
    chain_pem: Vec<u8>,
    root_pem: Vec<u8>,
    not_after: OffsetDateTime,
    /// The signing certificate carries a subjectKeyIdentifier: Go then writes it as the
    /// leaf's authorityKeyIdentifier, and writes none otherwise.
    signer_key_id: Option<Vec<u8>>,
    default_ttl: Duration,
    clamp_to_signer: bool,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("source", &self.source)
            .field("cert_chain_len", &self.cert_chain.len())
            .field("roots", &self.roots.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// `ca_cert` signs with `key`. `chain_pem` and `root_pem` are the bytes istiod holds
    /// (the chain files, `root-cert.pem`): they follow every leaf in the CA API's
    /// response ([`crate::istio::served`]); `root_pem` is also what the ConfigMap
    /// distributes. `cert_chain` and `roots` are their certificates as Go reads them.
    /// `default_ttl` is istiod's TTL for a request without one (`None`: 24 h).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: CaSource,
        key: KeyPair,
        ca_cert: CertificateDer<'static>,
        cert_chain: Vec<CertificateDer<'static>>,
        roots: Vec<CertificateDer<'static>>,
        chain_pem: Vec<u8>,
        root_pem: Vec<u8>,
        default_ttl: Option<Duration>,
    ) -> Result<Signer, rcgen::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(&ca_cert)
            .map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        let not_after = parsed.validity().not_after.to_datetime();
        let signer_key_id = parsed
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            });
        let issuer = Issuer::from_ca_cert_der(&ca_cert, key)?;
        Ok(Signer {
            source,
            issuer,
            ca_cert,
            cert_chain,
            roots,
            chain_pem,
            root_pem,
            not_after,
            signer_key_id,
            default_ttl: default_ttl.unwrap_or(DEFAULT_TTL),
            clamp_to_signer: true,
        })
    }

    /// Whether leaves are clamped to the signer's NotAfter (istiod 1.28.7, 1.29.3,
    /// 1.30.0 and later: [`crate::istio::IstioVersion::clamps_leaf_to_signer`]).
    pub fn clamp_to_signer(mut self, clamp: bool) -> Self {
        self.clamp_to_signer = clamp;
        self
    }

    pub fn source(&self) -> CaSource {
        self.source
    }

    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca_cert
    }

    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.cert_chain
    }

    /// The trust anchors (`root-cert.pem`'s certificates).
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The bytes of ConfigMap `istio-ca-root-cert`'s `root-cert.pem`: the plugged file, untouched.
    pub fn root_pem(&self) -> &[u8] {
        &self.root_pem
    }

    /// Signs a workload certificate for `identity` from a PEM CSR.
    /// `requested_ttl` of zero or less means the default (24 h).
    pub fn issue(
        &self,
        csr_pem: &str,
        identity: &Identity,
        trust_domain: &str,
        requested_ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<CertificateDer<'static>>, IssueError> {
        self.issue_elements(csr_pem, identity, trust_domain, requested_ttl, now)
            .map(|elements| served::served_certificates(&served::agent_chain(&elements)))
    }

    /// The CreateCertificate response's `cert_chain` for a CSR, as istiod builds it
    /// ([`crate::istio::served::response_elements`]): the leaf, the chain split per
    /// block, then the raw root bundle as one element.
    pub fn issue_elements(
        &self,
        csr_pem: &str,
        identity: &Identity,
        trust_domain: &str,
        requested_ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<Vec<u8>>, IssueError> {
        // istiod checks the requested TTL against the max, then applies its default.
        if requested_ttl > MAX_TTL {
            return Err(IssueError::TtlTooLong {
                requested: requested_ttl,
                max: MAX_TTL,
            });
        }
        let ttl = if requested_ttl <= Duration::ZERO {
            self.default_ttl
        } else {
            requested_ttl
        };
        let (public_key, has_cn) = csr_public_key(csr_pem)?;
        let spiffe_id = identity.spiffe_id(trust_domain);
        let san = SanType::URI(
            spiffe_id
                .clone()
                .try_into()
                .map_err(|e| IssueError::BadCsr(format!("identity `{identity}`: {e}")))?,
        );
        // Dual use: a CSR with a CN gets CN = the SPIFFE id (up to 64 characters),
        // security/pkg/pki/util dual_use.go.
        let cn = (has_cn && spiffe_id.len() <= 64).then_some(spiffe_id);
        let leaf = self.sign(&public_key, san, cn, ttl, now)?;
        Ok(served::response_elements(
            to_pem(&leaf).as_bytes(),
            &self.chain_pem,
            &self.root_pem,
        ))
    }

    /// istiod's own serving certificate (`istiod.istio-system.svc`), for the CA's TLS port.
    pub fn issue_serving(
        &self,
        key: &KeyPair,
        dns_name: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<CertificateDer<'static>>, IssueError> {
        let san = SanType::DnsName(
            dns_name
                .try_into()
                .map_err(|e| IssueError::BadCsr(format!("DNS name `{dns_name}`: {e}")))?,
        );
        let leaf = self.sign(key, san, None, DEFAULT_TTL, now)?;
        Ok(self.with_chain(leaf))
    }

    /// The leaf, then every certificate of `cert-chain.pem`, then `root-cert.pem`: with the
    /// Makefile's layout the root appears twice (istio/istio#39001).
    fn with_chain(&self, leaf: CertificateDer<'static>) -> Vec<CertificateDer<'static>> {
        std::iter::once(leaf)
            .chain(self.cert_chain.iter().cloned())
            .chain(self.roots.iter().cloned())
            .collect()
    }

    fn sign(
        &self,
        public_key: &impl PublicKeyData,
        san: SanType,
        common_name: Option<String>,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<CertificateDer<'static>, IssueError> {
        let now = now.replace_nanosecond(0).expect("0 ns is valid");
        if self.clamp_to_signer && now >= self.not_after {
            return Err(IssueError::SignerExpired(self.not_after.to_string()));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        // Go's x509.CreateCertificate as istiod calls it (security/pkg/pki/util
        // generate_cert.go): keyUsage (critical), extendedKeyUsage, basicConstraints
        // (critical, CA:FALSE), authorityKeyIdentifier only when the signer has a
        // subjectKeyIdentifier, then Istio's own SAN extension, always critical; in that
        // order (checked against Istio's CA by the oracle tier). rcgen's own extensions stay
        // off so that none is added or reordered.
        params.is_ca = IsCa::NoCa;
        params.key_usages = Vec::new();
        params.extended_key_usages = Vec::new();
        params.use_authority_key_identifier_extension = false;
        params.custom_extensions = leaf_extensions(&san, self.signer_key_id.as_deref());
        params.serial_number = Some(workload_serial());
        params.not_before = now - BACKDATE;
        // Clamped to the signer where istiod clamps: a leaf never outlives its intermediate.
        params.not_after = if self.clamp_to_signer {
            std::cmp::min(now + ttl, self.not_after)
        } else {
            now + ttl
        };
        let cert = params.signed_by(public_key, &self.issuer)?;
        Ok(cert.der().clone())
    }
}

const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
const OID_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
const OID_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];

fn extension(oid: &[u64], critical: bool, der: Vec<u8>) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, der);
    e.set_criticality(critical);
    e
}

/// A workload leaf's extensions, DER-encoded with yasna (rcgen's own DER writer).
fn leaf_extensions(san: &SanType, authority_key_id: Option<&[u8]>) -> Vec<CustomExtension> {
    use yasna::Tag;
    use yasna::models::ObjectIdentifier;
    // digitalSignature (bit 0) and keyEncipherment (bit 2).
    let key_usage = yasna::construct_der(|w| {
        w.write_bitvec_bytes(&[0b1010_0000], 3);
    });
    let ext_key_usage = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(OID_SERVER_AUTH));
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(OID_CLIENT_AUTH));
        })
    });
    let subject_alt_name = yasna::construct_der(|w| {
        w.write_sequence(|w| match san {
            SanType::URI(uri) => w
                .next()
                .write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(uri.as_str())),
            SanType::DnsName(dns) => w
                .next()
                .write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(dns.as_str())),
            other => unreachable!("workload SANs are URIs or DNS names, not {other:?}"),
        })
    });
    let mut out = vec![
        extension(OID_KEY_USAGE, true, key_usage),
        extension(OID_EXT_KEY_USAGE, false, ext_key_usage),
        extension(OID_BASIC_CONSTRAINTS, true, vec![0x30, 0x00]),
    ];
    if let Some(id) = authority_key_id {
        let aki = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next()
                    .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(id))
            })
        });
        out.push(extension(OID_AUTHORITY_KEY_ID, false, aki));
    }
    out.push(extension(OID_SUBJECT_ALT_NAME, true, subject_alt_name));
    out
}

/// The CSR's public key, after checking the CSR's own signature, and whether its subject
/// has a CN. Everything else in it (SANs, basicConstraints, key usages) is ignored, as
/// istiod ignores it.
fn csr_public_key(csr_pem: &str) -> Result<(SubjectPublicKeyInfo, bool), IssueError> {
    let block = pem::parse(csr_pem).map_err(|e| IssueError::BadCsr(format!("not PEM ({e})")))?;
    if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
        return Err(IssueError::BadCsr(format!(
            "expected a `CERTIFICATE REQUEST` block, found `{}`",
            block.tag()
        )));
    }
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(block.contents())
            .map_err(|e| IssueError::BadCsr(format!("not a PKCS#10 request ({e})")))?;
    csr.verify_signature()
        .map_err(|e| IssueError::BadCsr(format!("its signature does not verify ({e})")))?;
    let has_cn = csr
        .certification_request_info
        .subject
        .iter_common_name()
        .any(|cn| cn.as_str().is_ok_and(|s| !s.is_empty()));
    SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map(|spki| (spki, has_cn))
        .map_err(|e| IssueError::BadCsr(format!("unsupported public key ({e})")))
}

/// A random positive serial below 2^128, as istiod draws for its certificates.
pub fn workload_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG is available");
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_print_as_go_durations_like_istiods_error() {
        assert_eq!(go_duration(MAX_TTL), "2160h0m0s");
        assert_eq!(go_duration(Duration::seconds(90 * 86400 + 61)), "2160h1m1s");
    }

    #[test]
    fn serials_are_positive_and_below_2_to_the_128() {
        for _ in 0..64 {
            let serial = workload_serial();
            let bytes = serial.as_ref();
            assert_eq!(bytes.len(), 16);
            assert_eq!(bytes[0] & 0x80, 0);
        }
    }
}
