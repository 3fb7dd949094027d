//! Certification path validation: from a target certificate, through an
//! unordered pool of *untrusted* certificates, to one of the trusted roots.
//!
//! Written here rather than taken from rustls-webpki because meshtrust needs
//! two things webpki does not do: validate a CA certificate as the target
//! (istiod checks `ca-cert.pem` that way), and apply the constraints of the
//! trust anchor itself (webpki ignores a root's pathlen; OpenSSL and Go do not).

use std::fmt;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{BasicConstraints, ExtendedKeyUsage, KeyUsage, ParsedExtension};

use super::signature::{self, SignatureStrength};

/// The extended key usage the path must allow (RFC 5280 §4.2.1.12, with Go's
/// and OpenSSL's nesting rule: every certificate that has an EKU must allow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ServerAuth,
    ClientAuth,
    Any,
}

/// Which verifier's rules to follow where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Go's `x509.Verify` as istiod calls it: a CA's keyUsage is not checked.
    Go,
    /// TLS peers (Envoy's BoringSSL, OpenSSL): a CA with a keyUsage must have keyCertSign.
    Peer,
}

#[derive(Debug, Clone)]
pub struct PathOptions {
    pub at: OffsetDateTime,
    pub purpose: Purpose,
    pub rules: Rules,
}

/// A verified path: indices into the inputs, target first, trust anchor last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPath {
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Target,
    Untrusted(usize),
    Root(usize),
}

/// Why no path was found. The variant names the certificate by its subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("certificate {index} does not parse as X.509")]
    Unparseable { index: usize },
    #[error("no issuer of `{subject}` (issued by `{issuer}`) among the given certificates")]
    NoIssuer { subject: String, issuer: String },
    #[error("`{subject}` has a {alg} signature, which Go and current TLS stacks reject")]
    WeakSignature { subject: String, alg: String },
    #[error("`{subject}` expired at {not_after}")]
    Expired { subject: String, not_after: String },
    #[error("`{subject}` is not valid before {not_before}")]
    NotYetValid { subject: String, not_before: String },
    #[error(
        "`{subject}` issues certificates but is not a CA (basicConstraints CA:TRUE is missing)"
    )]
    NotCa { subject: String },
    #[error(
        "`{subject}` has pathlen:{pathlen} but {below} CA certificate(s) sit below it on this path"
    )]
    PathLen {
        subject: String,
        pathlen: u32,
        below: usize,
    },
    #[error("`{subject}` issues certificates but its keyUsage lacks keyCertSign")]
    NoKeyCertSign { subject: String },
    #[error(
        "the trusted `{subject}` is not a self-signed root (issued by `{issuer}`): TLS peers cannot complete the path (OpenSSL: unable to get issuer certificate)"
    )]
    AnchorNotSelfSigned { subject: String, issuer: String },
    #[error("`{subject}` has an extended key usage without {purpose}")]
    Eku {
        subject: String,
        purpose: &'static str,
    },
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::ServerAuth => "serverAuth",
            Purpose::ClientAuth => "clientAuth",
            Purpose::Any => "any purpose",
        })
    }
}

const MAX_DEPTH: usize = 8;

/// Finds and validates a path from `target` to one of `roots`, using `untrusted`
/// as an unordered pool. A target that is itself one of the roots is a path of one.
pub fn verify(
    target: &[u8],
    untrusted: &[impl AsRef<[u8]>],
    roots: &[impl AsRef<[u8]>],
    opts: &PathOptions,
) -> Result<VerifiedPath, PathError> {
    fn parse(der: &[u8], index: usize) -> Result<X509Certificate<'_>, PathError> {
        x509_parser::parse_x509_certificate(der)
            .map(|(_, c)| c)
            .map_err(|_| PathError::Unparseable { index })
    }
    let target_cert = parse(target, 0)?;
    let pool: Vec<_> = untrusted
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            parse(d.as_ref(), i + 1)
                .ok()
                .map(|c| (Step::Untrusted(i), d.as_ref(), c))
        })
        .collect();
    let anchors: Vec<_> = roots
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            parse(d.as_ref(), i + 1)
                .ok()
                .map(|c| (Step::Root(i), d.as_ref(), c))
        })
        .collect();

    let mut path = vec![(Step::Target, target, &target_cert)];
    let mut best: Option<PathError> = None;
    if search(&mut path, &pool, &anchors, opts, &mut best) {
        return Ok(VerifiedPath {
            steps: path.iter().map(|(s, _, _)| *s).collect(),
        });
    }
    Err(best.unwrap_or_else(|| PathError::NoIssuer {
        subject: subject(&target_cert),
        issuer: target_cert.issuer().to_string(),
    }))
}

