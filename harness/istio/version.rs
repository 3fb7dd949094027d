//! Istio releases and the release where each istiod rule meshtrust models starts.
//!
//! Every gate names the first release (patch precision) that has the behaviour, and
//! where it comes from. Releases the Go module proxy serves as code (release-1.30 after
//! 1.30.3, release-1.31 at 1.31.0-rc.0; see `oracle/`) are checked by the oracle tier;
//! older gates come from Istio's release notes and tags and are stated, not run.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An Istio release: `1.30` (any patch: the rules of its newest patch) or `1.30.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IstioVersion {
    pub major: u16,
    pub minor: u16,
    /// `None`: the whole minor line, judged by its newest patch.
    pub patch: Option<u16>,
}

impl IstioVersion {
    /// A minor line, judged by its newest patch.
    pub const fn new(major: u16, minor: u16) -> Self {
        IstioVersion {
            major,
            minor,
            patch: None,
        }
    }

    /// One patch release.
    pub const fn patch(major: u16, minor: u16, patch: u16) -> Self {
        IstioVersion {
            major,
            minor,
            patch: Some(patch),
        }
    }

    /// The newest Istio release when this was written: istio.io/api is tagged v1.32.0
    /// (2026-10-21) on the Go module proxy, beside v1.31.4 and v1.30.8.
    pub const LATEST: IstioVersion = IstioVersion::new(1, 32);

    /// The oldest release meshtrust models (istiod's load rules before it are not described).
    pub const OLDEST: IstioVersion = IstioVersion::new(1, 24);

    /// Parses `s` and refuses releases meshtrust has no rules for (before
    /// [`Self::OLDEST`] or after [`Self::LATEST`]), naming the range: a typo such as
    /// `1.99` must not be judged as if it were a release.
    pub fn parse_known(s: &str) -> Result<IstioVersion, String> {
        let v: IstioVersion = s.parse()?;
        let line = v.minor_line();
        if line < IstioVersion::OLDEST || line > IstioVersion::LATEST {
            return Err(format!(
                "`{s}` is not an Istio release meshtrust models: it knows {} to {} (hint: for a newer release, use {} and read its release notes)",
                IstioVersion::OLDEST,
                IstioVersion::LATEST,
                IstioVersion::LATEST
            ));
        }
        Ok(v)
    }

    /// The `major.minor` line of this release.
    pub const fn minor_line(self) -> IstioVersion {
        IstioVersion::new(self.major, self.minor)
    }

    fn key(self) -> (u16, u16, u16) {
        (self.major, self.minor, self.patch.unwrap_or(u16::MAX))
    }

    fn at_least(self, major: u16, minor: u16, patch: u16) -> bool {
        self.key() >= (major, minor, patch)
    }

    /// A partial `cacerts` bundle stops istiod ("failed to create an istiod CA:
    /// incomplete signing CA bundle detected") from 1.26.1; 1.26.0 and older chose
    /// plug-in mode from the key file alone (pilot/pkg/bootstrap/istio_ca.go,
    /// checkCABundleCompleteness; oracle: 1.30, 1.31).
    pub fn refuses_incomplete_bundle(self) -> bool {
        self.at_least(1, 26, 1)
    }

    /// A `ca-crl.pem` in the istiod layout is read and must hold CRLs signed by every
    /// certificate of `cert-chain.pem`, from 1.27.0 (PILOT_ENABLE_CA_CRL, on by default;
    /// security/pkg/pki/util/keycertbundle.go Verify; oracle: 1.30, 1.31).
    pub fn checks_ca_crl(self) -> bool {
        self.at_least(1, 27, 0)
    }

    /// istiod clamps a workload certificate's NotAfter to its signer's from 1.28.7,
    /// 1.29.3 and 1.30.0 (security/pkg/pki/util/generate_cert.go; oracle: 1.30, 1.31).
    pub fn clamps_leaf_to_signer(self) -> bool {
        match (self.major, self.minor) {
            (1, 28) => self.at_least(1, 28, 7),
            (1, 29) => self.at_least(1, 29, 3),
            _ => self.at_least(1, 30, 0),
        }
    }

    /// On a hot reload with ISTIO_MULTIROOT_MESH, a new root bundle is taken when one
    /// bundle's set of certificates contains the other's from 1.30.0; before, when one
    /// PEM file's bytes contained the other's (pilot/pkg/bootstrap/istio_ca.go
    /// handleEvent; oracle: 1.30, 1.31).
    pub fn root_bundle_subset_by_certificates(self) -> bool {
        self.at_least(1, 30, 0)
    }

