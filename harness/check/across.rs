//! Rules across several bundles (one per cluster): one mesh needs one root, and every
//! cluster's peers must accept every other cluster's workloads.

use super::istiod::describe;
use super::{CheckOptions, Finding, PeerRefusal, Severity};
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
    // The roots istiod took from each bundle (Go's reading of root-cert.pem / ca.crt): never
    // empty for a bundle istiod loads.
    let roots: Vec<&[rustls_pki_types::CertificateDer<'static>]> =
        loaded.iter().map(|(_, e)| e.roots.as_slice()).collect();
    // The peer step first: which (workloads, peers, purpose) fail, per ordered pair.
    let mut refusals = peer_refusals(loaded, opts);
    // Two bundles that share no root: one cause, reported once, with every refusal it
    // causes in either direction. Multi-root meshes trust the union, so one shared root
    // is enough.
    let mut rest = bundles.iter().zip(&roots).enumerate();
    while let Some((i, (&a, &ra))) = rest.next() {
        for (j, (&b, &rb)) in rest.clone() {
            if rb.iter().any(|c| ra.contains(c)) {
                continue;
            }
            let mut caused = refusals.remove(&(i, j)).unwrap_or_default();
            caused.extend(refusals.remove(&(j, i)).unwrap_or_default());
            out.push(Finding {
                id: "different-roots",
                severity: Severity::Error,
                bundle: "*".into(),
                file: Some(files_of(&[a, b], root_file)),
                message: format!(
                    "`{}` and `{}` have different roots: cross-cluster mTLS fails (CERTIFICATE_VERIFY_FAILED) unless both roots are distributed to every cluster",
                    a.dir.display(),
                    b.dir.display()
                ),
                evidence: [(a, ra), (b, rb)]
                    .iter()
                    .filter_map(|(x, r)| Some(format!("{}: {}", x.dir.display(), describe(r.first()?))))
                .chain(caused.iter().map(refusal_line))
                .collect(),
                fix: one_root_fix(a, b),
                istiod_error: None,
                peer_refusals: caused,
            });
        }
    }
    // Refusals no root mismatch explains (a root trusted one way only, ...).
    let mut pairs: Vec<_> = refusals.into_iter().collect();
    pairs.sort_by_key(|(pair, _)| *pair);
    for ((i, j), caused) in pairs {
        out.push(peers_refuse_across(bundles[i], bundles[j], caused));
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
    out
}

/// The peer step across clusters: the chain each cluster's workloads present (as istiod
/// serves it), verified as OpenSSL and BoringSSL verify it by the peers of every other
/// cluster, against that cluster's trust bundle, as a server and as a client. A refusal
/// the workloads meet in their own cluster too is reported there (`peers-refuse` on the
/// bundle), not again for every pair. Keyed by (presenting, verifying) index into `loaded`.
fn peer_refusals(
    loaded: &[(&Bundle, Evaluation)],
    opts: &CheckOptions,
) -> std::collections::BTreeMap<(usize, usize), Vec<PeerRefusal>> {
    let mut out = std::collections::BTreeMap::new();
    for (i, (a, ea)) in loaded.iter().enumerate() {
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
        for (j, (b, eb)) in loaded.iter().enumerate() {
            if i == j {
                continue;
            }
            let mut refused = Vec::new();
            for purpose in [Purpose::ServerAuth, Purpose::ClientAuth] {
                if verify(&ea.roots, purpose).is_err() {
                    continue;
                }
                if let Err(e) = verify(&eb.roots, purpose) {
                    let reason = match (&e, served.last()) {
                        // Roots often share a name (the Makefile calls each `O=Istio, CN=Root
                        // CA`): say which root, by fingerprint.
                        (path::PathError::NoIssuer { subject, issuer }, Some(root))
                            if subject == issuer =>
                        {
                            format!(
                                "the chain ends in the root {}, which `{}`'s {} does not hold (OpenSSL: self-signed certificate in certificate chain)",
                                describe(root),
                                b.dir.display(),
                                root_file(b.layout)
                            )
                        }
                        _ => e.to_string(),
                    };
                    refused.push(PeerRefusal {
                        workloads: a.dir.display().to_string(),
                        peers: b.dir.display().to_string(),
                        purpose: purpose.to_string(),
                        reason,
                    });
                }
            }
            if !refused.is_empty() {
                out.insert((i, j), refused);
            }
        }
    }
    out
}

fn refusal_line(r: &PeerRefusal) -> String {
    format!(
        "{} -> peers of {}, {}: {}",
        r.workloads, r.peers, r.purpose, r.reason
    )
}

/// How to give two bundles one root: regenerate both under one root, by their cluster
/// names where those differ.
fn one_root_fix(a: &Bundle, b: &Bundle) -> String {
    let names = if a.name != b.name {
        format!("{} {}", a.name, b.name)
    } else {
        "CLUSTER1 CLUSTER2".to_owned()
    };
    format!(
        "generate every cluster's intermediate from one root (`meshtrust certs cacerts {names}`), or put both roots in every cluster's {} (peers trust every root in it)",
        files_of(&[a, b], root_file)
    )
}

/// Peers of `b` refuse the workloads of `a`, though the two share a root.
fn peers_refuse_across(a: &Bundle, b: &Bundle, refused: Vec<PeerRefusal>) -> Finding {
    let trust = root_file(b.layout);
    let purposes: Vec<&str> = refused
        .iter()
        .map(|r| match r.purpose.as_str() {
            "serverAuth" => "as servers (serverAuth)",
            _ => "as mTLS clients (clientAuth)",
        })
        .collect();
    let mut finding = Finding::new("peers-refuse", Severity::Error, a)
        .file(trust)
        .message(format!(
            "peers in `{}` refuse the workloads of `{}` {}: `{}`'s {trust} does not lead to the chain `{}` serves, so cross-cluster mTLS fails",
            b.dir.display(),
            a.dir.display(),
            purposes.join(" and "),
            b.dir.display(),
            a.dir.display()
        ))
        .fix(format!(
            "add the root of `{}` to `{}`'s {trust} as well (peers trust every root in it), or {}",
            a.dir.display(),
            b.dir.display(),
            one_root_fix(a, b)
                .split_once(" (`")
                .map_or_else(String::new, |(head, _)| head.to_owned())
        ));
    finding.bundle = "*".into();
    finding.evidence = refused.iter().map(refusal_line).collect();
    finding.peer_refusals = refused;
    finding
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
