//! istiod's decisions about its CA at start-up (ISTIO-FACTS §2, §4): which mode
//! the mounted `cacerts` files select, the four load-time checks in istiod's
//! order, and the self-signed root it makes when nothing is plugged in.
//!
//! This is the one place istiod's load rules are written. [`evaluate`] applies
//! every rule and returns every failure as data; [`load`] is istiod's start-up
//! (the first failure refuses, as istiod does), and `meshtrust check`
//! (`crate::check`) turns the same failures into findings. They are plain
//! functions of (files, time, version) with no server behind them.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::ca::Signer;
use crate::chain::path::{self, PathError, PathOptions, Purpose, Rules, VerifiedPath};
use crate::pki::{
    Bundle, BundleFile, KeyAlg, Layout, PkiError, contains_label, key_matches_cert, openssl_key_id,
};
use crate::scenario::target::{CaSource, IstioVersion};

/// istiod's log line in plug-in mode.
pub const LOG_PLUGGED_IN: &str = "Use local CA certificate";
/// istiod's log line when it makes its own root.
pub const LOG_SELF_SIGNED: &str = "Use self-signed certificate as the CA certificate";

/// The self-signed root lives 10 years (istiod's `SelfSignedCACertTTL` default).
const SELF_SIGNED_ROOT_DAYS: i64 = 3650;

/// The istiod check that refused a bundle, in istiod's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Some but not all of the bundle's files (1.26+), or, before 1.26, the key
    /// without one of the files it needs.
    CompleteBundle,
    /// 1. `ca-cert.pem` verifies to `root-cert.pem` through `cert-chain.pem`, now, for serverAuth.
    ChainVerifies,
    /// 2. The key parses as PKCS#1, SEC1 or PKCS#8.
    KeyParses,
    /// 3. The key is the certificate's.
    KeyMatches,
    /// 4. The signing certificate has basicConstraints CA:TRUE.
    SigningCertIsCa,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::CompleteBundle => "the bundle is complete",
            Rule::ChainVerifies => "ca-cert.pem verifies to root-cert.pem",
            Rule::KeyParses => "the key parses",
            Rule::KeyMatches => "the key matches the certificate",
            Rule::SigningCertIsCa => "the signing certificate is a CA",
        })
    }
}

/// What istiod does about missing files, by version (ISTIO-FACTS §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incomplete {
    /// 1.26+: "incomplete signing CA bundle detected"; istiod exits.
    Refused,
    /// Before 1.26, without the key file: the files do not select plug-in mode and
    /// istiod silently signs with its self-signed root.
    Ignored,
    /// Before 1.26, with the key file: plug-in mode, then reading a missing file fails.
    MissingFileFails,
}

/// Why the key file does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// `openssl ecparam -genkey` writes `EC PARAMETERS` before the key; Go's
    /// `pem.Decode` takes only that first block.
    EcParametersFirst,
    /// PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy `Proc-Type: 4,ENCRYPTED` key.
    Encrypted,
    /// Not PKCS#1, SEC1 or PKCS#8; the parser's reason.
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
    /// A certificate file does not parse, so rule 1 cannot hold.
    CertUnparseable { file: &'static str, error: String },
    /// Go's `x509.Verify` finds no valid path (rule 1).
    Path(PathError),
    /// The key file does not parse (rule 2).
    Key(KeyProblem),
    /// The key is not the signing certificate's (rule 3).
    KeyMismatch,
    /// The signing certificate lacks basicConstraints CA:TRUE (rule 4).
    NotCa { subject: String },
}

/// One failed rule: which, what exactly, and istiod's error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule: Rule,
    pub detail: Detail,
    /// istiod's error text, as it would log it.
    pub reason: String,
}

/// Every rule applied to a bundle, and what was parsed on the way.
#[derive(Debug)]
pub struct Evaluation {
    /// Every failure, in istiod's order; istiod stops at the first.
    pub failures: Vec<RuleFailure>,
    /// The signing certificate (the first of `ca-cert.pem` / `tls.crt`), if it parses.
    pub ca_cert: Option<CertificateDer<'static>>,
    /// The intermediate pool: `cert-chain.pem` in file order, or `tls.crt` + `ca.crt`.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// `root-cert.pem` / `ca.crt` in file order.
    pub roots: Vec<CertificateDer<'static>>,
    /// The signing key, if it parses.
    pub key: Option<KeyPair>,
    /// The path rule 1 accepted (steps index `cert_chain` and `roots`).
    pub path: Option<VerifiedPath>,
}

