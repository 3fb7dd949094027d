//! Istio's workload identity: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.

use std::fmt;
use std::str::FromStr;

use super::ChainError;

/// A parsed Istio SPIFFE id. Only Istio's workload form is accepted: that is the
/// only form istiod issues (ISTIO-FACTS §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

const SCHEME: &str = "spiffe://";

impl SpiffeId {
    pub fn parse(id: &str) -> Result<SpiffeId, ChainError> {
        let bad = |reason| ChainError::BadSpiffeId {
            id: id.to_owned(),
            reason,
        };
        let rest = id
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it does not start with `spiffe://`"))?;
        let (trust_domain, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it has no path after the trust domain"))?;
        if trust_domain.is_empty() {
            return Err(bad("the trust domain is empty"));
        }
        // SPIFFE trust domains are lower-case letters, digits, `.`, `-` and `_`; no port, no user.
        if !trust_domain
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        {
            return Err(bad(
                "the trust domain may only hold lower-case letters, digits, `.`, `-` and `_`",
            ));
        }
        let parts: Vec<&str> = path.split('/').collect();
        let [ns_key, namespace, sa_key, service_account] = parts.as_slice() else {
            return Err(bad(
                "the path is not `/ns/<namespace>/sa/<service account>`",
            ));
        };
        if *ns_key != "ns" || *sa_key != "sa" {
            return Err(bad(
                "the path is not `/ns/<namespace>/sa/<service account>`",
            ));
        }
        if namespace.is_empty() || service_account.is_empty() {
            return Err(bad("the namespace or the service account is empty"));
        }
        if id.contains(['?', '#', '%']) || id.chars().any(|c| c.is_whitespace()) {
            return Err(bad("it holds a query, a fragment, an escape or a space"));
        }
        Ok(SpiffeId {
            trust_domain: trust_domain.to_owned(),
            namespace: (*namespace).to_owned(),
            service_account: (*service_account).to_owned(),
        })
    }

    /// Whether a URI SAN claims to be a SPIFFE id at all (well-formed or not).
    pub fn is_spiffe_uri(uri: &str) -> bool {
        uri.get(..SCHEME.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = ChainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_istio_workload_id_parses_into_its_three_parts() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/foo/sa/httpbin").unwrap();
        assert_eq!(id.trust_domain, "cluster.local");
        assert_eq!(id.namespace, "foo");
        assert_eq!(id.service_account, "httpbin");
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/foo/sa/httpbin");
    }

    #[test]
    fn malformed_ids_are_rejected_with_the_reason() {
        for bad in [
            "",
            "https://cluster.local/ns/foo/sa/httpbin",
            "spiffe://cluster.local",
            "spiffe:///ns/foo/sa/httpbin",
            "spiffe://cluster.local/ns/foo",
            "spiffe://cluster.local/ns/foo/sa/",
            "spiffe://cluster.local/ns/foo/sa/httpbin/extra",
            "spiffe://cluster.local/namespace/foo/sa/httpbin",
            "spiffe://Cluster.Local/ns/foo/sa/httpbin",
            "spiffe://cluster.local:8443/ns/foo/sa/httpbin",
            "spiffe://cluster.local/ns/foo/sa/http%20bin",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
