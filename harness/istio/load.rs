//! istiod's start-up with plugged-in certificates: which files it reads, every rule it
//! applies to them in its own order, and the error text it exits with.
//!
//! The order and the texts are Istio's (1.30, 1.31; held to Istio's code by the oracle
//! tier, `scenarios/oracle.rs`):
//! - pilot/pkg/bootstrap/istio_ca.go `createIstioCA`: layout (`tls.crt` selects
//!   `kubernetes.io/tls`), completeness, then plug-in mode;
//! - security/pkg/pki/ca/ca.go `NewPluggedCertIstioCAOptions` -> security/pkg/pki/util
//!   keycertbundle.go `Verify`: (1) the FIRST PEM block of `ca-cert.pem` is a
//!   certificate, (2) it verifies (Go's `x509.Verify`, now, serverAuth) to the roots of
//!   `root-cert.pem` through the certificates of `cert-chain.pem`, both read by
//!   `AppendCertsFromPEM`, (3) the FIRST block of `ca-key.pem` is a key, (4)
//!   `tls.X509KeyPair` matches them, (5) `ca-crl.pem` (istiod layout, 1.27+) holds CRLs
//!   signed by every certificate of `cert-chain.pem`; then (6) the first block of
//!   `ca-cert.pem` has CA:TRUE;
//! - ca.go `NewIstioCA` `minTTL`: (7) the first block of `cert-chain.pem` parses and has
//!   not expired; the default workload TTL is min(24 h, its time left).
//!
//! [`evaluate`] applies every rule to whatever parsed and returns every failure, so
//! that `meshtrust check` can report them all; istiod stops at the first.

use std::fmt;

use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer as _;

use super::gopem;
use super::key::{self, PublicHalf};
use super::version::IstioVersion;
use crate::pki::{Bundle, Layout};
use crate::x509::path::{self, PathError, PathOptions, Purpose, Rules, VerifiedPath};
use crate::x509::signature;

/// istiod's log line in plug-in mode (pilot/pkg/bootstrap/istio_ca.go).
pub const LOG_PLUGGED_IN: &str = "Use local CA certificate";
/// istiod's log line when it makes its own root (pilot/pkg/bootstrap/istio_ca.go).
pub const LOG_SELF_SIGNED: &str = "Use self-signed certificate as the CA certificate";

/// The prefix of every start-up refusal (pilot/pkg/bootstrap/istio_ca.go).
pub const CA_ERROR_PREFIX: &str = "failed to create an istiod CA: ";
/// istiod's refusal of a partial bundle (1.26.1+).
pub const INCOMPLETE_BUNDLE: &str =
    "failed to create an istiod CA: incomplete signing CA bundle detected";
/// istiod's refusal of a signing certificate without CA:TRUE (security/pkg/pki/ca/ca.go).
pub const NOT_A_CA: &str =
    "failed to create an istiod CA: certificate is not authorized to sign other certificates";
/// istiod's refusal of an expired first certificate of `cert-chain.pem` (ca.go minTTL).
pub const CHAIN_EXPIRED: &str =
    "failed to create an istiod CA: failed to get default cert TTL cert chain has expired";

/// The default workload certificate TTL (DEFAULT_WORKLOAD_CERT_TTL, 24 h).
pub const DEFAULT_WORKLOAD_TTL: Duration = Duration::hours(24);

/// The istiod check that refused a bundle, in istiod's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Some but not all of the bundle's files (1.26.1+), or, before, the key without
    /// one of the files it needs.
    CompleteBundle,
    /// The first block of `ca-cert.pem` is a certificate that verifies to `root-cert.pem`
    /// through `cert-chain.pem`, now, for serverAuth.
    ChainVerifies,
    /// The first block of the key file parses as PKCS#1, SEC1 or PKCS#8.
    KeyParses,
    /// The key is the certificate's (`tls.X509KeyPair`).
    KeyMatches,
    /// `ca-crl.pem` parses and holds a CRL signed by every certificate of `cert-chain.pem` (1.27+).
    CrlSigned,
    /// The signing certificate has basicConstraints CA:TRUE.
    SigningCertIsCa,
    /// The first certificate of `cert-chain.pem` parses and has not expired (the default TTL).
    ChainNotExpired,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::CompleteBundle => "the bundle is complete",
            Rule::ChainVerifies => "ca-cert.pem verifies to root-cert.pem",
            Rule::KeyParses => "the key parses",
            Rule::KeyMatches => "the key matches the certificate",
            Rule::CrlSigned => "ca-crl.pem is signed by every certificate of cert-chain.pem",
            Rule::SigningCertIsCa => "the signing certificate is a CA",
            Rule::ChainNotExpired => "the first certificate of cert-chain.pem has not expired",
        })
    }
}

