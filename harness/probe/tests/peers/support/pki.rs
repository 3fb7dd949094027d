//! Certificates shaped like the ones istiod issues under a plugged-in CA (ISTIO-FACTS §1, §3),
//! made by openssl at test time: no key is committed.

use std::path::{Path, PathBuf};
use std::process::Command;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::scratch::Scratch;

/// The workload key algorithms Istio's agent can use; every chain test runs for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa2048,
    P256,
    P384,
}

impl KeyType {
    pub const ALL: [KeyType; 3] = [KeyType::Rsa2048, KeyType::P256, KeyType::P384];

    fn newkey_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyType::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::P384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        }
    }
}

const EXTENSIONS: &str = "\
[req]
distinguished_name = dn
[dn]

[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash

[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
subjectAltName = DNS:istiod.istio-system.svc
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[workload]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = critical, URI:spiffe://cluster.local/ns/foo/sa/httpbin
authorityKeyIdentifier = keyid

[sleep]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = critical, URI:spiffe://cluster.local/ns/foo/sa/sleep
authorityKeyIdentifier = keyid
";

/// A root, an intermediate (pathlen:0) under it, an httpbin server leaf and a sleep client
/// leaf under that, all as files in a scratch directory.
pub struct Pki {
    pub dir: Scratch,
    pub key_type: KeyType,
}

impl Pki {
    pub fn new(key_type: KeyType) -> Self {
        let dir = Scratch::new("pki");
        std::fs::write(dir.join("extensions.cnf"), EXTENSIONS).unwrap();
        let pki = Self { dir, key_type };
        // RSA 2048 rather than the Makefile's 4096 for the CAs: the probe does not care and
        // 4096-bit generation would dominate the suite's time.
        pki.self_signed("root", "/O=Istio/CN=Root CA");
        pki.signed(
            "intermediate",
            "/O=Istio/CN=Intermediate CA/L=cluster1",
            "root",
            KeyType::Rsa2048,
        );
        pki.signed("workload", "/", "intermediate", key_type);
        pki.signed("sleep", "/", "intermediate", key_type);
        // What istiod serves with the Makefile layout: leaf, intermediate, root, root.
        pki.concat(
            "served-chain.pem",
            &["intermediate.pem", "root.pem", "root.pem"],
        );
        pki.concat("sleep-chain.pem", &["sleep.pem", "intermediate.pem"]);
        pki
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn cert(&self, name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.path(&format!("{name}.pem")))
            .unwrap_or_else(|e| panic!("cannot read `{name}.pem`: {e}"))
    }

    /// The chain the server presents, in order.
    pub fn served_chain(&self) -> Vec<CertificateDer<'static>> {
        ["workload", "intermediate", "root", "root"]
            .iter()
            .map(|name| self.cert(name))
            .collect()
    }

    fn self_signed(&self, name: &str, subject: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            subject,
            "-days",
            "10",
            "-config",
            "extensions.cnf",
            "-extensions",
            name,
        ]);
    }

    fn signed(&self, name: &str, subject: &str, issuer: &str, key_type: KeyType) {
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend(key_type.newkey_args());
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        args.extend([
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
            "-config",
            "extensions.cnf",
        ]);
        self.openssl(&args);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-set_serial",
            &serial(name),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "1",
            "-extfile",
            "extensions.cnf",
            "-extensions",
            name,
        ]);
    }

    fn concat(&self, out: &str, parts: &[&str]) {
        let text: String = parts
            .iter()
            .map(|p| std::fs::read_to_string(self.path(p)).unwrap())
            .collect();
        std::fs::write(self.path(out), text).unwrap();
    }

    fn openssl(&self, args: &[&str]) {
        run_openssl(self.dir.path(), args);
    }
}

fn serial(name: &str) -> String {
    // Distinct per certificate so no two certificates in a chain share issuer and serial.
    format!(
        "0x{:x}",
        name.bytes()
            .fold(1u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b.into()))
    )
}

pub fn run_openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("these tests need `openssl` on PATH (Debian package `openssl`)");
    assert!(
        out.status.success(),
        "openssl {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