impl Evaluation {
    /// The files do not select plug-in mode (before 1.26, no key file): istiod self-signs.
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
}

/// istiod refused to start with this bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub rule: Rule,
    /// istiod's error text, as it would log it.
    pub reason: String,
}

impl From<RuleFailure> for Refusal {
    fn from(f: RuleFailure) -> Self {
        Refusal {
            rule: f.rule,
            reason: f.reason,
        }
    }
}

/// What istiod does with the files mounted at `/etc/cacerts`.
pub enum Loaded {
    /// Plug-in mode: the bundle passed every check and signs from now on.
    PluggedIn(Box<Signer>),
    /// The files do not select plug-in mode (before 1.26: no key file); istiod self-signs.
    Ignored,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loaded::PluggedIn(s) => f.debug_tuple("PluggedIn").field(s).finish(),
            Loaded::Ignored => f.write_str("Ignored"),
        }
    }
}

/// istiod's rules for `bundle` at time `now` for `version`, all of them, in istiod's
/// order: completeness (version-dependent), then (1) the signing certificate
/// verifies to the root through the chain, (2) the key parses, (3) the key matches,
/// (4) the signing certificate is a CA. Each rule runs on whatever parsed.
pub fn evaluate(bundle: &Bundle, now: OffsetDateTime, version: IstioVersion) -> Evaluation {
    let mut failures = Vec::new();
    let mut fail = |rule, detail, reason: String| {
        failures.push(RuleFailure {
            rule,
            detail,
            reason,
        })
    };

    let missing = bundle.missing();
    if !missing.is_empty() {
        let (effect, reason) = if version.refuses_incomplete_bundle() {
            (
                Incomplete::Refused,
                format!(
                    "incomplete signing CA bundle detected at {}: missing {}",
                    bundle.dir.display(),
                    missing.join(", ")
                ),
            )
        } else if bundle.ca_key.is_none() {
            (
                Incomplete::Ignored,
                format!(
                    "no signing key at {}: istiod {version} does not select plug-in mode and signs with its self-signed root",
                    bundle.dir.display()
                ),
            )
        } else {
            // Before 1.26 the key file alone chose plug-in mode; the other files were
            // then read unconditionally, so a missing one failed the read.
            (
                Incomplete::MissingFileFails,
                format!(
                    "failed to create an istiod CA: open {}: no such file or directory",
                    bundle.dir.join(missing[0]).display()
                ),
            )
        };
        fail(
            Rule::CompleteBundle,
            Detail::Incomplete { missing, effect },
            reason,
        );
    }

    // 1. Go's x509.Verify: roots from root-cert.pem, cert-chain.pem as an unordered
    //    intermediate pool, at the current time, default key usage serverAuth.
    let mut certs = |file: &Option<BundleFile>| -> Vec<CertificateDer<'static>> {
        let Some(file) = file else { return Vec::new() };
        file.certs().unwrap_or_else(|e| {
            fail(
                Rule::ChainVerifies,
                Detail::CertUnparseable {
                    file: file.name,
                    error: e.to_string(),
                },
                format!("failed to parse cert PEM: {e}"),
            );
            Vec::new()
        })
    };
    let ca_certs = certs(&bundle.ca_cert);
    let roots = certs(&bundle.root_cert);
    let cert_chain = match bundle.layout {
        Layout::Istiod => certs(&bundle.cert_chain),
        Layout::KubernetesTls => ca_certs.iter().chain(&roots).cloned().collect(),
    };
    let ca_cert = ca_certs.into_iter().next();
    let path = match &ca_cert {
        Some(cert) if !roots.is_empty() => {
            let opts = PathOptions {
                at: now,
                purpose: Purpose::ServerAuth,
                rules: Rules::Go,
            };
            path::verify(cert, &cert_chain, &roots, &opts)
                .map_err(|e| {
                    let reason = format!(
                        "cannot verify the cert with the provided root chain and cert pool with error: {e}"
                    );
                    fail(Rule::ChainVerifies, Detail::Path(e), reason);
                })
                .ok()
        }
        _ => None,
    };

    // 2. The key parses.
    let key = bundle
        .ca_key
        .as_ref()
        .and_then(|file| match parse_key(file) {
            Ok(key) => Some(key),
            Err((problem, reason)) => {
                fail(Rule::KeyParses, Detail::Key(problem), reason);
                None
            }
        });

    // 3. tls.X509KeyPair(cert, key).
    if let (Some(key), Some(cert)) = (&key, &ca_cert)
        && !key_matches_cert(key, cert)
    {
        fail(
            Rule::KeyMatches,
            Detail::KeyMismatch,
            "the cert does not match the key".into(),
        );
    }

    // 4. The signing certificate must be able to sign.
    if let Some(Ok((_, cert))) = ca_cert
        .as_ref()
        .map(|c| x509_parser::parse_x509_certificate(c))
        && !path::basic_constraints(&cert).is_some_and(|bc| bc.ca)
    {
        let subject = path::subject(&cert);
        let reason = format!(
            "the signing certificate `{subject}` is not a CA certificate (basicConstraints CA:TRUE is missing)"
        );
        fail(Rule::SigningCertIsCa, Detail::NotCa { subject }, reason);
    }

    Evaluation {
        failures,
        ca_cert,
        cert_chain,
        roots,
        key,
        path,
    }
}

