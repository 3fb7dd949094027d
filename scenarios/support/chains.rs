//! Chains: meshes of plugged bundles on disk, istiod-like workload
//! leaves, the chains a sidecar serves, and OpenSSL as the reference verifier.
//!
//! Every key and certificate is made at test time; nothing secret is committed.

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust::pki::{self, Bundle, Ca, IntermediateSpec, KeyAlg, RootSpec, layout};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// A root and per-cluster intermediates in the Makefile's layout under a temp dir:
/// `root-cert.pem`, `root-key.pem`, `<cluster>/{ca-cert,ca-key,cert-chain,root-cert}.pem`.
pub struct Mesh {
    pub dir: TempDir,
    pub root: Ca,
    pub clusters: Vec<(String, Ca)>,
}

impl Mesh {
    /// P-256 everywhere: fast, and key sizes are not what these tests test.
    pub fn new(clusters: &[&str]) -> Mesh {
        Mesh::with_keys(clusters, KeyAlg::P256)
    }

    pub fn with_keys(clusters: &[&str], key: KeyAlg) -> Mesh {
        let root = pki::generate_root(&RootSpec {
            key,
            ..RootSpec::default()
        })
        .expect("root");
        Mesh::under_root(root, clusters, key)
    }

    /// Clusters below a given root (one with unusual constraints, say).
    pub fn under_root(root: Ca, clusters: &[&str], key: KeyAlg) -> Mesh {
        let dir = tempfile::tempdir().expect("temp dir");
        layout::write_root(dir.path(), &root).expect("write root");
        let clusters = clusters
            .iter()
            .map(|name| {
                let spec = IntermediateSpec {
                    key,
                    ..IntermediateSpec::new(*name)
                };
                let ca = pki::generate_intermediate(&root, &spec).expect("intermediate");
                layout::write_cacerts(dir.path(), &spec, &ca, &root, false).expect("cacerts");
                ((*name).to_owned(), ca)
            })
            .collect();
        Mesh {
            dir,
            root,
            clusters,
        }
    }

    pub fn cluster_dir(&self, cluster: &str) -> PathBuf {
        self.dir.path().join(cluster)
    }

    pub fn bundle(&self, cluster: &str) -> Bundle {
        Bundle::read(&self.cluster_dir(cluster)).expect("bundle")
    }

    pub fn intermediate(&self, cluster: &str) -> &Ca {
        &self
            .clusters
            .iter()
            .find(|(n, _)| n == cluster)
            .expect("cluster exists")
            .1
    }

    pub fn root_pem(&self) -> PathBuf {
        self.dir.path().join("root-cert.pem")
    }

    /// What the cluster's sidecars serve: the leaf, `cert-chain.pem`, then `root-cert.pem`.
    pub fn served(
        &self,
        cluster: &str,
        leaf: &CertificateDer<'static>,
    ) -> Vec<CertificateDer<'static>> {
        served_by(&self.bundle(cluster), leaf)
    }

    /// A leaf signed by the cluster's intermediate.
    pub fn leaf(&self, cluster: &str, spec: &Leaf) -> CertificateDer<'static> {
        spec.signed_by(self.intermediate(cluster))
    }
}

/// istiod's rule for the served chain (ISTIO-FACTS §3).
pub fn served_by(bundle: &Bundle, leaf: &CertificateDer<'static>) -> Vec<CertificateDer<'static>> {
    let signing = bundle.signing().expect("complete bundle");
    let mut chain = vec![leaf.clone()];
    chain.extend(signing.cert_chain);
    chain.extend(signing.roots);
    chain
}

/// A workload certificate as istiod issues it, with knobs for the negative cases.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub spiffe: String,
    pub ttl: Duration,
    pub backdate: Duration,
    pub key: KeyAlg,
    /// basicConstraints critical CA:TRUE instead of CA:FALSE.
    pub ca: bool,
    /// Go writes no AKI when the issuer has no SKI (Istio's sample intermediate).
    pub authority_key_id: bool,
    /// NotBefore is `issued_at - backdate`.
    pub issued_at: OffsetDateTime,
}

pub const HTTPBIN: &str = "spiffe://cluster.local/ns/foo/sa/httpbin";

impl Default for Leaf {
    fn default() -> Self {
        Leaf {
            spiffe: HTTPBIN.into(),
            ttl: Duration::hours(24),
            backdate: Duration::minutes(2),
            key: KeyAlg::P256,
            ca: false,
            authority_key_id: true,
            issued_at: now(),
        }
    }
}

