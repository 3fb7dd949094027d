//! Test CAs built with rcgen: any shape, including the broken ones users make.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use meshtrust::pki;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A certificate with its key and the params it was made from.
pub struct Tier {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub pem: String,
}

impl Tier {
    pub fn not_after(&self) -> OffsetDateTime {
        self.params.not_after
    }
}

/// The Makefile's CA profile (P-256 for speed): critical CA:TRUE, critical KU
/// digitalSignature, nonRepudiation, keyEncipherment, keyCertSign, 10 years.
pub fn ca_params(subject: &[(DnType, &str)], pathlen: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    // The default params carry a placeholder CN, which would come first.
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, v) in subject {
        p.distinguished_name.push(ty.clone(), *v);
    }
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(1);
    p.not_after = now + Duration::days(3650);
    p.serial_number = Some(pki::random_serial());
    p.is_ca = IsCa::Ca(pathlen.map_or(
        BasicConstraints::Unconstrained,
        BasicConstraints::Constrained,
    ));
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    p
}

pub fn root_params() -> CertificateParams {
    ca_params(
        &[
            (DnType::OrganizationName, "Istio"),
            (DnType::CommonName, "Root CA"),
        ],
        None,
    )
}

pub fn intermediate_params(cluster: &str) -> CertificateParams {
    let mut p = ca_params(
        &[
            (DnType::OrganizationName, "Istio"),
            (DnType::CommonName, "Intermediate CA"),
            (DnType::LocalityName, cluster),
        ],
        Some(0),
    );
    p.subject_alt_names = vec![SanType::DnsName(
        "istiod.istio-system.svc".try_into().unwrap(),
    )];
    p.use_authority_key_identifier_extension = true;
    p
}

pub fn self_signed(params: CertificateParams) -> Tier {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Tier { params, key, pem }
}

pub fn signed(params: CertificateParams, issuer: &Tier) -> Tier {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let iss = Issuer::from_params(&issuer.params, &issuer.key);
    let pem = params.signed_by(&key, &iss).unwrap().pem();
    Tier { params, key, pem }
}

pub fn root() -> Tier {
    self_signed(root_params())
}

pub fn intermediate(cluster: &str, root: &Tier) -> Tier {
    signed(intermediate_params(cluster), root)
}

/// Writes an istiod-layout bundle: ca-cert, its key (0600), cert-chain (the given
/// certificates, in order), root-cert (the given roots).
pub fn write_bundle(
    dir: &Path,
    name: &str,
    ca: &Tier,
    chain: &[&Tier],
    roots: &[&Tier],
) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ca-cert.pem"), &ca.pem).unwrap();
    write_key(&d.join("ca-key.pem"), &ca.key);
    std::fs::write(
        d.join("cert-chain.pem"),
        chain.iter().map(|t| t.pem.as_str()).collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        d.join("root-cert.pem"),
        roots.iter().map(|t| t.pem.as_str()).collect::<String>(),
    )
    .unwrap();
    d
}

/// The Makefile's layout for one cluster: cert-chain = intermediate + root.
pub fn makefile_layout(dir: &Path, name: &str, ca: &Tier, root: &Tier) -> PathBuf {
    write_bundle(dir, name, ca, &[ca, root], &[root])
}

pub fn write_key(path: &Path, key: &KeyPair) {
    std::fs::write(path, key.serialize_pem()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn signed_with_key(params: CertificateParams, issuer: &Tier, key: KeyPair) -> Tier {
    let iss = Issuer::from_params(&issuer.params, &issuer.key);
    let pem = params.signed_by(&key, &iss).unwrap().pem();
    Tier { params, key, pem }
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