/// Rule 2 as istiod applies it: PKCS#1 RSA, SEC1 EC or PKCS#8, from the first PEM block.
fn parse_key(file: &BundleFile) -> Result<KeyPair, (KeyProblem, String)> {
    const PREFIX: &str = "failed to parse private key PEM";
    // Go's pem.Decode takes the first block: `openssl ecparam -genkey` writes
    // EC PARAMETERS before the key, and istiod then fails to parse it.
    let first_label = std::str::from_utf8(&file.bytes)
        .ok()
        .and_then(|s| s.find("-----BEGIN ").map(|i| &s[i + 11..]))
        .and_then(|s| s.split("-----").next());
    if first_label == Some("EC PARAMETERS") {
        return Err((
            KeyProblem::EcParametersFirst,
            format!("{PREFIX}: unsupported PEM block type for a private key: EC PARAMETERS"),
        ));
    }
    let legacy_encrypted = file
        .bytes
        .windows(b"Proc-Type: 4,ENCRYPTED".len())
        .any(|w| w == b"Proc-Type: 4,ENCRYPTED");
    if legacy_encrypted || contains_label(&file.bytes, "ENCRYPTED PRIVATE KEY") {
        return Err((
            KeyProblem::Encrypted,
            format!("{PREFIX}: `{}` is encrypted", file.path.display()),
        ));
    }
    file.key().map_err(|e| {
        let reason = format!("{PREFIX}: {e}");
        let problem = match e {
            PkiError::BadKey { reason, .. } => reason,
            other => other.to_string(),
        };
        (KeyProblem::Unparseable(problem), reason)
    })
}

/// istiod's start-up with `bundle` mounted, at time `now`, for `version`: the first
/// failure of [`evaluate`] refuses, as istiod exits on it.
///
/// With no files at all there is no [`Bundle`]: that is self-signed mode, see [`self_signed`].
pub fn load(
    bundle: &Bundle,
    now: OffsetDateTime,
    version: IstioVersion,
) -> Result<Loaded, Refusal> {
    let evaluation = evaluate(bundle, now, version);
    if evaluation.ignored() {
        return Ok(Loaded::Ignored);
    }
    if let Some(failure) = evaluation.failures.into_iter().next() {
        return Err(failure.into());
    }
    let (Some(key), Some(ca_cert)) = (evaluation.key, evaluation.ca_cert) else {
        unreachable!("a bundle that passes every rule has its key and certificate");
    };
    let root_pem = bundle
        .root_cert
        .as_ref()
        .expect("a complete bundle has its root")
        .bytes
        .clone();
    // The chain is cert-chain.pem as is, or tls.crt + ca.crt in the TLS layout.
    Signer::new(
        CaSource::PluggedIn,
        key,
        ca_cert,
        evaluation.cert_chain,
        evaluation.roots,
        root_pem,
    )
    .map(|s| Loaded::PluggedIn(Box::new(s)))
    .map_err(|e| Refusal {
        rule: Rule::ChainVerifies,
        reason: e.to_string(),
    })
}

/// istiod's own root when nothing is plugged in (`istio-ca-secret`): `O=<trust domain>`,
/// no CN, RSA 2048, 10 years, basicConstraints critical CA:TRUE, keyUsage critical
/// keyCertSign only, a subject key identifier (Go adds one to CA certificates).
pub fn self_signed(
    trust_domain: &str,
    now: OffsetDateTime,
) -> Result<Signer, crate::pki::PkiError> {
    self_signed_with_key(trust_domain, now, KeyAlg::Rsa2048)
}