/// What istiod does about missing files, by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incomplete {
    /// 1.26.1+: "incomplete signing CA bundle detected"; istiod exits.
    Refused,
    /// Before 1.26.1, without the key file: the files do not select plug-in mode and
    /// istiod silently signs with its self-signed root.
    Ignored,
    /// Before 1.26.1, with the key file: plug-in mode, then reading a missing file fails.
    MissingFileFails,
}

/// Why the key file does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// `openssl ecparam -genkey` writes `EC PARAMETERS` before the key; istiod reads
    /// only that first block.
    EcParametersFirst,
    /// PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy `Proc-Type: 4,ENCRYPTED` key.
    Encrypted,
    /// Anything else; Istio's reason.
    Unparseable(String),
}

/// What exactly failed, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Files the layout needs are missing (rule [`Rule::CompleteBundle`]).
    Incomplete {
        missing: Vec<&'static str>,
        effect: Incomplete,
    },
    /// The first PEM block of the signing certificate file is missing or not a
    /// certificate; `error` is Istio's text.
    CertUnparseable { file: &'static str, error: String },
    /// Go's `x509.Verify` finds no valid path (rule 1).
    Path(PathError),
    /// The key file does not parse.
    Key(KeyProblem),
    /// The key is not the signing certificate's; Go's reason.
    KeyMismatch { reason: String },
    /// The CRL file fails istiod's CRL rule; Istio's reason.
    Crl { reason: String },
    /// The signing certificate lacks basicConstraints CA:TRUE.
    NotCa { subject: String },
    /// The first certificate of the chain file does not parse, or has expired.
    ChainTtl { reason: String },
}

/// One failed rule: which, what exactly, and istiod's error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule: Rule,
    pub detail: Detail,
    /// istiod's error text, as it exits with it.
    pub reason: String,
}

/// Every rule applied to a bundle, and what istiod would hold on the way.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Every failure, in istiod's order; istiod stops at the first.
    pub failures: Vec<RuleFailure>,
    /// The signing certificate: the first PEM block of `ca-cert.pem` / `tls.crt`, if it
    /// is a certificate.
    pub ca_cert: Option<CertificateDer<'static>>,
    /// The intermediate pool: the certificates `AppendCertsFromPEM` takes from
    /// `cert-chain.pem` (or `tls.crt` + `ca.crt`), in file order.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The roots `AppendCertsFromPEM` takes from `root-cert.pem` / `ca.crt`.
    pub roots: Vec<CertificateDer<'static>>,
    /// The bytes istiod keeps as its certificate chain (the chain files concatenated).
    pub chain_pem: Vec<u8>,
    /// The bytes istiod keeps as its root bundle and sends to every workload.
    pub root_pem: Vec<u8>,
    /// The signing key's public half, if the key parses.
    pub key: Option<PublicHalf>,
    /// The path rule 1 accepted (steps index `cert_chain` and `roots`).
    pub path: Option<VerifiedPath>,
    /// The workload TTL istiod applies when a CSR asks for none: min(24 h, time left on
    /// the first certificate of the chain), when that certificate parses.
    pub default_ttl: Option<Duration>,
}

impl Evaluation {
    /// The files do not select plug-in mode (before 1.26.1, no key file): istiod self-signs.
    pub fn ignored(&self) -> bool {
        self.failures.iter().any(|f| {
            matches!(
                f.detail,
                Detail::Incomplete {
                    effect: Incomplete::Ignored,
                    ..
                }
            )
        })
    }

    /// istiod's refusal: the first failure, unless the files are ignored.
    pub fn refusal(&self) -> Option<&RuleFailure> {
        if self.ignored() {
            return None;
        }
        self.failures.first()
    }
}

/// The bytes istiod holds for a bundle: its certificate chain (the chain files
/// concatenated as read: `cert-chain.pem`, or `tls.crt` then `ca.crt`, with no separator,
/// so a `tls.crt` without a final newline glues its last block to `ca.crt`'s first, and Go reads neither) and its
/// root bundle (`root-cert.pem` / `ca.crt`). Missing files read as empty.
pub fn held_bytes(bundle: &Bundle) -> (Vec<u8>, Vec<u8>) {
    let bytes = |f: &Option<crate::pki::BundleFile>| {
        f.as_ref().map(|f| f.bytes.clone()).unwrap_or_default()
    };
    let root_pem = bytes(&bundle.root_cert);
    let chain_pem = match bundle.layout {
        Layout::Istiod => bytes(&bundle.cert_chain),
        Layout::KubernetesTls => [bytes(&bundle.ca_cert), root_pem.clone()].concat(),
    };
    (chain_pem, root_pem)
}

