//! `meshtrust check`: what istiod and the mesh will make of a cacerts bundle,
//! before anything is installed. Every finding has a stable id, a severity, the
//! file, the evidence and the fix.
//!
//! istiod's own rules are [`crate::istio::load::evaluate`], the code the embedded
//! istiod starts with; this module maps its failures to findings and adds the
//! mesh's rules. Built on [`crate::pki`] (reading) and [`crate::x509::path`]
//! (verifying): no second parser, no second verifier, no second copy of istiod's rules.

mod across;
mod finding;
mod istiod;
mod mesh;
mod render;

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

use crate::pki::{Bundle, PkiError};

pub use crate::istio::IstioVersion;
pub use finding::{Finding, PeerRefusal, Report, Severity};
pub use render::render_text;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// istiod's behaviour changed in 1.26 (incomplete bundles are refused).
    pub istio_version: IstioVersion,
    /// The workload certificate TTL the agents ask for (`SECRET_TTL`, 24h by default).
    pub workload_ttl: Duration,
    /// The clock; pinned in tests.
    pub now: OffsetDateTime,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            istio_version: IstioVersion::LATEST,
            workload_ttl: Duration::from_secs(24 * 3600),
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// Checks each bundle, then the bundles against each other.
/// Errors only when a path is not a bundle at all or cannot be read.
pub fn check(dirs: &[PathBuf], opts: &CheckOptions) -> Result<Report, PkiError> {
    // A directory given twice (`certs/cluster1 certs/cluster1/`) is one bundle.
    let mut seen = Vec::new();
    let dirs: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| {
            let key = std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf());
            let new = !seen.contains(&key);
            seen.push(key);
            new
        })
        .collect();
    let bundles = dirs
        .iter()
        .map(|d| Bundle::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = Report::default();
    let mut loading = Vec::new();
    for bundle in &bundles {
        report.bundles.push(bundle.dir.display().to_string());
        let evaluation = crate::istio::load::evaluate(bundle, opts.now, opts.istio_version);
        report
            .findings
            .extend(evaluated_findings(bundle, &evaluation, opts));
        if evaluation.refusal().is_none() && !evaluation.ignored() {
            loading.push((bundle, evaluation));
        }
    }
    // Rules across clusters presuppose that each cluster's istiod runs with its bundle.
    report
        .findings
        .extend(across::across_bundles(&loading, opts));
    Ok(report)
}

/// Every finding for one bundle: istiod's rules in istiod's order, then the mesh's.
pub fn check_bundle(bundle: &Bundle, opts: &CheckOptions) -> Vec<Finding> {
    let evaluation = crate::istio::load::evaluate(bundle, opts.now, opts.istio_version);
    evaluated_findings(bundle, &evaluation, opts)
}

fn evaluated_findings(
    bundle: &Bundle,
    evaluation: &crate::istio::load::Evaluation,
    opts: &CheckOptions,
) -> Vec<Finding> {
    let mut findings = istiod::istiod_findings(bundle, evaluation, opts);
    findings.extend(mesh::mesh_rules(bundle, evaluation, opts));
    findings
}
