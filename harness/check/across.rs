//! Rules across several bundles (one per cluster): one mesh needs one root, and every
//! cluster's peers must accept every other cluster's workloads.

use super::istiod::describe;
use super::{CheckOptions, Finding, Severity};
use crate::istio::load::Evaluation;
use crate::pki::{Bundle, Layout};
use crate::x509::path::{self, Purpose};

/// `loaded`: the bundles istiod loads, each with its evaluation, in the order given.
pub(crate) fn across_bundles(
    loaded: &[(&Bundle, Evaluation)],
    opts: &CheckOptions,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if loaded.len() < 2 {
        return out;
    }
    let bundles: Vec<&Bundle> = loaded.iter().map(|(b, _)| *b).collect();
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
                file: Some(files_of(&[bundles[0], b], root_file)),
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
                peer_refusals: Vec::new(),
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
                    file: Some(files_of(&[a, b], signing_file)),
                    message: format!(
                        "`{}` and `{}` share an intermediate ({}): one cluster's compromise or rotation is the other's, and revocation cannot tell them apart",
                        a.dir.display(),
                        b.dir.display(),
                        if same_key { "the same key" } else { "the same subject and serial" }
                    ),
                    evidence: vec![format!("{}: {}", a.name, describe(da)), format!("{}: {}", b.name, describe(db))],
                    fix: "give each cluster its own intermediate (`meshtrust certs cacerts NAME` per cluster)".into(),
                    istiod_error: None,
                    peer_refusals: Vec::new(),
                });
            }
        }
    }
    out.extend(peers_across(loaded, opts));
    out
}

/// The peer step across clusters: the chain each cluster's workloads present (as istiod
/// serves it), verified as OpenSSL and BoringSSL verify it by the peers of every other
/// cluster, against that cluster's trust bundle, as a server and as a client. A refusal
/// the workloads meet in their own cluster too is reported there (`peers-refuse` on the
/// bundle), not again for every pair.
fn peers_across(loaded: &[(&Bundle, Evaluation)], opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for (a, ea) in loaded {
        let Some(ca) = &ea.ca_cert else { continue };
        let served = crate::istio::served::served_after_leaf(&ea.chain_pem, &ea.root_pem);
        let verify = |roots: &[rustls_pki_types::CertificateDer<'static>], purpose| {
            path::verify(
                ca,
                &served,
                roots,
                &path::PathOptions {
                    at: opts.now,
                    purpose,
                    rules: path::Rules::Peer,
                },
            )
        };
        for (b, eb) in loaded {
            if std::ptr::eq(*a, *b) {
                continue;
            }
            let mut finding = Finding::new("peers-refuse", Severity::Error, a);
            finding.bundle = "*".into();
            for purpose in [Purpose::ServerAuth, Purpose::ClientAuth] {
                if verify(&ea.roots, purpose).is_err() {
                    continue;
                }
                if let Err(e) = verify(&eb.roots, purpose) {
                    finding = finding.refusal(&a.name, &b.name, purpose, &e);
                }
            }
            if finding.peer_refusals.is_empty() {
                continue;
            }
            let trust = root_file(b.layout);
            let purposes: Vec<&str> = finding
                .peer_refusals
                .iter()
                .map(|r| match r.purpose.as_str() {
                    "serverAuth" => "as servers (serverAuth)",
                    _ => "as mTLS clients (clientAuth)",
                })
                .collect();
            let evidence: Vec<String> = finding
                .peer_refusals
                .iter()
                .map(|r| {
                    format!(
                        "{} -> peers of {}, {}: {}",
                        r.workloads, r.peers, r.purpose, r.reason
                    )
                })
                .collect();
            finding = finding
                .file(trust)
                .message(format!(
                    "peers in `{}` refuse the workloads of `{}` {}: `{}`'s {trust} does not lead to the chain `{}` serves, so cross-cluster mTLS fails",
                    b.dir.display(),
                    a.dir.display(),
                    purposes.join(" and "),
                    b.name,
                    a.name
                ))
                .fix(format!(
                    "give both clusters one root (`meshtrust certs cacerts {} {}`), or add `{}`'s root to `{}`'s {trust} as well (peers trust every root in it)",
                    a.name, b.name, a.name, b.name
                ));
            finding.evidence = evidence;
            out.push(finding);
        }
    }
    out
}

/// The file that holds a bundle's roots, in its layout.
fn root_file(layout: Layout) -> &'static str {
    match layout {
        Layout::Istiod => "root-cert.pem",
        Layout::KubernetesTls => "ca.crt",
    }
}

/// The file that holds a bundle's signing certificate, in its layout.
fn signing_file(layout: Layout) -> &'static str {
    match layout {
        Layout::Istiod => "ca-cert.pem",
        Layout::KubernetesTls => "tls.crt",
    }
}

/// `file(layout)` of each bundle, once each: `root-cert.pem`, or `root-cert.pem, ca.crt`
/// across layouts.
fn files_of(bundles: &[&Bundle], file: fn(Layout) -> &'static str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for b in bundles {
        let name = file(b.layout);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}
