//! Test inputs for the local mesh: small CAs (P-256, fast), cacerts directories
//! in istiod's layout, and the plumbing to read what came back.

use std::path::{Path, PathBuf};

use meshtrust::pki::{self, Ca, IntermediateSpec, KeyAlg, RootSpec};
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;

pub const NS: &str = "foo";
pub const TD: &str = "cluster.local";

/// A temporary directory of cacerts bundles under one or more roots.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Self {
        Certs {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `make <cluster>-cacerts` below `root` with P-256 keys, into `<dir>/<cluster>`.
    pub fn cacerts(&self, root: &Ca, cluster: &str) -> PathBuf {
        let spec = IntermediateSpec {
            key: KeyAlg::P256,
            ..IntermediateSpec::new(cluster)
        };
        let intermediate = pki::generate_intermediate(root, &spec).expect("an intermediate");
        pki::layout::write_cacerts(self.path(), &spec, &intermediate, root, false)
            .expect("a cacerts directory")
    }

    /// A directory with exactly `files` (name, bytes).
    pub fn custom(&self, name: &str, files: &[(&str, Vec<u8>)]) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).expect("create a bundle directory");
        for (file, bytes) in files {
            std::fs::write(dir.join(file), bytes).expect("write a bundle file");
        }
        dir
    }
}

/// `make root-ca` with a P-256 key.
pub fn root() -> Ca {
    pki::generate_root(&RootSpec {
        key: KeyAlg::P256,
        ..RootSpec::default()
    })
    .expect("a root")
}

pub fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
}

pub fn der(dir: &Path, file: &str) -> CertificateDer<'static> {
    pki::parse_certs(&read(dir, file), &dir.join(file)).expect("a certificate")[0].clone()
}

pub fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).expect("X.509").1
}

pub fn pems_to_ders(pems: &[String]) -> Vec<CertificateDer<'static>> {
    pki::parse_certs(pems.concat().as_bytes(), Path::new("<response>")).expect("PEM certificates")
}

/// The URI SANs of a certificate.
pub fn uris(der: &[u8]) -> Vec<String> {
    meshtrust::mesh::tls::spiffe_ids(der)
}

pub fn spiffe(sa: &str) -> String {
    format!("spiffe://{TD}/ns/{NS}/sa/{sa}")
}
