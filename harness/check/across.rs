//! Rules across several bundles (one per cluster): one mesh needs one root.

use super::istiod::describe;
use super::{Finding, Severity};
use crate::pki::Bundle;

pub(crate) fn across_bundles(bundles: &[Bundle]) -> Vec<Finding> {
    let mut out = Vec::new();
    if bundles.len() < 2 {
        return out;
    }
    let roots: Vec<_> = bundles
        .iter()
        .map(|b| {
            b.root_cert
                .as_ref()
                .and_then(|f| f.certs().ok())
                .unwrap_or_default()
        })
        .collect();
    let first = &roots[0];
    for (b, r) in bundles.iter().zip(&roots).skip(1) {
        // Multi-root meshes trust the union; a bundle sharing no root with the first cannot talk to it.
        if !r.is_empty() && !first.is_empty() && !r.iter().any(|c| first.contains(c)) {
            out.push(Finding {
                id: "different-roots",
                severity: Severity::Error,
                bundle: "*".into(),
                file: Some("root-cert.pem".into()),
                message: format!(
                    "`{}` and `{}` have different roots: cross-cluster mTLS fails (CERTIFICATE_VERIFY_FAILED) unless both roots are distributed to every cluster",
                    bundles[0].dir.display(),
                    b.dir.display()
                ),
                evidence: vec![
                    format!("{}: {}", bundles[0].name, describe(&first[0])),
                    format!("{}: {}", b.name, describe(&r[0])),
                ],
                fix: "generate every cluster's intermediate from one root (`meshtrust certs cacerts cluster1 cluster2`)".into(),
                istiod_error: None,
            });
        }
    }
    let cas: Vec<_> = bundles
        .iter()
        .filter_map(|b| {
            let der = b.ca_cert.as_ref()?.certs().ok()?.into_iter().next()?;
            Some((b, der))
        })
        .collect();
    for (i, (a, da)) in cas.iter().enumerate() {
        for (b, db) in &cas[i + 1..] {
            let (Ok((_, ca)), Ok((_, cb))) = (
                x509_parser::parse_x509_certificate(da),
                x509_parser::parse_x509_certificate(db),
            ) else {
                continue;
            };
            let same_key = ca.public_key().raw == cb.public_key().raw;
            let same_id = ca.subject().as_raw() == cb.subject().as_raw()
                && ca.raw_serial() == cb.raw_serial();
            if same_key || same_id {
                out.push(Finding {
                    id: "overlapping-intermediates",
                    severity: Severity::Error,
                    bundle: "*".into(),
                    file: Some("ca-cert.pem".into()),
                    message: format!(
                        "`{}` and `{}` share an intermediate ({}): one cluster's compromise or rotation is the other's, and revocation cannot tell them apart",
                        a.dir.display(),
                        b.dir.display(),
                        if same_key { "the same key" } else { "the same subject and serial" }
                    ),
                    evidence: vec![format!("{}: {}", a.name, describe(da)), format!("{}: {}", b.name, describe(db))],
                    fix: "give each cluster its own intermediate (`meshtrust certs cacerts NAME` per cluster)".into(),
                    istiod_error: None,
                });
            }
        }
    }
    out
}