/// As [`self_signed`] with another key type (tests use P-256 for speed).
pub fn self_signed_with_key(
    trust_domain: &str,
    now: OffsetDateTime,
    alg: KeyAlg,
) -> Result<Signer, crate::pki::PkiError> {
    let key = alg.generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, trust_domain);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.key_identifier_method = KeyIdMethod::PreSpecified(openssl_key_id(key.public_key_raw()));
    params.use_authority_key_identifier_extension = false;
    params.serial_number = Some(super::ca::workload_serial());
    let now = now.replace_nanosecond(0).expect("0 ns is valid");
    params.not_before = now;
    params.not_after = now + Duration::days(SELF_SIGNED_ROOT_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|source| crate::pki::PkiError::Generate {
            what: "istiod's self-signed root".into(),
            source,
        })?;
    let der = cert.der().clone();
    let pem = cert.pem().into_bytes();
    Signer::new(
        CaSource::SelfSigned,
        key,
        der.clone(),
        Vec::new(),
        vec![der],
        pem,
    )
    .map_err(|source| crate::pki::PkiError::Generate {
        what: "an issuer from istiod's self-signed root".into(),
        source,
    })
}

/// The log line istiod prints for its CA mode.
pub fn log_line(source: CaSource) -> &'static str {
    match source {
        CaSource::PluggedIn => LOG_PLUGGED_IN,
        CaSource::SelfSigned => LOG_SELF_SIGNED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{IntermediateSpec, RootSpec, make};

    const V: IstioVersion = IstioVersion::LATEST;

    /// A fresh P-256 `cluster1` bundle under a fresh root.
    fn cacerts(tmp: &std::path::Path) -> std::path::PathBuf {
        let root = RootSpec {
            key: KeyAlg::P256,
            ..RootSpec::default()
        };
        let ca = IntermediateSpec {
            key: KeyAlg::P256,
            ..IntermediateSpec::new("cluster1")
        };
        make::cacerts(tmp, &root, &[ca], false, false)
            .unwrap()
            .clusters[0]
            .1
            .clone()
    }

    fn rules(e: &Evaluation) -> Vec<Rule> {
        e.failures.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn every_failure_is_evaluated_and_load_refuses_with_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cacerts(tmp.path());
        let now = OffsetDateTime::now_utc();
        let good = Bundle::read(&dir).unwrap();
        let e = evaluate(&good, now, V);
        assert!(e.failures.is_empty(), "{:?}", e.failures);
        assert!(e.path.is_some() && e.key.is_some());

        // A foreign root (rule 1) and a foreign key (rule 3), both reported.
        let other = cacerts(&tmp.path().join("other"));
        for f in ["root-cert.pem", "ca-key.pem"] {
            std::fs::copy(other.join(f), dir.join(f)).unwrap();
        }
        let bad = Bundle::read(&dir).unwrap();
        let e = evaluate(&bad, now, V);
        assert_eq!(rules(&e), [Rule::ChainVerifies, Rule::KeyMatches]);
        assert!(matches!(
            e.failures[0].detail,
            Detail::Path(PathError::NoIssuer { .. })
        ));
        let refusal = load(&bad, now, V).unwrap_err();
        assert_eq!(refusal, Refusal::from(e.failures[0].clone()));
    }

    #[test]
    fn an_ec_parameters_block_before_the_key_fails_rule_2() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cacerts(tmp.path());
        let key = std::fs::read_to_string(dir.join("ca-key.pem")).unwrap();
        let params =
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
        std::fs::write(dir.join("ca-key.pem"), format!("{params}{key}")).unwrap();
        let bundle = Bundle::read(&dir).unwrap();
        let now = OffsetDateTime::now_utc();
        let e = evaluate(&bundle, now, V);
        assert_eq!(rules(&e), [Rule::KeyParses]);
        assert_eq!(
            e.failures[0].detail,
            Detail::Key(KeyProblem::EcParametersFirst)
        );
        assert_eq!(load(&bundle, now, V).unwrap_err().rule, Rule::KeyParses);
    }

    #[test]
    fn a_legacy_encrypted_key_is_reported_as_encrypted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cacerts(tmp.path());
        std::fs::write(
            dir.join("ca-key.pem"),
            concat!("-----BEGIN EC ", "PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END EC PRIVATE KEY-----\n"),
        )
        .unwrap();
        let e = evaluate(&Bundle::read(&dir).unwrap(), OffsetDateTime::now_utc(), V);
        assert_eq!(e.failures[0].detail, Detail::Key(KeyProblem::Encrypted));
    }
}
