//! istiod's decisions about its CA at start-up (ISTIO-FACTS §2, §4): which mode
//! the mounted `cacerts` files select, the four load-time checks in istiod's
//! order, and the self-signed root it makes when nothing is plugged in.
//!
//! `meshtrust check` applies these same rules to a directory, so they are plain
//! functions of (files, time, version) with no server behind them.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::ca::Signer;
use crate::chain::path::{self, PathOptions, Purpose, Rules};
use crate::pki::{Bundle, KeyAlg, key_matches_cert, openssl_key_id};
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

/// istiod refused to start with this bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub rule: Rule,
    /// istiod's error text, as it would log it.
    pub reason: String,
}

impl Refusal {
    fn new(rule: Rule, reason: impl Into<String>) -> Self {
        Refusal {
            rule,
            reason: reason.into(),
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

/// istiod's start-up with `bundle` mounted, at time `now`, for `version`.
///
/// With no files at all there is no [`Bundle`]: that is self-signed mode, see [`self_signed`].
pub fn load(
    bundle: &Bundle,
    now: OffsetDateTime,
    version: IstioVersion,
) -> Result<Loaded, Refusal> {
    let missing = bundle.missing();
    if !missing.is_empty() {
        if version.refuses_incomplete_bundle() {
            return Err(Refusal::new(
                Rule::CompleteBundle,
                format!(
                    "incomplete signing CA bundle detected at {}: missing {}",
                    bundle.dir.display(),
                    missing.join(", ")
                ),
            ));
        }
        // Before 1.26 the key file alone chose plug-in mode; the other files were then
        // read unconditionally, so a missing one failed the read.
        if bundle.ca_key.is_none() {
            return Ok(Loaded::Ignored);
        }
        return Err(Refusal::new(
            Rule::CompleteBundle,
            format!(
                "failed to create an istiod CA: open {}: no such file or directory",
                bundle.dir.join(missing[0]).display()
            ),
        ));
    }

    // 1. Go's x509.Verify: roots from root-cert.pem, cert-chain.pem as an unordered
    //    intermediate pool, at the current time, default key usage serverAuth.
    let signing = bundle.signing().map_err(|e| {
        Refusal::new(
            Rule::ChainVerifies,
            format!("failed to parse cert PEM: {e}"),
        )
    })?;
    let opts = PathOptions {
        at: now,
        purpose: Purpose::ServerAuth,
        rules: Rules::Go,
    };
    path::verify(&signing.ca_cert, &signing.cert_chain, &signing.roots, &opts).map_err(|e| {
        Refusal::new(
            Rule::ChainVerifies,
            format!(
                "cannot verify the cert with the provided root chain and cert pool with error: {e}"
            ),
        )
    })?;

    // 2. The key parses.
    let key_file = bundle
        .ca_key
        .as_ref()
        .expect("a complete bundle has its key");
    let key = key_file.key().map_err(|e| {
        Refusal::new(
            Rule::KeyParses,
            format!("failed to parse private key PEM: {e}"),
        )
    })?;

    // 3. tls.X509KeyPair(cert, key).
    if !key_matches_cert(&key, &signing.ca_cert) {
        return Err(Refusal::new(
            Rule::KeyMatches,
            "the cert does not match the key",
        ));
    }

    // 4. The signing certificate must be able to sign.
    let (_, cert) = x509_parser::parse_x509_certificate(&signing.ca_cert)
        .expect("rule 1 parsed this certificate");
    if !path::basic_constraints(&cert).is_some_and(|bc| bc.ca) {
        return Err(Refusal::new(
            Rule::SigningCertIsCa,
            format!(
                "the signing certificate `{}` is not a CA certificate (basicConstraints CA:TRUE is missing)",
                path::subject(&cert)
            ),
        ));
    }

    let root_pem = bundle
        .root_cert
        .as_ref()
        .expect("a complete bundle has its root")
        .bytes
        .clone();
    // Bundle::signing gives cert-chain.pem as is, or tls.crt + ca.crt in the TLS layout.
    Signer::new(
        CaSource::PluggedIn,
        key,
        signing.ca_cert,
        signing.cert_chain,
        signing.roots,
        root_pem,
    )
    .map(|s| Loaded::PluggedIn(Box::new(s)))
    .map_err(|e| Refusal::new(Rule::ChainVerifies, e.to_string()))
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
