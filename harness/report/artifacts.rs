use std::path::Path;

use super::RunReport;
use crate::pki::{PkiError, layout};

/// `<dir>/<scenario>/<label>.pem` for every captured chain,
/// `<dir>/<scenario>/cacerts/<bundle label>/` with each bundle's public files,
/// `<dir>/<scenario>.dot` with the scenario's trust graph (Graphviz), and
/// `<dir>/report.json`.
///
/// A directory used before keeps nothing of an earlier run of the same scenario that this one
/// did not write again: its chains (`*.pem` in the scenario's directory) and its bundles
/// (`cacerts/`) are removed first, so every file there is this run's. Other files are left.
pub fn write_artifacts(report: &RunReport, dir: &Path) -> Result<(), PkiError> {
    for s in &report.scenarios {
        let dot = super::TrustGraph::of_scenario(s).to_dot();
        layout::write_atomic(&dir.join(format!("{}.dot", s.name)), dot.as_bytes(), 0o644)?;
        let sdir = dir.join(&s.name);
        std::fs::create_dir_all(&sdir).map_err(PkiError::io("create directory", &sdir))?;
        clear_earlier_run(&sdir)?;
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

/// Removes what an earlier run wrote into a scenario's directory: its chains and bundles.
fn clear_earlier_run(sdir: &Path) -> Result<(), PkiError> {
    let entries = std::fs::read_dir(sdir).map_err(PkiError::io("read directory", sdir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_chain = path.extension().is_some_and(|e| e == "pem") && path.is_file();
        if is_chain {
            std::fs::remove_file(&path).map_err(PkiError::io("remove", &path))?;
        }
    }
    let bundles = sdir.join("cacerts");
    if bundles.is_dir() {
        std::fs::remove_dir_all(&bundles).map_err(PkiError::io("remove", &bundles))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ChainArtifact, ScenarioReport};
    use std::time::Duration;

    fn report(labels: &[&str]) -> RunReport {
        RunReport {
            target: "local".into(),
            started: "2026-12-01T05:00:00Z".into(),
            duration: Duration::ZERO,
            scenarios: vec![ScenarioReport {
                name: "plugin-ca".into(),
                description: String::new(),
                expectation: "conformant".into(),
                passed: true,
                reasons: Vec::new(),
                observations: Vec::new(),
                phases: Vec::new(),
                milestones: Vec::new(),
                chains: labels
                    .iter()
                    .map(|l| ChainArtifact {
                        label: (*l).into(),
                        pem: format!("{l}\n"),
                    })
                    .collect(),
                bundles: Vec::new(),
                trust_bundles: Vec::new(),
                duration: Duration::ZERO,
            }],
        }
    }

    #[test]
    fn a_reused_directory_holds_this_runs_chains_only_and_keeps_other_files() {
        let dir = tempfile::tempdir().unwrap();
        write_artifacts(&report(&["cluster1/foo/httpbin", "old/label"]), dir.path()).unwrap();
        let sdir = dir.path().join("plugin-ca");
        std::fs::write(sdir.join("notes.txt"), "mine").unwrap();
        std::fs::create_dir_all(sdir.join("cacerts/stale")).unwrap();
        write_artifacts(&report(&["cluster1/foo/httpbin"]), dir.path()).unwrap();
        assert!(sdir.join("cluster1_foo_httpbin.pem").exists());
        // The earlier run's chain and bundle are gone ...
        assert!(!sdir.join("old_label.pem").exists());
        assert!(!sdir.join("cacerts").exists());
        // ... and a file meshtrust does not write stays.
        assert_eq!(
            std::fs::read_to_string(sdir.join("notes.txt")).unwrap(),
            "mine"
        );
    }
}