    /// Releases built with Go 1.25+ (Istio 1.28.0+) write a CA's generated
    /// subjectKeyIdentifier as truncated SHA-256 of the key, older ones as SHA-1
    /// (crypto/x509, Go 1.25 release notes).
    pub fn sha256_key_ids(self) -> bool {
        self.at_least(1, 28, 0)
    }
}

impl Ord for IstioVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for IstioVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for IstioVersion {
    fn default() -> Self {
        IstioVersion::LATEST
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{p}", self.major, self.minor),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl FromStr for IstioVersion {
    type Err = String;

    /// `1.30`, `1.30.2`, `v1.30.2` or `1.30.2-distroless` (an image tag's suffix is ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not an Istio version (expected MAJOR.MINOR or MAJOR.MINOR.PATCH, as in `1.30` or `1.30.2`)"
            )
        };
        let core = s.strip_prefix('v').unwrap_or(s);
        let core = core.split_once('-').map_or(core, |(c, _)| c);
        let mut parts = core.split('.');
        let mut number = || -> Result<Option<u16>, String> {
            parts
                .next()
                .map(|p| p.parse::<u16>().map_err(|_| bad()))
                .transpose()
        };
        let major = number()?.ok_or_else(bad)?;
        let minor = number()?.ok_or_else(bad)?;
        let patch = number()?;
        if number()?.is_some() {
            return Err(bad());
        }
        Ok(IstioVersion {
            major,
            minor,
            patch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> IstioVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_minor_lines_patches_and_image_tags() {
        assert_eq!(v("1.30"), IstioVersion::new(1, 30));
        assert_eq!(v("1.30.2"), IstioVersion::patch(1, 30, 2));
        assert_eq!(v("v1.30.2-distroless"), IstioVersion::patch(1, 30, 2));
        for bad in ["1", "1.x", "1.30.2.1", "", "1..2", "-1.30"] {
            assert!(bad.parse::<IstioVersion>().is_err(), "{bad}");
        }
        assert_eq!(v("1.30.2").to_string(), "1.30.2");
        assert_eq!(v("1.30").to_string(), "1.30");
    }

    #[test]
    fn only_releases_meshtrust_models_are_taken() {
        assert_eq!(
            IstioVersion::parse_known("1.30.2"),
            Ok(IstioVersion::patch(1, 30, 2))
        );
        assert_eq!(
            IstioVersion::parse_known("1.24"),
            Ok(IstioVersion::new(1, 24))
        );
        assert_eq!(
            IstioVersion::parse_known("1.32"),
            Ok(IstioVersion::new(1, 32))
        );
        for bad in ["1.99", "2.0", "0.1", "1.2", "1.23.9", "1.33"] {
            let e = IstioVersion::parse_known(bad).unwrap_err();
            assert!(e.contains("it knows 1.24 to 1.32"), "{bad}: {e}");
        }
        assert!(
            IstioVersion::parse_known("x")
                .unwrap_err()
                .contains("is not an Istio version")
        );
    }

    #[test]
    fn a_minor_line_orders_after_each_of_its_patches() {
        assert!(v("1.30") > v("1.30.9"));
        assert!(v("1.30") < v("1.31.0"));
        assert!(v("1.29.10") > v("1.29.9"));
    }

    #[test]
    fn the_incomplete_bundle_refusal_starts_at_1_26_1() {
        assert!(!v("1.26.0").refuses_incomplete_bundle());
        assert!(v("1.26.1").refuses_incomplete_bundle());
        assert!(v("1.26").refuses_incomplete_bundle());
        assert!(!v("1.25").refuses_incomplete_bundle());
    }

    #[test]
    fn the_crl_rule_starts_at_1_27_0() {
        assert!(!v("1.26").checks_ca_crl());
        assert!(v("1.27.0").checks_ca_crl());
    }

    #[test]
    fn the_leaf_clamp_is_in_1_28_7_1_29_3_and_1_30_0_onwards() {
        for (s, clamps) in [
            ("1.27", false),
            ("1.28.6", false),
            ("1.28.7", true),
            ("1.28", true),
            ("1.29.2", false),
            ("1.29.3", true),
            ("1.30.0", true),
            ("1.31", true),
        ] {
            assert_eq!(v(s).clamps_leaf_to_signer(), clamps, "{s}");
        }
    }

    #[test]
    fn the_multi_root_subset_rule_and_sha256_key_ids_start_where_stated() {
        assert!(!v("1.29").root_bundle_subset_by_certificates());
        assert!(v("1.30.0").root_bundle_subset_by_certificates());
        assert!(!v("1.27").sha256_key_ids());
        assert!(v("1.28.0").sha256_key_ids());
    }
}
