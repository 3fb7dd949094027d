//! istiod's CA at start-up for the local target: the plugged bundle judged by the
//! model of istiod ([`crate::istio::load`], the one place its rules are written) and,
//! when it loads, turned into the embedded CA's signer; or istiod's own self-signed
//! root when nothing is plugged in (ISTIO-FACTS §4).

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::ca::Signer;
use crate::istio::IstioVersion;
pub use crate::istio::load::{
    Detail, Evaluation, Incomplete, KeyProblem, LOG_PLUGGED_IN, LOG_SELF_SIGNED, Rule, RuleFailure,
    evaluate,
};
use crate::pki::{Bundle, KeyAlg, openssl_key_id};
use crate::scenario::target::CaSource;

/// The self-signed root lives 10 years (istiod's `SelfSignedCACertTTL` default).
const SELF_SIGNED_ROOT_DAYS: i64 = 3650;

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
    if let Some(failure) = evaluation.failures.first() {
        return Err(failure.clone().into());
    }
    signer(bundle, evaluation, version).map(|s| Loaded::PluggedIn(Box::new(s)))
}

/// The embedded CA's signer for a bundle the model of istiod accepted (at start-up, or
/// on a reload, which runs fewer rules). istiod signs with any key Go reads; the embedded
/// CA signs with aws-lc-rs, which refuses RSA keys under 2048 bits: that is said as such,
/// never passed off as istiod's refusal.
pub fn signer(
    bundle: &Bundle,
    evaluation: Evaluation,
    version: IstioVersion,
) -> Result<Signer, Refusal> {
    let cannot = |reason: String| Refusal {
        rule: Rule::KeyParses,
        reason: format!(
            "meshtrust's embedded CA cannot sign with this bundle (istiod can): {reason}"
        ),
    };
    let ca_cert = evaluation
        .ca_cert
        .ok_or_else(|| cannot("no signing certificate".into()))?;
    let key = bundle
        .ca_key
        .as_ref()
        .ok_or_else(|| cannot("no key file".into()))?
        .key()
        .map_err(|e| cannot(e.to_string()))?;
    Signer::new(
        CaSource::PluggedIn,
        key,
        ca_cert,
        evaluation.cert_chain,
        evaluation.roots,
        evaluation.chain_pem,
        evaluation.root_pem,
        evaluation.default_ttl,
    )
    .map(|s| s.clamp_to_signer(version.clamps_leaf_to_signer()))
    .map_err(|e| cannot(e.to_string()))
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
        Vec::new(),
        pem,
        None,
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
    use crate::chain::path::PathError;
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
