//! Rules beyond istiod's own: bundles istiod loads but that break workloads,
//! peers or the next rotation, plus warnings and notes.

use rustls_pki_types::CertificateDer;
use time::Duration;
use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;

use super::istiod::describe;
use super::{CheckOptions, Finding, Severity};
use crate::istio::load::Evaluation;
use crate::pki::{Bundle, Layout};
use crate::x509::path::{self, Step};

const EXPIRY_WARNING: Duration = Duration::days(30);
/// How long a CA may outlive its issuer before `outlives-issuer` warns.
const OUTLIVES_GRACE: Duration = Duration::days(1);

pub(crate) fn mesh_rules(bundle: &Bundle, eval: &Evaluation, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let cert_file = bundle.ca_cert.as_ref().map_or("ca-cert.pem", |f| f.name);
    let Some(ca_cert) = &eval.ca_cert else {
        return out;
    };
    // Rules about what the mesh does with a bundle presuppose that istiod loaded it:
    // after a refusal they would contradict it (a non-CA ca-cert.pem "breaks workloads"
    // only if istiod ran), so only the file-level warnings remain.
    let loads = eval.refusal().is_none() && !eval.ignored();
    let (chain_file, root_file) = match bundle.layout {
        Layout::Istiod => ("cert-chain.pem", "root-cert.pem"),
        Layout::KubernetesTls => ("tls.crt", "ca.crt"),
    };
    let mut roots = eval.roots.clone();
    if bundle.layout == Layout::KubernetesTls {
        // cert-manager's ca.crt may carry more than the root; istiod trusts all of it.
        roots.dedup();
    }

    // The path istiod accepts (Go's rules). Workload chains extend it by one leaf.
    let verified = eval.path.as_ref();
    let path_certs: Vec<&CertificateDer<'static>> = match verified {
        Some(p) => p
            .steps
            .iter()
            .map(|s| match s {
                Step::Target => ca_cert,
                Step::Untrusted(i) => &eval.cert_chain[*i],
                Step::Root(i) => &eval.roots[*i],
            })
            .collect(),
        None => vec![ca_cert],
    };
    let parsed_path: Vec<X509Certificate<'_>> = path_certs
        .iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
        .collect();

    if loads && verified.is_some() {
        // A workload leaf sits below ca-cert.pem: the CA at position i of the path
        // then has i CA certificates below it (ca-cert.pem included).
        for (i, cert) in parsed_path.iter().enumerate().skip(1) {
            if let Some(pathlen) = path::basic_constraints(cert).and_then(|b| b.path_len_constraint)
                && (pathlen as usize) < i
            {
                out.push(
                        Finding::new("pathlen-breaks-workloads", Severity::Error, bundle)
                            .file(cert_file)
                            .message(format!(
                                "`{}` has pathlen:{pathlen} but {i} CA certificate(s) sit between it and every workload leaf; istiod loads the bundle, but every peer rejects every workload chain (OpenSSL error 25)",
                                path::subject(cert)
                            ))
                            .evidence(format!("path: {}", parsed_path.iter().map(path::subject).collect::<Vec<_>>().join(" -> ")))
                            .fix(format!("reissue `{}` with pathlen:{i} or more (or none)", path::subject(cert))),
                    );
            }
        }
    }
    for cert in parsed_path.iter().filter(|_| loads) {
        if let Some(ku) = path::key_usage(cert)
            && !ku.key_cert_sign()
        {
            out.push(
                    Finding::new("no-key-cert-sign", Severity::Error, bundle)
                        .file(cert_file)
                        .message(format!(
                            "`{}` signs certificates but its keyUsage lacks keyCertSign; istiod does not check it, but Envoy and OpenSSL reject the chains it signs",
                            path::subject(cert)
                        ))
                        .evidence(format!("keyUsage: {ku}"))
                        .fix("reissue the CA with keyUsage keyCertSign (and cRLSign)"),
                );
        }
    }
    if loads && bundle.layout == Layout::KubernetesTls {
        for root in &roots {
            let Ok((_, r)) = x509_parser::parse_x509_certificate(root) else {
                continue;
            };
            let self_signed = r.subject().as_raw() == r.issuer().as_raw()
                && crate::x509::signature::signed_by(&r, &r);
            if !self_signed {
                out.push(
                    Finding::new("tls-ca-not-root", Severity::Error, bundle)
                        .file("ca.crt")
                        .message("`ca.crt` holds a certificate that is not a self-signed root; istiod distributes it as the mesh's root, so peers that trust only the real root reject workloads")
                        .evidence(format!("ca.crt: {} issued by `{}`", describe(root), r.issuer()))
                        .fix("put the self-signed root in ca.crt (cert-manager: set the issuer's CA to the root, or use trust-manager)"),
                );
            }
        }
    }

    // The peers' side: what a workload serves (a leaf issued by the signing certificate,
    // then istiod's chain), verified as Envoy (BoringSSL) and OpenSSL verify it, against
    // the trust bundle every peer of this cluster holds, as a server and as a client
    // (mTLS: every workload certificate is both). Causes other findings name already
    // (keyCertSign, a `ca.crt` that is no root) are not repeated.
    if loads {
        let shown = bundle.dir.display().to_string();
        let served = crate::istio::served::served_after_leaf(&eval.chain_pem, &eval.root_pem);
        // A peer builds from the leaf: the signing certificate must be among what istiod
        // serves after it (or be a root the peer trusts), or no path starts at all.
        if !served.contains(ca_cert) && !eval.roots.contains(ca_cert) {
            out.push(
                Finding::new("peers-refuse", Severity::Error, bundle)
                    .file(chain_file)
                    .message(format!(
                        "istiod loads the bundle, but what it serves after each leaf ({}) does not contain `{cert_file}`, the leaves' issuer: TLS peers cannot build any path and refuse every workload (OpenSSL: unable to get local issuer certificate)",
                        if served.is_empty() {
                            "nothing".to_owned()
                        } else {
                            served.iter().map(|c| describe(c)).collect::<Vec<_>>().join(", ")
                        }
                    ))
                    .refusal(&shown, &shown, path::Purpose::ServerAuth, "unable to get local issuer certificate")
                    .refusal(&shown, &shown, path::Purpose::ClientAuth, "unable to get local issuer certificate")
                    .fix(match bundle.layout {
                        Layout::Istiod => "put the signing certificate first in cert-chain.pem, then each issuer up to the root: `cat ca-cert.pem root-cert.pem > cert-chain.pem`".to_owned(),
                        Layout::KubernetesTls => "put the signing certificate first in tls.crt".to_owned(),
                    }),
            );
        }
        for (purpose, role) in [
            (path::Purpose::ServerAuth, "server"),
            (path::Purpose::ClientAuth, "client"),
        ] {
            let peer = path::PathOptions {
                at: opts.now,
                purpose,
                rules: path::Rules::Peer,
            };
            let Err(e) = path::verify(ca_cert, &served, &eval.roots, &peer) else {
                continue;
            };
            let fix = match &e {
                path::PathError::NoKeyCertSign { .. } => continue,
                path::PathError::AnchorNotSelfSigned { .. }
                    if bundle.layout == Layout::KubernetesTls =>
                {
                    continue;
                }
                path::PathError::AnchorNotSelfSigned { .. } => format!(
                    "put the self-signed root in {root_file} (and every CA between it and the signing certificate in {chain_file})"
                ),
                path::PathError::Eku { subject, .. } => format!(
                    "reissue `{subject}` without an extendedKeyUsage, or with both serverAuth and clientAuth"
                ),
                _ => "reissue the CAs so that the whole path is valid for TLS servers and clients"
                    .to_owned(),
            };
            out.push(
                Finding::new("peers-refuse", Severity::Error, bundle)
                    .file(cert_file)
                    .message(format!(
                        "istiod loads the bundle, but TLS peers will refuse every workload certificate as a {role} certificate ({purpose}): {e}"
                    ))
                    .evidence(format!(
                        "verified as a peer does (OpenSSL `verify -purpose ssl{role}`, Envoy's BoringSSL): trust = {root_file}, untrusted = the chain istiod serves"
                    ))
                    .refusal(&shown, &shown, purpose, &e)
                    .fix(fix),
            );
        }
    }

    // Warnings.
    for (cert, der) in parsed_path.iter().zip(&path_certs).filter(|_| loads) {
        let remaining = cert.validity().not_after.to_datetime() - opts.now;
        let ttl = Duration::try_from(opts.workload_ttl).unwrap_or(Duration::MAX);
        let role = if **der == *ca_cert {
            cert_file
        } else if roots.contains(der) {
            root_file
        } else {
            chain_file
        };
        let version = opts.istio_version;
        let consequence = if version.clamps_leaf_to_signer() {
            format!(
                "istiod {version} clamps leaf certificates to it, so workloads get shorter certificates and rotate more often"
            )
        } else {
            format!(
                "istiod {version} does not clamp leaf certificates to it: workload certificates outlive it and fail verification once it expires (the clamp is in 1.28.7, 1.29.3 and 1.30.0+)"
            )
        };
        if remaining.is_negative() {
            continue; // istiod's rules already report it expired
        }
        if remaining < ttl {
            out.push(
                Finding::new("expires-before-workload-ttl", Severity::Warning, bundle)
                    .file(role)
                    .message(format!(
                        "`{}` expires in {} (at {}), sooner than the {} workload TTL: {consequence}",
                        path::subject(cert),
                        crate::chain::duration::format(remaining),
                        cert.validity().not_after,
                        crate::chain::duration::format(ttl)
                    ))
                    .fix("rotate to a new intermediate now"),
            );
        } else if remaining < EXPIRY_WARNING {
            out.push(
                Finding::new("expires-soon", Severity::Warning, bundle)
                    .file(role)
                    .message(format!(
                        "`{}` expires in {} (at {})",
                        path::subject(cert),
                        crate::chain::duration::format(remaining),
                        cert.validity().not_after
                    ))
                    .fix("rotate before it expires: a new intermediate under the same root is hot-loaded"),
            );
        }
    }
    // A CA that outlives its issuer: from the issuer's expiry on, nothing below verifies.
    // The Makefile makes both for 3650 days a few seconds apart, so its intermediates
    // outlive their root by those seconds: a day's grace keeps that quiet.
    for pair in parsed_path.windows(2).filter(|_| loads) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        let (ends, issuer_ends) = (
            cert.validity().not_after.to_datetime(),
            issuer.validity().not_after.to_datetime(),
        );
        if ends - issuer_ends > OUTLIVES_GRACE {
            out.push(
                Finding::new("outlives-issuer", Severity::Warning, bundle)
                    .file(cert_file)
                    .message(format!(
                        "`{}` is valid until {}, {} after its issuer `{}` expires ({}): from then on no chain through it verifies",
                        path::subject(cert),
                        cert.validity().not_after,
                        crate::chain::duration::format(ends - issuer_ends),
                        path::subject(issuer),
                        issuer.validity().not_after
                    ))
                    .fix("reissue it to end no later than its issuer (`meshtrust certs cacerts NAME --force` does), and plan the root's rotation before then"),
            );
        }
    }
    if loads && bundle.layout == Layout::Istiod && !eval.cert_chain.is_empty() {
        let first_is_ca_cert = eval.cert_chain.first() == Some(ca_cert);
        let in_order = eval.cert_chain.windows(2).all(|w| issued_by(&w[0], &w[1]));
        if !first_is_ca_cert || !in_order {
            out.push(
                Finding::new("chain-order", Severity::Warning, bundle)
                    .file("cert-chain.pem")
                    .message("`cert-chain.pem` is not in leaf-to-root order starting with ca-cert.pem; istiod serves it as is, and strict peers may fail to build the path")
                    .evidence(format!(
                        "order: {}",
                        eval.cert_chain.iter().map(|c| describe(c)).collect::<Vec<_>>().join(", ")
                    ))
                    .fix("write ca-cert.pem first, then each issuer up to the root (`cat ca-cert.pem root-cert.pem > cert-chain.pem`)"),
            );
        }
    }
    let all: Vec<&CertificateDer<'static>> = std::iter::once(ca_cert)
        .chain(&eval.cert_chain)
        .chain(&roots)
        .collect();
    let mut seen = Vec::new();
    for der in all {
        if seen.contains(&der) {
            continue;
        }
        seen.push(der);
        let Ok((_, c)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        if let Ok(PublicKey::RSA(rsa)) = c.public_key().parsed()
            && rsa.key_size() < 2048
        {
            out.push(
                    Finding::new("weak-rsa", Severity::Warning, bundle)
                        .message(format!("`{}` has an RSA {}-bit key; below 2048 bits is refused by current TLS stacks", path::subject(&c), rsa.key_size()))
                        .fix("reissue with RSA 2048 or more (Istio's Makefile uses 4096), or ECDSA P-256"),
                );
        }
    }
    if let Some(key) = &bundle.ca_key
        && key.mode & 0o077 != 0
    {
        out.push(
            Finding::new("key-file-permissions", Severity::Warning, bundle)
                .file(key.name)
                .message(format!(
                    "`{}` is readable by group or others (mode {:o})",
                    key.name, key.mode
                ))
                .fix(format!("chmod 600 {}", key.path.display())),
        );
    }

    // Notes: what istiod will serve, once it has loaded the bundle.
    if loads {
        let chain_file = match bundle.layout {
            Layout::Istiod => chain_file,
            Layout::KubernetesTls => "tls.crt + ca.crt",
        };
        let after_leaf = crate::istio::served::served_after_leaf(&eval.chain_pem, &eval.root_pem);
        let served = 1 + after_leaf.len();
        let dup = after_leaf
            .iter()
            .enumerate()
            .any(|(i, c)| after_leaf[..i].contains(c));
        let mut note = Finding::new("served-chain", Severity::Note, bundle).message(format!(
            "istiod serves the leaf, the {} of {chain_file}, then {root_file} as is ({}): peers see {served} certificates",
            plural(eval.cert_chain.len(), "certificate"),
            plural(eval.roots.len(), "root"),
        ));
        if dup {
            note = note.evidence(format!(
                "a certificate is in both {chain_file} and {root_file}, so it is served twice (istio/istio#39001); harmless"
            ));
        }
        out.push(note.fix("nothing to fix"));
    }
    out
}

/// `1 certificate`, `2 certificates`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn issued_by(child: &[u8], issuer: &[u8]) -> bool {
    match (
        x509_parser::parse_x509_certificate(child),
        x509_parser::parse_x509_certificate(issuer),
    ) {
        (Ok((_, c)), Ok((_, i))) => {
            c.issuer().as_raw() == i.subject().as_raw() && crate::x509::signature::signed_by(&c, &i)
        }
        _ => false,
    }
}