fn keybundle_error(inner: impl fmt::Display) -> String {
    format!("{CA_ERROR_PREFIX}failed to create CA KeyCertBundle ({inner})")
}

fn certificate(der: &[u8]) -> Option<CertificateDer<'static>> {
    gopem::parses_as_certificate(der).then(|| CertificateDer::from(der.to_vec()))
}

/// `ParsePemEncodedCertificate`: the first block, whatever its label, as a certificate.
fn first_certificate(bytes: &[u8]) -> Result<CertificateDer<'static>, &'static str> {
    let block = gopem::first_block(bytes).ok_or("invalid PEM encoded certificate")?;
    certificate(&block.bytes).ok_or("failed to parse X.509 certificate")
}

/// Go's `x509.Verify` error text for a path failure (crypto/x509 verify.go).
pub fn go_verify_text(e: &PathError, at: OffsetDateTime) -> String {
    match e {
        PathError::Expired { not_after, .. } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is after {not_after}",
            rfc3339(at)
        ),
        PathError::NotYetValid { not_before, .. } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is before {not_before}",
            rfc3339(at)
        ),
        PathError::Eku { .. } => "x509: certificate specifies an incompatible key usage".into(),
        PathError::NotCa { .. } => {
            "x509: certificate is not authorized to sign other certificates".into()
        }
        PathError::PathLen { .. } => {
            "x509: too many intermediates for path length constraint".into()
        }
        PathError::WeakSignature { alg, .. } => format!(
            "x509: certificate signed by unknown authority (possibly because of \"x509: cannot verify signature: insecure algorithm {alg}\")"
        ),
        // (The last two never come from Go's rules.)
        PathError::NoIssuer { .. }
        | PathError::Unparseable { .. }
        | PathError::NoKeyCertSign { .. }
        | PathError::AnchorNotSelfSigned { .. } => {
            "x509: certificate signed by unknown authority".into()
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// istiod's rules for `bundle` at time `now` for `version`, all of them, in istiod's order.
pub fn evaluate(bundle: &Bundle, now: OffsetDateTime, version: IstioVersion) -> Evaluation {
    let mut failures = Vec::new();
    let mut fail = |rule, detail, reason: String| {
        failures.push(RuleFailure {
            rule,
            detail,
            reason,
        })
    };
    let cert_file = bundle.ca_cert.as_ref().map_or(
        match bundle.layout {
            Layout::Istiod => "ca-cert.pem",
            Layout::KubernetesTls => "tls.crt",
        },
        |f| f.name,
    );

    let missing = bundle.missing();
    if !missing.is_empty() {
        let (effect, reason) = if version.refuses_incomplete_bundle() {
            (Incomplete::Refused, INCOMPLETE_BUNDLE.to_owned())
        } else if bundle.ca_key.is_none() {
            (
                Incomplete::Ignored,
                format!(
                    "no signing key at {}: istiod {version} does not select plug-in mode and signs with its self-signed root",
                    bundle.dir.display()
                ),
            )
        } else {
            // Before 1.26.1 the key file alone chose plug-in mode; the other files were
            // then read unconditionally, so a missing one failed the read.
            (
                Incomplete::MissingFileFails,
                keybundle_error(format!(
                    "open {}: no such file or directory",
                    bundle.dir.join(missing[0]).display()
                )),
            )
        };
        fail(
            Rule::CompleteBundle,
            Detail::Incomplete { missing, effect },
            reason,
        );
    }

    let cert_pem = bundle.ca_cert.as_ref().map(|f| f.bytes.clone());
    let (chain_pem, root_pem) = held_bytes(bundle);
    let to_der = |v: Vec<Vec<u8>>| v.into_iter().map(CertificateDer::from).collect::<Vec<_>>();
    let roots = to_der(gopem::append_certs_from_pem(&root_pem));
    let cert_chain = to_der(gopem::append_certs_from_pem(&chain_pem));

    // 1. The first block of the signing certificate file.
    let ca_cert = match &cert_pem {
        None => None,
        Some(pem) => match first_certificate(pem) {
            Ok(cert) => Some(cert),
            Err(error) => {
                fail(
                    Rule::ChainVerifies,
                    Detail::CertUnparseable {
                        file: cert_file,
                        error: error.to_owned(),
                    },
                    keybundle_error(format!("failed to parse cert PEM: {error}")),
                );
                None
            }
        },
    };

    // 2. Go's x509.Verify: roots and an unordered intermediate pool, now, serverAuth.
    let path = ca_cert.as_ref().and_then(|cert| {
        let opts = PathOptions {
            at: now,
            purpose: Purpose::ServerAuth,
            rules: Rules::Go,
        };
        let result = if roots.is_empty() {
            let parsed = x509_parser::parse_x509_certificate(cert).map(|(_, c)| c);
            Err(PathError::NoIssuer {
                subject: parsed.as_ref().map(path::subject).unwrap_or_default(),
                issuer: parsed.map(|c| c.issuer().to_string()).unwrap_or_default(),
            })
        } else {
            path::verify(cert, &cert_chain, &roots, &opts)
        };
        result
            .map_err(|e| {
                let reason = keybundle_error(format!(
                    "cannot verify the cert with the provided root chain and cert pool with error: {}",
                    go_verify_text(&e, now)
                ));
                fail(Rule::ChainVerifies, Detail::Path(e), reason);
            })
            .ok()
    });

    // 3. ParsePemEncodedKey on the first block of the key file.
    let key = bundle
        .ca_key
        .as_ref()
        .and_then(|file| match key::parse_first_block(&file.bytes) {
            Ok(key) => Some(key),
            Err(e) => {
                let first = gopem::first_block(&file.bytes);
                let problem = match (e.label.as_deref(), &first) {
                    (Some("EC PARAMETERS"), _) => KeyProblem::EcParametersFirst,
                    (Some("ENCRYPTED PRIVATE KEY"), _) => KeyProblem::Encrypted,
                    (_, Some(b)) if b.has_headers && b.label.ends_with("PRIVATE KEY") => {
                        KeyProblem::Encrypted
                    }
                    _ => KeyProblem::Unparseable(e.text.clone()),
                };
                fail(
                    Rule::KeyParses,
                    Detail::Key(problem),
                    keybundle_error(format!("failed to parse private key PEM: {}", e.text)),
                );
                None
            }
        });

    // 4. tls.X509KeyPair(ca-cert.pem, ca-key.pem); istiod never gets there with an
    //    unparseable signing certificate, and a mismatch reported then would be invented.
    if let (Some(key), Some(pem), Some(_)) = (&key, &cert_pem, &ca_cert)
        && let Err(reason) = key::x509_key_pair(pem, key)
    {
        fail(
            Rule::KeyMatches,
            Detail::KeyMismatch {
                reason: reason.clone(),
            },
            keybundle_error(format!("the cert does not match the key: {reason}")),
        );
    }

    // 5. The CRL, istiod layout only, 1.27+, when the file is not empty.
    if bundle.layout == Layout::Istiod
        && version.checks_ca_crl()
        && let Some(crl) = &bundle.crl
        && !crl.bytes.is_empty()
        && let Err(reason) = crl_rule(&chain_pem, &crl.bytes)
    {
        fail(
            Rule::CrlSigned,
            Detail::Crl {
                reason: reason.clone(),
            },
            keybundle_error(reason),
        );
    }

    // 6. NewPluggedCertIstioCAOptions: the first block must be a CA.
    if let Some(cert) = &ca_cert
        && let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert)
        && !path::basic_constraints(&parsed).is_some_and(|bc| bc.ca)
    {
        fail(
            Rule::SigningCertIsCa,
            Detail::NotCa {
                subject: path::subject(&parsed),
            },
            NOT_A_CA.to_owned(),
        );
    }

    // 7. NewIstioCA: the default TTL from the first certificate of the chain.
    let default_ttl = if chain_pem.is_empty() {
        Some(DEFAULT_WORKLOAD_TTL)
    } else {
        match first_certificate(&chain_pem) {
            Err(error) => {
                let reason = format!(
                    "{CA_ERROR_PREFIX}failed to get default cert TTL failed to get cert chain TTL failed to extract cert expiration timestamp: failed to parse the cert: {error}"
                );
                if bundle.missing().is_empty() {
                    fail(
                        Rule::ChainNotExpired,
                        Detail::ChainTtl {
                            reason: reason.clone(),
                        },
                        reason,
                    );
                }
                None
            }
            Ok(first) => {
                let not_after = x509_parser::parse_x509_certificate(&first)
                    .map(|(_, c)| c.validity().not_after.to_datetime())
                    .expect("first_certificate parsed it");
                let left = not_after - now;
                if left <= Duration::ZERO {
                    fail(
                        Rule::ChainNotExpired,
                        Detail::ChainTtl {
                            reason: CHAIN_EXPIRED.to_owned(),
                        },
                        CHAIN_EXPIRED.to_owned(),
                    );
                    None
                } else {
                    Some(left.min(DEFAULT_WORKLOAD_TTL))
                }
            }
        }
    };

    Evaluation {
        failures,
        ca_cert,
        cert_chain,
        roots,
        chain_pem,
        root_pem,
        key,
        path,
        default_ttl,
    }
}

