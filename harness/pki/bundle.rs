//! Reading a plugged-in `cacerts` directory, in either layout istiod accepts
//! (ISTIO-FACTS §2): istiod's four files, or `kubernetes.io/tls`'s
//! `tls.crt`/`tls.key`/`ca.crt` (used when `tls.crt` exists).
//!
//! Reading is lenient: a missing or unparseable file is recorded, not fatal, so
//! that `check` can report every problem at once. [`Bundle::signing`] is the
//! strict view that a verifier or a CA needs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;

use super::layout::{CA_CERT, CA_CRL, CA_KEY, CERT_CHAIN, ROOT_CERT};
use super::{PkiError, encoding};

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const TLS_CA: &str = "ca.crt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`.
    Istiod,
    /// `tls.crt`, `tls.key`, `ca.crt` (cert-manager's secrets).
    KubernetesTls,
}

/// One file of a bundle as read from disk.
#[derive(Debug, Clone)]
pub struct BundleFile {
    /// The file name inside the bundle (`ca-cert.pem`).
    pub name: &'static str,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// Unix permission bits, for the key-file check.
    pub mode: u32,
}

impl BundleFile {
    pub fn certs(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        encoding::parse_certs(&self.bytes, &self.path)
    }

    pub fn key(&self) -> Result<KeyPair, PkiError> {
        encoding::parse_key(&self.bytes, &self.path)
    }
}

/// A cacerts directory: which files exist, and their bytes.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    /// The directory's own name (`cluster1`), used to name its certificates.
    pub name: String,
    pub layout: Layout,
    /// The signing certificate: `ca-cert.pem` or `tls.crt`.
    pub ca_cert: Option<BundleFile>,
    /// The signing key: `ca-key.pem` or `tls.key`.
    pub ca_key: Option<BundleFile>,
    /// `cert-chain.pem`; in the TLS layout the chain is `tls.crt` + `ca.crt` and this is `None`.
    pub cert_chain: Option<BundleFile>,
    /// The trust anchor(s): `root-cert.pem` or `ca.crt`.
    pub root_cert: Option<BundleFile>,
    /// `ca-crl.pem`, istiod layout only (istiod ignores it in the `kubernetes.io/tls` layout).
    pub crl: Option<BundleFile>,
}

/// The complete, parsed view of a bundle that signs workload certificates.
#[derive(Debug, Clone)]
pub struct Signing {
    pub ca_cert: CertificateDer<'static>,
    /// `cert-chain.pem`'s certificates in file order (TLS layout: `tls.crt` then `ca.crt`).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// `root-cert.pem`'s certificates (several during a root rotation).
    pub roots: Vec<CertificateDer<'static>>,
}

impl Bundle {
    /// Reads `dir`. Errors only when it cannot be read or holds none of the bundle files.
    pub fn read(dir: &Path) -> Result<Bundle, PkiError> {
        let meta = fs::metadata(dir).map_err(PkiError::io("read", dir))?;
        if !meta.is_dir() {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            return Err(PkiError::NotADirectory {
                path: dir.to_owned(),
                parent,
            });
        }
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        let read = |file: &'static str| read_optional(dir, file);
        let bundle = if dir.join(TLS_CRT).exists() {
            Bundle {
                dir: dir.to_owned(),
                name,
                layout: Layout::KubernetesTls,
                ca_cert: read(TLS_CRT)?,
                ca_key: read(TLS_KEY)?,
                cert_chain: None,
                root_cert: read(TLS_CA)?,
                crl: None,
            }
        } else {
            Bundle {
                dir: dir.to_owned(),
                name,
                layout: Layout::Istiod,
                ca_cert: read(CA_CERT)?,
                ca_key: read(CA_KEY)?,
                cert_chain: read(CERT_CHAIN)?,
                root_cert: read(ROOT_CERT)?,
                crl: read(CA_CRL)?,
            }
        };
        if bundle.files().next().is_none() {
            return Err(PkiError::NotABundle {
                dir: dir.to_owned(),
                expected: "ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem (or tls.crt, tls.key, ca.crt)",
            });
        }
        Ok(bundle)
    }

    /// The files present, in istiod's order.
    pub fn files(&self) -> impl Iterator<Item = &BundleFile> {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.cert_chain,
            &self.root_cert,
        ]
        .into_iter()
        .flatten()
    }

    /// The file names this layout needs and that are missing.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let want: &[(&Option<BundleFile>, &'static str)] = match self.layout {
            Layout::Istiod => &[
                (&self.ca_cert, CA_CERT),
                (&self.ca_key, CA_KEY),
                (&self.cert_chain, CERT_CHAIN),
                (&self.root_cert, ROOT_CERT),
            ],
            Layout::KubernetesTls => &[
                (&self.ca_cert, TLS_CRT),
                (&self.ca_key, TLS_KEY),
                (&self.root_cert, TLS_CA),
            ],
        };
        for (file, name) in want {
            if file.is_none() {
                missing.push(*name);
            }
        }
        missing
    }

    pub fn expected_files(&self) -> &'static str {
        match self.layout {
            Layout::Istiod => "ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem",
            Layout::KubernetesTls => "tls.crt, tls.key and ca.crt",
        }
    }

    /// The certificates of the bundle, parsed, for verifying chains against it.
    /// The key is not needed (and not read) here.
    pub fn signing(&self) -> Result<Signing, PkiError> {
        fn need<'a>(
            b: &Bundle,
            f: &'a Option<BundleFile>,
            file: &'static str,
        ) -> Result<&'a BundleFile, PkiError> {
            f.as_ref().ok_or(PkiError::MissingFile {
                dir: b.dir.clone(),
                file,
                expected: b.expected_files(),
            })
        }
        let (cert_name, root_name) = match self.layout {
            Layout::Istiod => (CA_CERT, ROOT_CERT),
            Layout::KubernetesTls => (TLS_CRT, TLS_CA),
        };
        let ca_file = need(self, &self.ca_cert, cert_name)?;
        let ca_certs = ca_file.certs()?;
        let roots = need(self, &self.root_cert, root_name)?.certs()?;
        let cert_chain = match self.layout {
            Layout::Istiod => need(self, &self.cert_chain, CERT_CHAIN)?.certs()?,
            Layout::KubernetesTls => ca_certs.iter().chain(roots.iter()).cloned().collect(),
        };
        Ok(Signing {
            ca_cert: ca_certs[0].clone(),
            cert_chain,
            roots,
        })
    }
}

fn read_optional(dir: &Path, name: &'static str) -> Result<Option<BundleFile>, PkiError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => {
            let mode = fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            Ok(Some(BundleFile {
                name,
                path,
                bytes,
                mode,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("read", path)(e)),
    }
}
