//! Bundles for the oracle to judge: a fixed corpus of named cases (each `check`
//! finding's trigger and near miss, Istio's samples, the Makefile recipe) and a seeded,
//! reproducible generator of structured mutations of valid bundles. Every bundle has a
//! recipe (`seed=S #i: mutation, mutation`) that rebuilds it.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::support::openssl::openssl;
use crate::support::pki::{ca_params, intermediate_params, root_params};

/// Key types of the generated CAs (RSA from a small pool: generation is slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    P256,
    P384,
    Rsa2048,
}

impl Alg {
    fn generate(self) -> KeyPair {
        match self {
            Alg::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Alg::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            Alg::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
        }
        .expect("key generation")
    }
}

/// A pool of keys reused across bundles (a bundle's outcome does not depend on which
/// key of a kind it got, only on which keys match).
pub struct Keys {
    pool: Vec<(Alg, KeyPair)>,
}

impl Keys {
    pub fn new() -> Keys {
        let mut pool = Vec::new();
        for (alg, n) in [(Alg::P256, 8), (Alg::P384, 3), (Alg::Rsa2048, 4)] {
            for _ in 0..n {
                pool.push((alg, alg.generate()));
            }
        }
        Keys { pool }
    }

    /// The `i`-th distinct key of `alg` (cycling).
    fn get(&self, alg: Alg, i: usize) -> KeyPair {
        let of: Vec<_> = self.pool.iter().filter(|(a, _)| *a == alg).collect();
        let (_, k) = of[i % of.len()];
        KeyPair::from_pem(&k.serialize_pem()).expect("round trip")
    }
}

