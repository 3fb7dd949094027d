//! The certificates one run needs, made once, up front, with every key generated
//! in parallel: a shared root with `cluster1` and `cluster2`, a foreign root with
//! its own `cluster2`, a second intermediate for `cluster1` (rotation), and the
//! broken bundles users make.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use crate::pki::{self, IntermediateSpec, KeyAlg, PkiError, RootSpec, layout};

/// Directories of cacerts bundles, in the Makefile's layout.
#[derive(Debug, Clone)]
pub struct RunCerts {
    /// `<dir>/mesh`: `root-cert.pem` + `cluster1/`, `cluster2/`.
    pub mesh: PathBuf,
    /// `<dir>/foreign`: another root + `cluster2/`.
    pub foreign: PathBuf,
    /// `<dir>/rotated/cluster1`: a new intermediate under the mesh's root.
    pub rotated: PathBuf,
    /// Broken bundles: `incomplete` (no cert-chain.pem), `not-a-ca`, `key-mismatch`.
    pub bad: PathBuf,
}

impl RunCerts {
    pub fn cluster(&self, name: &str) -> PathBuf {
        self.mesh.join(name)
    }

    pub fn foreign_cluster(&self, name: &str) -> PathBuf {
        self.foreign.join(name)
    }

    pub fn rotated_cluster1(&self) -> PathBuf {
        self.rotated.join("cluster1")
    }

    pub fn bad(&self, kind: &str) -> PathBuf {
        self.bad.join(kind)
    }

    /// Makes every bundle under `dir` (which must be empty or missing).
    pub fn generate(dir: &Path, key: KeyAlg) -> Result<RunCerts, PkiError> {
        let certs = RunCerts {
            mesh: dir.join("mesh"),
            foreign: dir.join("foreign"),
            rotated: dir.join("rotated"),
            bad: dir.join("bad"),
        };
        let root_spec = RootSpec {
            key,
            ..RootSpec::default()
        };
        let spec = |c: &str| IntermediateSpec {
            key,
            ..IntermediateSpec::new(c)
        };
        let (mesh, foreign, rotated_key) = std::thread::scope(|s| {
            let foreign = s.spawn(|| {
                pki::make::cacerts(
                    &certs.foreign,
                    &root_spec,
                    &[spec("cluster2")],
                    false,
                    false,
                )
            });
            let rotated_key = s.spawn(|| key.generate());
            let mesh = pki::make::cacerts(
                &certs.mesh,
                &root_spec,
                &[spec("cluster1"), spec("cluster2")],
                false,
                false,
            );
            (
                mesh,
                foreign.join().expect("key generation does not panic"),
                rotated_key.join().expect("key generation does not panic"),
            )
        });
        let (mesh, _foreign) = (mesh?, foreign?);
        let rotated =
            pki::generate_intermediate_with_key(&mesh.root, &spec("cluster1"), rotated_key?)?;
        layout::create_key_dir(&certs.rotated)?;
        layout::write_cacerts(
            &certs.rotated,
            &spec("cluster1"),
            &rotated,
            &mesh.root,
            false,
        )?;
        certs.write_bad(&mesh.root)?;
        Ok(certs)
    }

    fn write_bad(&self, root: &pki::Ca) -> Result<(), PkiError> {
        let good = self.cluster("cluster1");
        let copy = |kind: &str| -> Result<PathBuf, PkiError> {
            let d = self.bad(kind);
            layout::create_key_dir(&d)?;
            for f in layout::CACERTS_FILES {
                std::fs::copy(good.join(f), d.join(f))
                    .map_err(PkiError::io("copy", good.join(f)))?;
            }
            Ok(d)
        };
        // Some but not all of the files: refused since 1.26.
        let d = copy("incomplete")?;
        std::fs::remove_file(d.join(layout::CERT_CHAIN))
            .map_err(PkiError::io("remove", d.join(layout::CERT_CHAIN)))?;
        // The other cluster's key next to this cluster's certificate.
        let d = copy("key-mismatch")?;
        std::fs::copy(
            self.cluster("cluster2").join(layout::CA_KEY),
            d.join(layout::CA_KEY),
        )
        .map_err(PkiError::io("copy", d.join(layout::CA_KEY)))?;
        // A leaf-like certificate (CA:FALSE) with the intermediate's key: istiod's rule 4.
        let d = copy("not-a-ca")?;
        let ca = pki::Ca::load(&good.join(layout::CA_CERT), &good.join(layout::CA_KEY))?;
        let not_ca = not_a_ca(root, &ca)?;
        let pem = pki::to_pem(&not_ca);
        layout::write_atomic(&d.join(layout::CA_CERT), pem.as_bytes(), 0o644)?;
        layout::write_atomic(
            &d.join(layout::CERT_CHAIN),
            format!("{pem}{}", root.cert_pem()).as_bytes(),
            0o644,
        )?;
        Ok(())
    }
}

fn not_a_ca(
    root: &pki::Ca,
    holder: &pki::Ca,
) -> Result<rustls_pki_types::CertificateDer<'static>, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Istio");
    dn.push(DnType::CommonName, "Not A CA");
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(365);
    params.serial_number = Some(pki::random_serial());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(holder.key(), &root.issuer()?)
        .map_err(|source| PkiError::Generate {
            what: "a non-CA certificate".into(),
            source,
        })?;
    Ok(cert.der().clone())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn every_directory_that_holds_a_key_is_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = RunCerts::generate(tmp.path(), KeyAlg::P256).unwrap();
        let mode = |d: &Path| std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        let mut dirs = vec![
            certs.cluster("cluster1"),
            certs.rotated_cluster1(),
            certs.bad("incomplete"),
        ];
        dirs.retain(|d| d.join("ca-key.pem").exists() || d.join("ca-cert.pem").exists());
        assert!(dirs.len() >= 2, "{dirs:?}");
        for d in dirs {
            assert_eq!(mode(&d), 0o700, "`{}`", d.display());
        }
    }
}