/// Istio's CRL rule (keycertbundle.go `Verify`): every PEM block of the chain bytes
/// parses as a certificate, every block of the CRL file as a CRL, and each chain
/// certificate's subject has a CRL its key signed. `Err` is Istio's text.
pub fn crl_rule(chain_pem: &[u8], crl_pem: &[u8]) -> Result<(), String> {
    let mut signers = Vec::new();
    for block in gopem::blocks(chain_pem) {
        match x509_parser::parse_x509_certificate(&block.bytes) {
            Ok(([], _)) => signers.push(block.bytes),
            _ => return Err("failed to parse cert chain: x509: malformed certificate".into()),
        }
    }
    let mut crls = Vec::new();
    for block in gopem::blocks(crl_pem) {
        match x509_parser::revocation_list::CertificateRevocationList::from_der(&block.bytes) {
            Ok(([], _)) => crls.push(block.bytes),
            _ => return Err("failed to parse CRL PEM: x509: malformed crl".into()),
        }
    }
    // Keyed by subject, as Istio keys them: one signer per distinct subject.
    let mut missing: Vec<(String, Vec<u8>)> = Vec::new();
    for der in signers {
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parsed above");
        let subject = go_name(cert.subject());
        if let Some(slot) = missing.iter_mut().find(|(s, _)| *s == subject) {
            slot.1 = der;
        } else {
            missing.push((subject, der));
        }
    }
    missing.retain(|(_, der)| {
        let (_, signer) = x509_parser::parse_x509_certificate(der).expect("parsed above");
        // Go's RevocationList.CheckSignatureFrom: the signer must be a CA (a version 3
        // certificate needs CA:TRUE) and, with a keyUsage, have cRLSign.
        let v1 = signer.version() == x509_parser::x509::X509Version::V1;
        let bc = path::basic_constraints(&signer);
        let may_sign = match bc {
            Some(bc) => bc.ca,
            None => v1,
        } && signer
            .key_usage()
            .ok()
            .flatten()
            .is_none_or(|ku| ku.value.crl_sign());
        !may_sign
            || !crls.iter().any(|crl| {
                let (_, list) =
                    x509_parser::revocation_list::CertificateRevocationList::from_der(crl)
                        .expect("parsed above");
                signature::made_by(
                    list.tbs_cert_list.as_ref(),
                    &list.signature_algorithm.algorithm,
                    list.signature_value.data.as_ref(),
                    &signer,
                )
            })
    });
    if missing.is_empty() {
        Ok(())
    } else {
        let names: Vec<_> = missing.into_iter().map(|(s, _)| s).collect();
        // (Go prints them in its map's order, which varies from run to run.)
        Err(format!(
            "missing CRL signed by certificates: [{}]",
            names.join(" ")
        ))
    }
}

/// A name as Go's `pkix.Name.String()` prints it: the attributes regrouped in Go's
/// order (C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER; one RDN per type,
/// several values joined by `+`), then printed last first: `CN=Root CA,O=Istio`.
pub fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    const ORDER: [(&str, &str); 9] = [
        ("2.5.4.6", "C"),
        ("2.5.4.8", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.3", "CN"),
        ("2.5.4.5", "SERIALNUMBER"),
    ];
    let values = |oid: &str| -> Vec<String> {
        name.iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .map(|a| a.as_str().map(str::to_owned).unwrap_or_default())
            .collect()
    };
    let mut rdns: Vec<String> = ORDER
        .iter()
        .filter_map(|(oid, short)| {
            let v = values(oid);
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|v| format!("{short}={v}"))
                    .collect::<Vec<_>>()
                    .join("+")
            })
        })
        .collect();
    rdns.reverse();
    rdns.join(",")
}