impl Leaf {
    pub fn signed_by(&self, issuer: &Ca) -> CertificateDer<'static> {
        self.signed_with_key(issuer).0
    }

    pub fn signed_with_key(&self, issuer: &Ca) -> (CertificateDer<'static>, KeyPair) {
        let key = self.key.generate().expect("leaf key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        // rcgen marks the SAN critical because the subject is empty, as istiod does.
        params.subject_alt_names = vec![SanType::URI(
            self.spiffe.clone().try_into().expect("URI SAN"),
        )];
        params.not_before = self.issued_at - self.backdate;
        params.not_after = self.issued_at + self.ttl;
        params.serial_number = Some(pki::random_serial());
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = self.authority_key_id;
        if self.ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        } else {
            // IsCa::ExplicitNoCa would add a subjectKeyIdentifier, which istiod's leaves lack.
            params.is_ca = IsCa::NoCa;
            let mut bc = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
            bc.set_criticality(true);
            params.custom_extensions = vec![bc];
        }
        let cert = params
            .signed_by(&key, &issuer.issuer().expect("issuer"))
            .expect("sign leaf");
        (cert.der().clone(), key)
    }
}

/// Seconds precision, like certificate times.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid")
}

/// A CA with exactly the given subject and constraints, self-signed or below `issuer`.
pub struct CaSpec<'a> {
    pub subject: &'a [(DnType, &'a str)],
    pub pathlen: Option<u8>,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub issuer: Option<&'a Ca>,
    pub key: KeyAlg,
}

impl CaSpec<'_> {
    pub fn build(&self) -> Ca {
        let key = self.key.generate().expect("CA key");
        // The shared CA shape of the test support, with this spec's key usages and
        // OpenSSL-style key identifiers (so AKI/SKI links look like the Makefile's).
        let mut params = super::pki::ca_params(self.subject, self.pathlen);
        params.key_usages = self.key_usages.clone();
        params.key_identifier_method =
            rcgen::KeyIdMethod::PreSpecified(pki::openssl_key_id(key.public_key_raw()));
        let cert = match self.issuer {
            None => params.self_signed(&key),
            Some(ca) => {
                params.use_authority_key_identifier_extension = true;
                params.signed_by(&key, &ca.issuer().expect("issuer"))
            }
        }
        .expect("sign CA");
        Ca::from_pem(
            &cert.pem(),
            &key.serialize_pem(),
            Path::new("ca.pem"),
            Path::new("ca-key.pem"),
        )
        .expect("CA pair")
    }
}

pub fn ca_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ]
}

/// istiod's own root when no cacerts is plugged (ISTIO-FACTS §4): `O=cluster.local`,
/// critical keyUsage keyCertSign only.
pub fn istiod_self_signed_root() -> Ca {
    CaSpec {
        subject: &[(DnType::OrganizationName, "cluster.local")],
        pathlen: None,
        key_usages: vec![KeyUsagePurpose::KeyCertSign],
        issuer: None,
        key: KeyAlg::P256,
    }
    .build()
}

/// Concatenated PEM of `certs`, written to `dir/name`.
pub fn write_pem(dir: &Path, name: &str, certs: &[CertificateDer<'_>]) -> PathBuf {
    let path = dir.join(name);
    let pem: String = certs.iter().map(pki::to_pem).collect();
    std::fs::write(&path, pem).expect("write PEM");
    path
}

/// OpenSSL's answer to `openssl verify -CAfile ROOT [-untrusted SERVED[1..]] [-attime T] LEAF`:
/// the doc's check, with the intermediates untrusted as they should be.
pub struct OpensslVerify {
    pub ok: bool,
    pub output: String,
}

pub fn openssl_verify(
    root_pem: &Path,
    served: &[CertificateDer<'static>],
    at: Option<OffsetDateTime>,
) -> OpensslVerify {
    let dir = tempfile::tempdir().expect("temp dir");
    let leaf = write_pem(dir.path(), "leaf.pem", &served[..1]);
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(root_pem);
    if served.len() > 1 {
        cmd.arg("-untrusted")
            .arg(write_pem(dir.path(), "untrusted.pem", &served[1..]));
    }
    if let Some(at) = at {
        cmd.arg("-attime").arg(at.unix_timestamp().to_string());
    }
    let out = cmd
        .arg(leaf)
        .output()
        .expect("`openssl` runs (hint: apt-get install openssl)");
    OpensslVerify {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
