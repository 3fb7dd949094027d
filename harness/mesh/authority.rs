//! istiod's CA at run time: the current signer (hot-reloadable), the trust domain,
//! and the tokens that authenticate callers.
//!
//! Tokens stand in for Kubernetes service-account tokens: opaque random strings
//! minted per (namespace, service account) by the target, resolved here to the
//! identity that goes into the certificate.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use time::{Duration, OffsetDateTime};

use super::ca::{Identity, IssueError, Signer};
use crate::pki::Bundle;
use crate::scenario::target::IstioVersion;

/// Why a `CreateCertificate` call failed, in gRPC's terms.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No token, or one this CA did not mint.
    #[error("request authenticate failure")]
    Unauthenticated,
    #[error(transparent)]
    Issue(#[from] IssueError),
}

pub use crate::istio::reload::Reload;

pub struct Authority {
    trust_domain: String,
    signer: RwLock<Arc<Signer>>,
    tokens: RwLock<HashMap<String, Identity>>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .field("tokens", &"<redacted>")
            .finish()
    }
}

impl Authority {
    pub fn new(signer: Signer, trust_domain: impl Into<String>) -> Self {
        Authority {
            trust_domain: trust_domain.into(),
            signer: RwLock::new(Arc::new(signer)),
            tokens: RwLock::new(HashMap::new()),
        }
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The signer in force now.
    pub fn signer(&self) -> Arc<Signer> {
        self.signer.read().expect("signer lock").clone()
    }

    /// A fresh token for `identity` (a projected service-account token, in Kubernetes).
    pub fn mint_token(&self, identity: Identity) -> String {
        let mut bytes = [0u8; 24];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG is available");
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.tokens
            .write()
            .expect("token lock")
            .insert(token.clone(), identity);
        token
    }

    /// `Authorization: Bearer <token>` to an identity.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, CallError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(CallError::Unauthenticated)?;
        self.tokens
            .read()
            .expect("token lock")
            .get(token)
            .cloned()
            .ok_or(CallError::Unauthenticated)
    }

    /// `CreateCertificate`: the chain as PEM, leaf first. CPU-bound (an RSA signature).
    pub fn create_certificate(
        &self,
        authorization: Option<&str>,
        csr_pem: &str,
        validity_seconds: i64,
    ) -> Result<Vec<String>, CallError> {
        let identity = self.authenticate(authorization)?;
        let elements = self.signer().issue_elements(
            csr_pem,
            &identity,
            &self.trust_domain,
            Duration::seconds(validity_seconds),
            OffsetDateTime::now_utc(),
        )?;
        Ok(elements
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e).into_owned())
            .collect())
    }

    /// istiod's reaction to changed files under `/etc/cacerts`, as the model of istiod
    /// decides it ([`crate::istio::reload`]): the root compared by bytes, multi-root by
    /// containment, then only the key-cert bundle checks (no CA-flag, completeness or TTL
    /// rule: a reload takes what start-up would refuse).
    pub fn reload(&self, bundle: &Bundle, version: IstioVersion, multi_root: bool) -> Reload {
        let now = OffsetDateTime::now_utc();
        let current_root = self.signer().root_pem().to_vec();
        let decision =
            crate::istio::reload::reload(&current_root, bundle, now, version, multi_root);
        if decision != Reload::Applied {
            return decision;
        }
        let evaluation = crate::istio::evaluate(bundle, now, version);
        let signer = super::istiod::signer(bundle, evaluation, version);
        match signer {
            Ok(signer) => {
                *self.signer.write().expect("signer lock") = Arc::new(signer);
                Reload::Applied
            }
            Err(refusal) => Reload::Failed {
                rule: refusal.rule,
                reason: refusal.reason,
            },
        }
    }
}