/// One change to a valid bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    // Layout and shape.
    TlsLayout,
    ThreeLevels {
        mid_pathlen: Option<u8>,
    },
    // The signing certificate's fields.
    IntNotCa,
    IntNoBasicConstraints,
    IntPathLen(Option<u8>),
    IntKeyUsageNoCertSign,
    IntNoKeyUsage,
    IntEku(&'static str),
    IntExpired,
    IntNotYetValid,
    IntExpiresSoon,
    IntNoKeyId,
    IntAlg(AlgName),
    /// The intermediate made by openssl instead: an RSA key of `bits` (rcgen cannot make
    /// RSA under 2048) signed by the root with `digest` (`sha1`: a weak signature).
    OpensslInt {
        bits: u32,
        digest: &'static str,
    },
    // The root's fields.
    RootNoBasicConstraints,
    RootExpired,
    RootPathLen0,
    RootEku(&'static str),
    // Files.
    Chain(ChainShape),
    Roots(RootShape),
    CaCert(CaCertShape),
    Key(KeyShape),
    Framing {
        file: FileName,
        how: Framing,
    },
    Crl(CrlShape),
    Delete(FileName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgName {
    P384,
    Rsa2048,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileName {
    CaCert,
    CaKey,
    CertChain,
    RootCert,
}

impl FileName {
    fn name(self, tls: bool) -> &'static str {
        match (self, tls) {
            (FileName::CaCert, false) => "ca-cert.pem",
            (FileName::CaKey, false) => "ca-key.pem",
            (FileName::CertChain, false) => "cert-chain.pem",
            (FileName::RootCert, false) => "root-cert.pem",
            (FileName::CaCert, true) => "tls.crt",
            (FileName::CaKey, true) => "tls.key",
            (FileName::CertChain, true) => "tls.crt",
            (FileName::RootCert, true) => "ca.crt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainShape {
    IntOnly,
    Empty,
    Reversed,
    Duplicated,
    WithForeignRoot,
    MissingMid,
    ExpiredFirst,
    GarbageFirst,
    RootFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootShape {
    ForeignFirst,
    ForeignLast,
    ForeignOnly,
    Intermediate,
    Mid,
    Empty,
    Twice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaCertShape {
    WithRootAfter,
    GarbageBlockFirst,
    TrustedLabel,
    RootOnly,
    KeyBlockFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    Native,
    NativeNoParams,
    EcParametersFirst,
    Encrypted,
    LegacyEncrypted,
    Mismatch,
    CertFirst,
    UnknownLabel,
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Glued,
    NoFinalNewline,
    Crlf,
    TextAround,
    CorruptFirstBlock,
    HeaderOnFirstBlock,
    Truncated,
    ExtraCsrBlock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlShape {
    Valid,
    MissingOne,
    WrongSigner,
    Garbage,
    Empty,
}

/// A bundle and how it was made.
pub struct Case {
    pub recipe: String,
    pub dir: PathBuf,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.recipe, self.dir.display())
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

struct Made {
    key: KeyPair,
    pem: String,
}

impl Made {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_ca_cert_pem(&self.pem, &self.key).expect("an issuer from its own PEM")
    }
}

fn self_signed(params: CertificateParams, key: KeyPair) -> Made {
    let pem = params.self_signed(&key).expect("self-signed").pem();
    Made { key, pem }
}

fn signed(params: CertificateParams, key: KeyPair, issuer: &Made) -> Made {
    let pem = params
        .signed_by(&key, &issuer.issuer())
        .expect("signed")
        .pem();
    Made { key, pem }
}

/// A CRL `signer` signed (empty when its keyUsage lacks cRLSign: rcgen will not
/// write one; the bundle then simply misses that signer's CRL).
fn crl_by(signer: &Made) -> String {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&signer.issuer())
        .ok()
        .and_then(|crl| crl.pem().ok())
        .unwrap_or_default()
}

/// Builds the bundle `mutations` describe into `dir`.
pub fn build(dir: &Path, keys: &Keys, index: usize, mutations: &[Mutation]) {
    std::fs::create_dir_all(dir).unwrap();
    let has = |m: &Mutation| mutations.contains(m);
    let tls = has(&Mutation::TlsLayout);
    let now = OffsetDateTime::now_utc();
    let int_alg = mutations
        .iter()
        .find_map(|m| match m {
            Mutation::IntAlg(AlgName::P384) => Some(Alg::P384),
            Mutation::IntAlg(AlgName::Rsa2048) => Some(Alg::Rsa2048),
            _ => None,
        })
        .unwrap_or(Alg::P256);

    // CAs that sign CRLs need cRLSign for rcgen (Go does not check it).
    let wants_crl = mutations.iter().any(|m| matches!(m, Mutation::Crl(_)));
    let crl_sign = |p: &mut CertificateParams| {
        if wants_crl {
            p.key_usages.push(KeyUsagePurpose::CrlSign);
        }
    };
    // The root.
    let mut rp = root_params();
    crl_sign(&mut rp);
    for m in mutations {
        match m {
            Mutation::RootNoBasicConstraints => rp.is_ca = IsCa::NoCa,
            Mutation::RootExpired => {
                rp.not_before = now - Duration::days(20);
                rp.not_after = now - Duration::days(1);
            }
            Mutation::RootPathLen0 => rp.is_ca = IsCa::Ca(BasicConstraints::Constrained(0)),
            Mutation::RootEku(e) => rp.extended_key_usages = eku(e),
            _ => {}
        }
    }
    let root = self_signed(rp, keys.get(Alg::P256, index));
    let mut fp = root_params();
    crl_sign(&mut fp);
    let foreign = self_signed(fp, keys.get(Alg::P256, index + 1));

    // An optional middle CA (three levels: root -> mid -> ca-cert).
    let mid = mutations.iter().find_map(|m| match m {
        Mutation::ThreeLevels { mid_pathlen } => Some(*mid_pathlen),
        _ => None,
    });
    let mid = mid.map(|pathlen| {
        let mut p = ca_params(
            &[
                (DnType::OrganizationName, "Istio"),
                (DnType::CommonName, "Issuing CA"),
            ],
            pathlen,
        );
        crl_sign(&mut p);
        signed(p, keys.get(Alg::P256, index + 2), &root)
    });
    let parent = mid.as_ref().unwrap_or(&root);

    // The signing certificate.
    let mut ip = intermediate_params("cluster1");
    crl_sign(&mut ip);
    if mid.is_some() {
        ip.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    }
    for m in mutations {
        match m {
            Mutation::IntNotCa => ip.is_ca = IsCa::ExplicitNoCa,
            Mutation::IntNoBasicConstraints => ip.is_ca = IsCa::NoCa,
            Mutation::IntPathLen(p) => {
                ip.is_ca = IsCa::Ca(p.map_or(
                    BasicConstraints::Unconstrained,
                    BasicConstraints::Constrained,
                ))
            }
            Mutation::IntKeyUsageNoCertSign => {
                ip.key_usages = vec![KeyUsagePurpose::DigitalSignature]
            }
            Mutation::IntNoKeyUsage => ip.key_usages = Vec::new(),
            Mutation::IntEku(e) => ip.extended_key_usages = eku(e),
            Mutation::IntExpired => {
                ip.not_before = now - Duration::days(20);
                ip.not_after = now - Duration::days(1);
            }
            Mutation::IntNotYetValid => ip.not_before = now + Duration::days(1),
            Mutation::IntExpiresSoon => ip.not_after = now + Duration::hours(6),
            _ => {}
        }
    }
    let int_key = keys.get(int_alg, index + 3);
    let int = if has(&Mutation::IntNoKeyId) {
        // rcgen always writes a CA's key id: let openssl reissue it without one.
        no_key_id(dir, signed(ip, int_key, parent), parent)
    } else {
        signed(ip, int_key, parent)
    };

    // Files, in the Makefile's layout first.
    let mut ca_cert = int.pem.clone();
    let mut ca_key = int.key.serialize_pem();
    let mut chain: Vec<&str> = vec![&int.pem];
    if let Some(mid) = &mid {
        chain.push(&mid.pem);
    }
    chain.push(&root.pem);
    let mut chain_pem: String = chain.concat();
    let mut root_pem = root.pem.clone();
    let mut crl: Option<String> = None;
    for m in mutations {
        match m {
            Mutation::Chain(shape) => {
                chain_pem = match shape {
                    ChainShape::IntOnly => int.pem.clone(),
                    ChainShape::Empty => String::new(),
                    ChainShape::Reversed => chain.iter().rev().copied().collect(),
                    ChainShape::Duplicated => format!("{}{}", int.pem, chain.concat()),
                    ChainShape::WithForeignRoot => format!("{}{}", chain.concat(), foreign.pem),
                    ChainShape::MissingMid => format!("{}{}", int.pem, root.pem),
                    ChainShape::ExpiredFirst => {
                        let mut p = intermediate_params("old");
                        p.not_before = now - Duration::days(30);
                        p.not_after = now - Duration::days(2);
                        let old = signed(p, keys.get(Alg::P256, index + 4), &root);
                        format!("{}{}", old.pem, chain.concat())
                    }
                    ChainShape::GarbageFirst => format!(
                        "{}{}",
                        pem("X509 CRL", b"\x30\x03\x02\x01\x01"),
                        chain.concat()
                    ),
                    ChainShape::RootFirst => format!("{}{}", root.pem, int.pem),
                }
            }
            Mutation::Roots(shape) => {
                root_pem = match shape {
                    RootShape::ForeignFirst => format!("{}{}", foreign.pem, root.pem),
                    RootShape::ForeignLast => format!("{}{}", root.pem, foreign.pem),
                    RootShape::ForeignOnly => foreign.pem.clone(),
                    RootShape::Intermediate => int.pem.clone(),
                    RootShape::Mid => mid
                        .as_ref()
                        .map_or_else(|| int.pem.clone(), |m| m.pem.clone()),
                    RootShape::Empty => String::new(),
                    RootShape::Twice => format!("{}{}", root.pem, root.pem),
                }
            }
            Mutation::CaCert(shape) => {
                ca_cert = match shape {
                    CaCertShape::WithRootAfter => format!("{}{}", int.pem, root.pem),
                    CaCertShape::GarbageBlockFirst => {
                        format!(
                            "{}{}",
                            pem("EC PARAMETERS", b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"),
                            int.pem
                        )
                    }
                    CaCertShape::TrustedLabel => {
                        int.pem.replace("CERTIFICATE", "TRUSTED CERTIFICATE")
                    }
                    CaCertShape::RootOnly => root.pem.clone(),
                    CaCertShape::KeyBlockFirst => format!("{}{}", int.key.serialize_pem(), int.pem),
                }
            }
            Mutation::Key(shape) => {
                ca_key = match shape {
                    KeyShape::Native => native_key(dir, &int.key, true),
                    KeyShape::NativeNoParams => native_key(dir, &int.key, false),
                    KeyShape::EcParametersFirst => format!(
                        "{}{}",
                        pem("EC PARAMETERS", b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"),
                        native_key(dir, &int.key, true)
                    ),
                    KeyShape::Encrypted => {
                        pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00])
                    }
                    KeyShape::LegacyEncrypted => concat!(
                        "-----BEGIN EC ",
                        "PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
                        "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n",
                        "-----END EC PRIVATE KEY-----\n"
                    )
                    .to_owned(),
                    KeyShape::Mismatch => keys.get(int_alg, index + 5).serialize_pem(),
                    KeyShape::CertFirst => format!("{}{}", int.pem, int.key.serialize_pem()),
                    KeyShape::UnknownLabel => {
                        int.key.serialize_pem().replace("PRIVATE KEY", "SECRET KEY")
                    }
                    KeyShape::Empty => String::new(),
                }
            }
            Mutation::Crl(shape) => {
                let signers: Vec<&Made> = std::iter::once(&int)
                    .chain(mid.as_ref())
                    .chain(std::iter::once(&root))
                    .collect();
                crl = Some(match shape {
                    CrlShape::Valid => signers.iter().map(|s| crl_by(s)).collect(),
                    CrlShape::MissingOne => signers[..signers.len() - 1]
                        .iter()
                        .map(|s| crl_by(s))
                        .collect(),
                    CrlShape::WrongSigner => crl_by(&foreign),
                    CrlShape::Garbage => pem("X509 CRL", b"\x30\x03\x02\x01\x01"),
                    CrlShape::Empty => String::new(),
                });
            }
            _ => {}
        }
    }

    let mut files: Vec<(FileName, String)> = if tls {
        vec![
            (FileName::CaCert, ca_cert),
            (FileName::CaKey, ca_key),
            (FileName::RootCert, root_pem),
        ]
    } else {
        vec![
            (FileName::CaCert, ca_cert),
            (FileName::CaKey, ca_key),
            (FileName::CertChain, chain_pem),
            (FileName::RootCert, root_pem),
        ]
    };
    for m in mutations {
        if let Mutation::Framing { file, how } = m
            && let Some((_, text)) = files.iter_mut().find(|(f, _)| f == file)
        {
            *text = frame(text, *how);
        }
    }
    for m in mutations {
        if let Mutation::Delete(file) = m {
            files.retain(|(f, _)| f != file);
        }
    }
    for (file, text) in files {
        std::fs::write(dir.join(file.name(tls)), text).unwrap();
    }
    if let (Some(crl), false) = (crl, tls) {
        std::fs::write(dir.join("ca-crl.pem"), crl).unwrap();
    }
    if let Some((bits, digest)) = mutations.iter().find_map(|m| match m {
        Mutation::OpensslInt { bits, digest } => Some((*bits, *digest)),
        _ => None,
    }) {
        openssl_intermediate(dir, &root, bits, digest, tls);
    }
    // The root's key, for tests that issue another intermediate under the same root
    // (istiod reads no file of that name).
    std::fs::write(dir.join(ROOT_KEY_FILE), root.key.serialize_pem()).unwrap();
}

/// Where [`build`] leaves the root's key.
pub const ROOT_KEY_FILE: &str = ".root-key.pem";

fn eku(which: &str) -> Vec<ExtendedKeyUsagePurpose> {
    match which {
        "serverAuth" => vec![ExtendedKeyUsagePurpose::ServerAuth],
        "clientAuth" => vec![ExtendedKeyUsagePurpose::ClientAuth],
        "both" => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        "any" => vec![ExtendedKeyUsagePurpose::Any],
        "codeSigning" => vec![ExtendedKeyUsagePurpose::CodeSigning],
        _ => Vec::new(),
    }
}

/// The key as openssl's traditional encoding: PKCS#1 for RSA, SEC1 for EC (with or
/// without the curve parameters).
fn native_key(dir: &Path, key: &KeyPair, params: bool) -> String {
    let tmp = dir.join(".pkcs8.tmp");
    std::fs::write(&tmp, key.serialize_pem()).unwrap();
    let out = dir.join(".native.tmp");
    let (tmp_s, out_s) = (tmp.to_str().unwrap(), out.to_str().unwrap());
    if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
        openssl(dir, &["pkey", "-in", tmp_s, "-traditional", "-out", out_s]);
    } else if params {
        openssl(dir, &["ec", "-in", tmp_s, "-out", out_s]);
    } else {
        let der = sec1_without_params(&key.serialize_pem());
        std::fs::write(&out, pem("EC PRIVATE KEY", &der)).unwrap();
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&out);
    text
}

/// The SEC1 key inside a PKCS#8 EC key (RFC 5915 there omits the curve).
fn sec1_without_params(pkcs8_pem: &str) -> Vec<u8> {
    let der = pem::parse(pkcs8_pem).unwrap().into_contents();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let key = sec1::EcPrivateKey::try_from(info.private_key).unwrap();
    let bare = sec1::EcPrivateKey {
        private_key: key.private_key,
        parameters: None,
        public_key: key.public_key,
    };
    sec1::der::Encode::to_der(&bare).unwrap()
}

/// `made` reissued by openssl from the same key and issuer, without a subjectKeyIdentifier.
fn no_key_id(dir: &Path, made: Made, issuer: &Made) -> Made {
    let w = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let cert = w(".int.tmp", &made.pem);
    let key = w(".intkey.tmp", &made.key.serialize_pem());
    let ca = w(".ca.tmp", &issuer.pem);
    let ca_key = w(".cakey.tmp", &issuer.key.serialize_pem());
    let ext = w(
        ".ext.tmp",
        "[v3]\nbasicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, digitalSignature, keyCertSign\nsubjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n",
    );
    let csr = dir.join(".csr.tmp").to_str().unwrap().to_owned();
    let out = dir.join(".out.tmp").to_str().unwrap().to_owned();
    openssl(
        dir,
        &[
            "x509",
            "-x509toreq",
            "-in",
            &cert,
            "-signkey",
            &key,
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "3650",
            "-sha256",
            "-extfile",
            &ext,
            "-extensions",
            "v3",
            "-out",
            &out,
        ],
    );
    let pem_text = std::fs::read_to_string(&out).unwrap();
    for f in [cert, key, ca, ca_key, ext, csr, out] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(dir.join(".ca.srl"));
    let _ = std::fs::remove_file(dir.join(".ca.tmp.srl"));
    Made {
        key: made.key,
        pem: pem_text,
    }
}

/// Replaces the signing certificate, its key and the chain with an intermediate openssl
/// makes under `root`: RSA `bits`, signed with `digest`, the Makefile's extensions.
fn openssl_intermediate(dir: &Path, root: &Made, bits: u32, digest: &str, tls: bool) {
    let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    std::fs::write(dir.join(".root.tmp"), &root.pem).unwrap();
    std::fs::write(dir.join(".rootkey.tmp"), root.key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join(".ext.tmp"),
        "[v3]\nbasicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    let bits = bits.to_string();
    openssl(dir, &["genrsa", "-out", &path(".intkey.tmp"), &bits]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &path(".intkey.tmp"),
            "-subj",
            "/O=Istio/CN=Intermediate CA/L=cluster1",
            "-out",
            &path(".csr.tmp"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &path(".csr.tmp"),
            "-CA",
            &path(".root.tmp"),
            "-CAkey",
            &path(".rootkey.tmp"),
            "-set_serial",
            "4096",
            "-days",
            "3650",
            &format!("-{digest}"),
            "-extfile",
            &path(".ext.tmp"),
            "-extensions",
            "v3",
            "-out",
            &path(".int.tmp"),
        ],
    );
    let cert = std::fs::read_to_string(dir.join(".int.tmp")).unwrap();
    let key = std::fs::read_to_string(dir.join(".intkey.tmp")).unwrap();
    let (cert_file, key_file) = if tls {
        ("tls.crt", "tls.key")
    } else {
        ("ca-cert.pem", "ca-key.pem")
    };
    std::fs::write(dir.join(cert_file), &cert).unwrap();
    std::fs::write(dir.join(key_file), key).unwrap();
    if !tls {
        std::fs::write(dir.join("cert-chain.pem"), format!("{cert}{}", root.pem)).unwrap();
    }
    for f in [
        ".root.tmp",
        ".rootkey.tmp",
        ".ext.tmp",
        ".intkey.tmp",
        ".csr.tmp",
        ".int.tmp",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

fn frame(text: &str, how: Framing) -> String {
    match how {
        Framing::Glued => text.replace("-----\n-----BEGIN", "----------BEGIN"),
        Framing::NoFinalNewline => text.trim_end().to_owned(),
        Framing::Crlf => text.replace('\n', "\r\n"),
        Framing::TextAround => {
            format!("subject=O = Istio, CN = Root CA\nissuer=O = Istio\n{text}trailing words\n")
        }
        Framing::CorruptFirstBlock => match text.find("-----\n") {
            Some(i) => format!("{}-----\n!!!!{}", &text[..i], &text[i + 6..]),
            None => text.to_owned(),
        },
        Framing::HeaderOnFirstBlock => match text.find("-----\n") {
            Some(i) => format!("{}-----\nComment: added\n\n{}", &text[..i], &text[i + 6..]),
            None => text.to_owned(),
        },
        Framing::Truncated => text[..text.len() / 2].to_owned(),
        Framing::ExtraCsrBlock => format!("{}{text}", pem("CERTIFICATE REQUEST", b"\x30\x00")),
    }
}

/// The fixed corpus: named cases, each a trigger or a near miss of a rule.
pub fn fixed() -> Vec<(&'static str, Vec<Mutation>)> {
    use Mutation as M;
    vec![
        ("makefile layout", vec![]),
        ("tls layout", vec![M::TlsLayout]),
        (
            "three levels",
            vec![M::ThreeLevels {
                mid_pathlen: Some(1),
            }],
        ),
        (
            "three levels, mid pathlen 0 (pathlen-violation)",
            vec![M::ThreeLevels {
                mid_pathlen: Some(0),
            }],
        ),
        (
            "three levels, mid missing from the chain",
            vec![
                M::ThreeLevels { mid_pathlen: None },
                M::Chain(ChainShape::MissingMid),
            ],
        ),
        (
            "three levels, root-cert holds the issuing CA",
            vec![
                M::ThreeLevels { mid_pathlen: None },
                M::Roots(RootShape::Mid),
            ],
        ),
        (
            "tls layout, ca.crt is the intermediate",
            vec![M::TlsLayout, M::Roots(RootShape::Intermediate)],
        ),
        ("ca-cert not a CA", vec![M::IntNotCa]),
        (
            "ca-cert without basicConstraints",
            vec![M::IntNoBasicConstraints],
        ),
        (
            "ca-cert pathlen unconstrained (near miss)",
            vec![M::IntPathLen(None)],
        ),
        (
            "root pathlen 0 above one intermediate",
            vec![M::RootPathLen0],
        ),
        (
            "root without basicConstraints",
            vec![M::RootNoBasicConstraints],
        ),
        ("root expired", vec![M::RootExpired]),
        ("intermediate expired", vec![M::IntExpired]),
        ("intermediate not yet valid", vec![M::IntNotYetValid]),
        (
            "intermediate expires in 6 h (default TTL capped)",
            vec![M::IntExpiresSoon],
        ),
        (
            "intermediate EKU serverAuth only",
            vec![M::IntEku("serverAuth")],
        ),
        (
            "intermediate EKU clientAuth only (eku-excludes-server-auth)",
            vec![M::IntEku("clientAuth")],
        ),
        (
            "intermediate EKU codeSigning",
            vec![M::IntEku("codeSigning")],
        ),
        ("intermediate EKU any (near miss)", vec![M::IntEku("any")]),
        ("root EKU clientAuth", vec![M::RootEku("clientAuth")]),
        (
            "intermediate without keyCertSign (Go ignores KU)",
            vec![M::IntKeyUsageNoCertSign],
        ),
        ("intermediate without key id", vec![M::IntNoKeyId]),
        ("intermediate RSA 2048", vec![M::IntAlg(AlgName::Rsa2048)]),
        ("intermediate P-384", vec![M::IntAlg(AlgName::P384)]),
        (
            "intermediate RSA 1024 (weak-rsa; Go reads it)",
            vec![M::OpensslInt {
                bits: 1024,
                digest: "sha256",
            }],
        ),
        (
            "intermediate RSA 2048 by openssl (near miss)",
            vec![M::OpensslInt {
                bits: 2048,
                digest: "sha256",
            }],
        ),
        (
            "intermediate signed with SHA-1 (weak-signature)",
            vec![M::OpensslInt {
                bits: 2048,
                digest: "sha1",
            }],
        ),
        (
            "intermediate RSA 1024, tls layout",
            vec![
                M::OpensslInt {
                    bits: 1024,
                    digest: "sha256",
                },
                M::TlsLayout,
            ],
        ),
        (
            "key PKCS#1 RSA",
            vec![M::IntAlg(AlgName::Rsa2048), M::Key(KeyShape::Native)],
        ),
        ("key SEC1", vec![M::Key(KeyShape::Native)]),
        (
            "key SEC1 without curve",
            vec![M::Key(KeyShape::NativeNoParams)],
        ),
        (
            "key EC PARAMETERS first",
            vec![M::Key(KeyShape::EcParametersFirst)],
        ),
        ("key encrypted PKCS#8", vec![M::Key(KeyShape::Encrypted)]),
        (
            "key legacy encrypted",
            vec![M::Key(KeyShape::LegacyEncrypted)],
        ),
        ("key mismatch", vec![M::Key(KeyShape::Mismatch)]),
        (
            "key file starts with a certificate",
            vec![M::Key(KeyShape::CertFirst)],
        ),
        ("key unknown label", vec![M::Key(KeyShape::UnknownLabel)]),
        ("key empty", vec![M::Key(KeyShape::Empty)]),
        (
            "ca-cert first block not a certificate",
            vec![M::CaCert(CaCertShape::GarbageBlockFirst)],
        ),
        (
            "ca-cert TRUSTED CERTIFICATE label",
            vec![M::CaCert(CaCertShape::TrustedLabel)],
        ),
        (
            "ca-cert with the root after it",
            vec![M::CaCert(CaCertShape::WithRootAfter)],
        ),
        (
            "ca-cert is the root",
            vec![M::CaCert(CaCertShape::RootOnly)],
        ),
        (
            "ca-cert starts with its key",
            vec![M::CaCert(CaCertShape::KeyBlockFirst)],
        ),
        (
            "cert-chain only the intermediate",
            vec![M::Chain(ChainShape::IntOnly)],
        ),
        ("cert-chain empty", vec![M::Chain(ChainShape::Empty)]),
        ("cert-chain reversed", vec![M::Chain(ChainShape::Reversed)]),
        (
            "cert-chain duplicated",
            vec![M::Chain(ChainShape::Duplicated)],
        ),
        (
            "cert-chain with a foreign root",
            vec![M::Chain(ChainShape::WithForeignRoot)],
        ),
        (
            "cert-chain starts with an expired certificate",
            vec![M::Chain(ChainShape::ExpiredFirst)],
        ),
        (
            "cert-chain starts with a non-certificate block",
            vec![M::Chain(ChainShape::GarbageFirst)],
        ),
        (
            "cert-chain root first",
            vec![M::Chain(ChainShape::RootFirst)],
        ),
        (
            "root-cert foreign first",
            vec![M::Roots(RootShape::ForeignFirst)],
        ),
        (
            "root-cert foreign last",
            vec![M::Roots(RootShape::ForeignLast)],
        ),
        (
            "root-cert foreign only",
            vec![M::Roots(RootShape::ForeignOnly)],
        ),
        ("root-cert empty", vec![M::Roots(RootShape::Empty)]),
        ("root-cert twice", vec![M::Roots(RootShape::Twice)]),
        (
            "root-cert unparseable extra block",
            vec![M::Framing {
                file: FileName::RootCert,
                how: Framing::ExtraCsrBlock,
            }],
        ),
        (
            "root-cert corrupt block",
            vec![
                M::Roots(RootShape::ForeignFirst),
                M::Framing {
                    file: FileName::RootCert,
                    how: Framing::CorruptFirstBlock,
                },
            ],
        ),
        (
            "cert-chain glued blocks",
            vec![M::Framing {
                file: FileName::CertChain,
                how: Framing::Glued,
            }],
        ),
        (
            "tls.crt without final newline (glues to ca.crt)",
            vec![
                M::TlsLayout,
                M::CaCert(CaCertShape::WithRootAfter),
                M::Framing {
                    file: FileName::CaCert,
                    how: Framing::NoFinalNewline,
                },
            ],
        ),
        (
            "ca-cert CRLF",
            vec![M::Framing {
                file: FileName::CaCert,
                how: Framing::Crlf,
            }],
        ),
        (
            "ca-cert text around (openssl x509 -text)",
            vec![M::Framing {
                file: FileName::CaCert,
                how: Framing::TextAround,
            }],
        ),
        (
            "ca-cert truncated",
            vec![M::Framing {
                file: FileName::CaCert,
                how: Framing::Truncated,
            }],
        ),
        (
            "ca-key header on its block",
            vec![M::Framing {
                file: FileName::CaKey,
                how: Framing::HeaderOnFirstBlock,
            }],
        ),
        (
            "missing cert-chain (incomplete)",
            vec![M::Delete(FileName::CertChain)],
        ),
        ("missing key (incomplete)", vec![M::Delete(FileName::CaKey)]),
        (
            "only the root (incomplete)",
            vec![
                M::Delete(FileName::CaCert),
                M::Delete(FileName::CaKey),
                M::Delete(FileName::CertChain),
            ],
        ),
        (
            "tls layout without ca.crt (incomplete)",
            vec![M::TlsLayout, M::Delete(FileName::RootCert)],
        ),
        ("crl valid", vec![M::Crl(CrlShape::Valid)]),
        (
            "crl valid, three levels",
            vec![
                M::ThreeLevels { mid_pathlen: None },
                M::Crl(CrlShape::Valid),
            ],
        ),
        ("crl missing the root's", vec![M::Crl(CrlShape::MissingOne)]),
        ("crl wrong signer", vec![M::Crl(CrlShape::WrongSigner)]),
        ("crl garbage", vec![M::Crl(CrlShape::Garbage)]),
        ("crl empty file", vec![M::Crl(CrlShape::Empty)]),
        (
            "crl with a non-certificate block in cert-chain",
            vec![M::Crl(CrlShape::Valid), M::Chain(ChainShape::GarbageFirst)],
        ),
        (
            "crl in the tls layout (ignored)",
            vec![M::TlsLayout, M::Crl(CrlShape::Garbage)],
        ),
    ]
}

/// `count` generated bundles from `seed`: each a valid bundle with one to three
/// mutations drawn from every family.
pub fn generated(seed: u64, count: usize) -> Vec<Vec<Mutation>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut all = Vec::with_capacity(count);
    for _ in 0..count {
        let n = rng.random_range(1..=3);
        let mut ms: Vec<Mutation> = Vec::new();
        for _ in 0..n {
            let m = draw(&mut rng);
            if !ms.contains(&m) {
                ms.push(m);
            }
        }
        all.push(ms);
    }
    all
}

fn draw(rng: &mut StdRng) -> Mutation {
    use Mutation as M;
    let file = |rng: &mut StdRng| match rng.random_range(0..4) {
        0 => FileName::CaCert,
        1 => FileName::CaKey,
        2 => FileName::CertChain,
        _ => FileName::RootCert,
    };
    match rng.random_range(0..16) {
        0 => M::TlsLayout,
        1 => M::ThreeLevels {
            mid_pathlen: [None, Some(0), Some(1)][rng.random_range(0..3)],
        },
        2 => [
            M::IntNotCa,
            M::IntNoBasicConstraints,
            M::IntPathLen(Some(1)),
            M::IntKeyUsageNoCertSign,
            M::IntNoKeyUsage,
        ][rng.random_range(0..5)]
        .clone(),
        3 => M::IntEku(
            ["serverAuth", "clientAuth", "both", "any", "codeSigning"][rng.random_range(0..5)],
        ),
        4 => [M::IntExpired, M::IntNotYetValid, M::IntExpiresSoon][rng.random_range(0..3)].clone(),
        5 => [
            M::RootNoBasicConstraints,
            M::RootExpired,
            M::RootPathLen0,
            M::RootEku("clientAuth"),
        ][rng.random_range(0..4)]
        .clone(),
        6 | 7 => M::Chain(
            [
                ChainShape::IntOnly,
                ChainShape::Empty,
                ChainShape::Reversed,
                ChainShape::Duplicated,
                ChainShape::WithForeignRoot,
                ChainShape::MissingMid,
                ChainShape::ExpiredFirst,
                ChainShape::GarbageFirst,
                ChainShape::RootFirst,
            ][rng.random_range(0..9)],
        ),
        8 => M::Roots(
            [
                RootShape::ForeignFirst,
                RootShape::ForeignLast,
                RootShape::ForeignOnly,
                RootShape::Intermediate,
                RootShape::Mid,
                RootShape::Empty,
                RootShape::Twice,
            ][rng.random_range(0..7)],
        ),
        9 => M::CaCert(
            [
                CaCertShape::WithRootAfter,
                CaCertShape::GarbageBlockFirst,
                CaCertShape::TrustedLabel,
                CaCertShape::RootOnly,
                CaCertShape::KeyBlockFirst,
            ][rng.random_range(0..5)],
        ),
        10 => M::Key(
            [
                KeyShape::Native,
                KeyShape::NativeNoParams,
                KeyShape::EcParametersFirst,
                KeyShape::Encrypted,
                KeyShape::LegacyEncrypted,
                KeyShape::Mismatch,
                KeyShape::CertFirst,
                KeyShape::UnknownLabel,
                KeyShape::Empty,
            ][rng.random_range(0..9)],
        ),
        11 | 12 => M::Framing {
            file: file(rng),
            how: [
                Framing::Glued,
                Framing::NoFinalNewline,
                Framing::Crlf,
                Framing::TextAround,
                Framing::CorruptFirstBlock,
                Framing::HeaderOnFirstBlock,
                Framing::Truncated,
                Framing::ExtraCsrBlock,
            ][rng.random_range(0..8)],
        },
        13 => M::Crl(
            [
                CrlShape::Valid,
                CrlShape::MissingOne,
                CrlShape::WrongSigner,
                CrlShape::Garbage,
                CrlShape::Empty,
            ][rng.random_range(0..5)],
        ),
        14 => M::Delete(file(rng)),
        _ => M::IntAlg([AlgName::P384, AlgName::Rsa2048][rng.random_range(0..2)]),
    }
}

/// Writes every case under `root`: the fixed corpus, then `count` generated from `seed`.
pub fn write_all(root: &Path, keys: &Keys, seed: u64, count: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, (name, ms)) in fixed().into_iter().enumerate() {
        let dir = root.join(format!("fixed-{i:03}"));
        build(&dir, keys, i, &ms);
        cases.push(Case {
            recipe: format!("fixed #{i} {name}: {ms:?}"),
            dir,
        });
    }
    for (i, ms) in generated(seed, count).into_iter().enumerate() {
        let dir = root.join(format!("gen-{i:04}"));
        build(&dir, keys, i, &ms);
        cases.push(Case {
            recipe: format!("seed={seed} #{i}: {ms:?}"),
            dir,
        });
    }
    cases
}
