use std::path::Path;

use super::RunReport;
use crate::pki::{PkiError, layout};

/// `<dir>/<scenario>/<label>.pem` for every captured chain,
/// `<dir>/<scenario>/cacerts/<bundle label>/` with each bundle's public files,
/// `<dir>/<scenario>.dot` with the scenario's trust graph (Graphviz), and
/// `<dir>/report.json`.
pub fn write_artifacts(report: &RunReport, dir: &Path) -> Result<(), PkiError> {
    for s in &report.scenarios {
        let dot = super::TrustGraph::of_scenario(s).to_dot();
        layout::write_atomic(&dir.join(format!("{}.dot", s.name)), dot.as_bytes(), 0o644)?;
        let sdir = dir.join(&s.name);
        std::fs::create_dir_all(&sdir).map_err(PkiError::io("create directory", &sdir))?;
        for chain in &s.chains {
            let file = sdir.join(format!("{}.pem", chain.label.replace('/', "_")));
            layout::write_atomic(&file, chain.pem.as_bytes(), 0o644)?;
        }
        for bundle in &s.bundles {
            let bdir = sdir.join("cacerts").join(&bundle.label);
            std::fs::create_dir_all(&bdir).map_err(PkiError::io("create directory", &bdir))?;
            for crate::report::BundleFileArtifact { name: file, pem } in &bundle.files {
                layout::write_atomic(&bdir.join(file), pem.as_bytes(), 0o644)?;
            }
        }
    }
    let json = report.to_json();
    layout::write_atomic(&dir.join("report.json"), json.as_bytes(), 0o644)
}
