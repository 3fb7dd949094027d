use std::fmt::Write as _;

use super::{Report, Severity};

/// The text report: findings grouped by bundle, errors first, then a summary line.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let mut bundles: Vec<&str> = report.bundles.iter().map(String::as_str).collect();
    if report.findings.iter().any(|f| f.bundle == "*") {
        bundles.push("*");
    }
    for bundle in bundles {
        let mut findings: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.bundle == bundle)
            .collect();
        findings.sort_by_key(|f| f.severity);
        let title = if bundle == "*" {
            "across bundles".to_string()
        } else {
            bundle.to_string()
        };
        let _ = writeln!(out, "{title}");
        if findings.iter().all(|f| f.severity == Severity::Note) {
            let _ = writeln!(out, "  ok: istiod loads it and the mesh can use it");
        }
        for f in findings {
            let tag = f.severity.name();
            let file = f
                .file
                .as_deref()
                .map(|f| format!(" [{f}]"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {tag}[{}]{file}: {}", f.id, f.message);
            if let Some(e) = &f.istiod_error {
                let _ = writeln!(out, "      istiod: {e}");
            }
            for e in &f.evidence {
                let _ = writeln!(out, "      {e}");
            }
            if f.severity != Severity::Note {
                let _ = writeln!(out, "      fix: {}", f.fix);
            }
        }
    }
    let n = super::mesh::plural;
    let _ = writeln!(
        out,
        "{}, {}, {}",
        n(report.count(Severity::Error), "error"),
        n(report.count(Severity::Warning), "warning"),
        n(report.count(Severity::Note), "note")
    );
    out
}
