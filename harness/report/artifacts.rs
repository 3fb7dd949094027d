use std::path::Path;

use super::RunReport;
use crate::pki::{PkiError, layout};

/// Public bundle files copied to the artifacts; keys are never among them.
const PUBLIC_FILES: [&str; 6] = [
    layout::CA_CERT,
    layout::CERT_CHAIN,
    layout::ROOT_CERT,
    crate::pki::TLS_CRT,
    crate::pki::TLS_CA,
    "ca-crl.pem",
];

/// `<dir>/<scenario>/<label>.pem` for every captured chain, and
/// `<dir>/<scenario>/cacerts/<bundle>/` with the bundle's public files.
pub fn write_artifacts(report: &RunReport, dir: &Path) -> Result<(), PkiError> {
    for s in &report.scenarios {
        let sdir = dir.join(&s.name);
        std::fs::create_dir_all(&sdir).map_err(PkiError::io("create directory", &sdir))?;
        for chain in &s.chains {
            let file = sdir.join(format!("{}.pem", chain.label.replace('/', "_")));
            layout::write_atomic(&file, chain.pem.as_bytes(), 0o644)?;
        }
        for bundle in &s.bundles {
            let name = bundle
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bdir = sdir.join("cacerts").join(&name);
            std::fs::create_dir_all(&bdir).map_err(PkiError::io("create directory", &bdir))?;
            for f in PUBLIC_FILES {
                let src = bundle.join(f);
                if let Ok(bytes) = std::fs::read(&src) {
                    layout::write_atomic(&bdir.join(f), &bytes, 0o644)?;
                }
            }
        }
    }
    let json = serde_json::to_string_pretty(report).expect("the report serialises");
    layout::write_atomic(&dir.join("report.json"), json.as_bytes(), 0o644)
}