type Node<'a, 'c> = (Step, &'a [u8], &'c X509Certificate<'a>);

fn search<'a, 'c>(
    path: &mut Vec<Node<'a, 'c>>,
    pool: &'c [(Step, &'a [u8], X509Certificate<'a>)],
    anchors: &'c [(Step, &'a [u8], X509Certificate<'a>)],
    opts: &PathOptions,
    best: &mut Option<PathError>,
) -> bool {
    let (_, der, cert) = *path.last().expect("the path starts with the target");
    // The target may itself be a trust anchor (a root verifying to itself).
    if path.len() == 1
        && let Some((_, d, a)) = anchors.iter().find(|(_, d, _)| *d == der)
    {
        path[0] = (Step::Target, *d, a);
        return finish(path, opts, best);
    }
    if path.len() > MAX_DEPTH {
        return false;
    }
    for (step, d, candidate) in anchors.iter() {
        if issues_under(opts.rules, candidate, cert) {
            path.push((*step, *d, candidate));
            if finish(path, opts, best) {
                return true;
            }
            path.pop();
        }
    }
    for (step, d, candidate) in pool.iter() {
        // A served copy of a trusted root is the anchor itself, never a step past it
        // (servers send the root, Istio even twice: istio/istio#39001).
        let trusted = anchors.iter().any(|(_, a, _)| a == d);
        if trusted
            || path.iter().any(|(_, seen, _)| *seen == *d)
            || !issues_under(opts.rules, candidate, cert)
        {
            continue;
        }
        path.push((*step, *d, candidate));
        if search(path, pool, anchors, opts, best) {
            return true;
        }
        path.pop();
    }
    // An issuer by name whose signature we refuse to check is a weak signature, not a missing issuer.
    let weak = signature::strength(&cert.signature_algorithm.algorithm) == SignatureStrength::Weak;
    if weak
        && anchors
            .iter()
            .chain(pool.iter())
            .any(|(_, _, c)| c.subject().as_raw() == cert.issuer().as_raw())
    {
        if matches!(best, None | Some(PathError::NoIssuer { .. })) {
            *best = Some(PathError::WeakSignature {
                subject: subject(cert),
                alg: algorithm_name(&cert.signature_algorithm.algorithm),
            });
        }
        return false;
    }
    if best.is_none() {
        *best = Some(PathError::NoIssuer {
            subject: subject(cert),
            issuer: cert.issuer().to_string(),
        });
    }
    false
}

/// Whether `issuer` issued `child`: name chaining, key identifiers when both
/// are present, and the signature itself.
pub fn issues(issuer: &X509Certificate<'_>, child: &X509Certificate<'_>) -> bool {
    issues_under(Rules::Peer, issuer, child)
}

/// [`issues`] as a verifier decides it: OpenSSL and BoringSSL pass over a candidate
/// whose subjectKeyIdentifier differs from the child's authorityKeyIdentifier; Go only
/// tries such a candidate last (crypto/x509 cert_pool.go findPotentialParents), so a
/// good signature still makes it the issuer.
pub fn issues_under(
    rules: Rules,
    issuer: &X509Certificate<'_>,
    child: &X509Certificate<'_>,
) -> bool {
    if issuer.subject().as_raw() != child.issuer().as_raw() {
        return false;
    }
    if rules == Rules::Peer
        && let (Some(aki), Some(ski)) = (authority_key_id(child), subject_key_id(issuer))
        && aki != ski
    {
        return false;
    }
    signature::signed_by(child, issuer)
}

/// Checks a complete candidate path; records the error if it is the most informative so far.
fn finish(path: &[Node<'_, '_>], opts: &PathOptions, best: &mut Option<PathError>) -> bool {
    match check_path(path, opts) {
        Ok(()) => true,
        Err(e) => {
            // A constraint failure on a complete path says more than "no issuer".
            if !matches!(best, Some(b) if !matches!(b, PathError::NoIssuer { .. })) {
                *best = Some(e);
            }
            false
        }
    }
}

fn check_path(path: &[Node<'_, '_>], opts: &PathOptions) -> Result<(), PathError> {
    // OpenSSL and BoringSSL (without X509_V_FLAG_PARTIAL_CHAIN, as Envoy runs them) build on
    // until a self-signed certificate: a trusted CA that is not self-issued leaves them
    // "unable to get issuer certificate". Go stops at any certificate of its root pool.
    if opts.rules == Rules::Peer
        && let Some((_, _, anchor)) = path.last()
        && anchor.subject().as_raw() != anchor.issuer().as_raw()
    {
        return Err(PathError::AnchorNotSelfSigned {
            subject: subject(anchor),
            issuer: anchor.issuer().to_string(),
        });
    }
    for (i, (_, _, cert)) in path.iter().enumerate() {
        let subject = subject(cert);
        let alg = &cert.signature_algorithm.algorithm;
        // The anchor's own signature is not part of the path's security.
        let is_anchor = i == path.len() - 1 && i > 0 || path.len() == 1;
        if !is_anchor && signature::strength(alg) != SignatureStrength::Strong {
            return Err(PathError::WeakSignature {
                subject,
                alg: algorithm_name(alg),
            });
        }
        let validity = cert.validity();
        if opts.at < validity.not_before.to_datetime() {
            return Err(PathError::NotYetValid {
                subject,
                not_before: validity.not_before.to_string(),
            });
        }
        if opts.at > validity.not_after.to_datetime() {
            return Err(PathError::Expired {
                subject,
                not_after: validity.not_after.to_string(),
            });
        }
        if let Some(eku) = extended_key_usage(cert) {
            let ok = eku.any
                || match opts.purpose {
                    Purpose::ServerAuth => eku.server_auth,
                    Purpose::ClientAuth => eku.client_auth,
                    Purpose::Any => true,
                };
            if !ok {
                return Err(PathError::Eku {
                    subject,
                    purpose: match opts.purpose {
                        Purpose::ServerAuth => "serverAuth",
                        Purpose::ClientAuth => "clientAuth",
                        Purpose::Any => "any",
                    },
                });
            }
        }
        if i == 0 {
            continue;
        }
        // Every certificate above the target issues the one below it.
        let bc = basic_constraints(cert);
        let anchor = i == path.len() - 1;
        // Go lets a version 1 trust anchor (no extensions at all) sign; a version 3 one
        // needs CA:TRUE like every intermediate (crypto/x509 CheckSignatureFrom).
        let v1_anchor = anchor
            && opts.rules == Rules::Go
            && bc.is_none()
            && cert.version() == x509_parser::x509::X509Version::V1;
        if !bc.is_some_and(|b| b.ca) && !v1_anchor {
            return Err(PathError::NotCa { subject });
        }
        // CA certificates between this one and the target (the target itself is not
        // counted), except self-issued ones (RFC 5280 §6.1.4 (l); OpenSSL does the same).
        // Go counts every one (verify.go: `len(currentChain) - 1`).
        let below = path[1..i]
            .iter()
            .filter(|(_, _, c)| {
                opts.rules == Rules::Go || c.subject().as_raw() != c.issuer().as_raw()
            })
            .count();
        if let Some(pathlen) = bc.and_then(|b| b.path_len_constraint)
            && below > pathlen as usize
        {
            return Err(PathError::PathLen {
                subject,
                pathlen,
                below,
            });
        }
        if opts.rules == Rules::Peer
            && let Some(ku) = key_usage(cert)
            && !ku.key_cert_sign()
        {
            return Err(PathError::NoKeyCertSign { subject });
        }
    }
    Ok(())
}

fn algorithm_name(alg: &x509_parser::oid_registry::Oid<'_>) -> String {
    match alg.to_id_string().as_str() {
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1".into(),
        _ => x509_parser::objects::oid2sn(alg, x509_parser::objects::oid_registry())
            .map(str::to_owned)
            .unwrap_or_else(|_| alg.to_id_string()),
    }
}

/// A readable name for a certificate: its subject, or its first SAN when the subject is empty.
pub fn subject(cert: &X509Certificate<'_>) -> String {
    let s = cert.subject().to_string();
    if !s.is_empty() {
        return s;
    }
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension()
            && let Some(first) = san.general_names.first()
        {
            return format!("<empty subject> {first}");
        }
    }
    "<empty subject>".into()
}

pub fn basic_constraints<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a BasicConstraints> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => Some(bc),
            _ => None,
        })
}

pub fn key_usage<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a KeyUsage> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => Some(ku),
            _ => None,
        })
}

pub fn extended_key_usage<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a ExtendedKeyUsage<'a>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) => Some(eku),
            _ => None,
        })
}

pub fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
}

pub fn authority_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(k) => k.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        })
}
