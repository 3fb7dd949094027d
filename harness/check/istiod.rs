//! istiod's own load-time rules for `/etc/cacerts`, in istiod's order
//! (ISTIO-FACTS §2). Any error here stops istiod, or (before 1.26, for an
//! incomplete bundle) silently turns it into a self-signed CA.

use rustls_pki_types::CertificateDer;

use super::{CheckOptions, Finding, Severity};
use crate::chain::path::{self, PathError, PathOptions, Purpose, Rules};
use crate::pki::{Bundle, BundleFile, Layout, PkiError, contains_label};

/// The bundle's certificates and key, parsed once; parse failures become findings.
pub struct Parsed {
    pub ca_cert: Option<CertificateDer<'static>>,
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub roots: Vec<CertificateDer<'static>>,
    pub key: Option<rcgen::KeyPair>,
}

impl Parsed {
    pub fn read(bundle: &Bundle, findings: &mut Vec<Finding>) -> Parsed {
        let mut certs = |file: &Option<BundleFile>| -> Vec<CertificateDer<'static>> {
            let Some(file) = file else { return Vec::new() };
            match file.certs() {
                Ok(certs) => certs,
                Err(e) => {
                    findings.push(
                        Finding::new("cert-unparseable", Severity::Error, bundle)
                            .file(file.name)
                            .message(format!(
                                "{e}; istiod cannot load the bundle and does not start"
                            ))
                            .fix(format!(
                                "replace `{}` with the PEM certificate(s) it should hold",
                                file.name
                            )),
                    );
                    Vec::new()
                }
            }
        };
        let ca_certs = certs(&bundle.ca_cert);
        let mut roots = certs(&bundle.root_cert);
        let cert_chain = match bundle.layout {
            Layout::Istiod => certs(&bundle.cert_chain),
            Layout::KubernetesTls => ca_certs.iter().chain(roots.iter()).cloned().collect(),
        };
        if bundle.layout == Layout::KubernetesTls {
            // cert-manager's ca.crt may carry more than the root; istiod trusts all of it.
            roots.dedup();
        }
        let key = bundle
            .ca_key
            .as_ref()
            .and_then(|f| parse_key(bundle, f, findings));
        Parsed {
            ca_cert: ca_certs.into_iter().next(),
            cert_chain,
            roots,
            key,
        }
    }
}

fn parse_key(
    bundle: &Bundle,
    file: &BundleFile,
    findings: &mut Vec<Finding>,
) -> Option<rcgen::KeyPair> {
    let finding = |id| Finding::new(id, Severity::Error, bundle).file(file.name);
    // Go's pem.Decode takes the first block: `openssl ecparam -genkey` writes
    // EC PARAMETERS before the key, and istiod then fails to parse it.
    let first_label = std::str::from_utf8(&file.bytes)
        .ok()
        .and_then(|s| s.find("-----BEGIN ").map(|i| &s[i + 11..]))
        .and_then(|s| s.split("-----").next());
    if first_label == Some("EC PARAMETERS") {
        findings.push(
            finding("ec-parameters-first")
                .message("the key file starts with an `EC PARAMETERS` block; istiod reads only the first PEM block and fails to parse the key")
                .fix(format!("keep only the key: `openssl pkcs8 -topk8 -nocrypt -in {0} -out {0}.fixed`", file.name)),
        );
        return None;
    }
    if contains_label(&file.bytes, "ENCRYPTED PRIVATE KEY")
        || contains_label(&file.bytes, "Proc-Type: 4,ENCRYPTED")
    {
        findings.push(
            finding("key-encrypted")
                .message("the key is encrypted; istiod cannot read it and does not start")
                .fix(format!(
                    "decrypt it: `openssl pkey -in {0} -out {0}.plain`",
                    file.name
                )),
        );
        return None;
    }
    match file.key() {
        Ok(key) => Some(key),
        Err(e) => {
            let reason = match e {
                PkiError::BadKey { reason, .. } => reason,
                other => other.to_string(),
            };
            findings.push(
                finding("key-unparseable")
                    .message(format!("the key does not parse as PKCS#1, SEC1 or PKCS#8 ({reason}); istiod does not start"))
                    .fix(format!("replace `{}` with the unencrypted PEM key of the signing certificate", file.name)),
            );
            None
        }
    }
}

/// istiod's rules, in its order: completeness, then (1) the signing certificate
/// verifies to the root through cert-chain.pem, (2) the key parses (reported
/// while parsing), (3) the key matches, (4) the signing certificate is a CA.
pub fn istiod_rules(bundle: &Bundle, parsed: &Parsed, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let missing = bundle.missing();
    if !missing.is_empty() {
        let present: Vec<_> = bundle.files().map(|f| f.name).collect();
        let consequence = if opts.istio_version.refuses_incomplete_bundle() {
            format!(
                "istiod {} refuses to start: \"incomplete signing CA bundle detected\"",
                opts.istio_version
            )
        } else if bundle.ca_key.is_none() {
            format!(
                "istiod {} silently ignores the bundle and signs with its self-signed root (`O=cluster.local`): workloads will not chain to your root",
                opts.istio_version
            )
        } else {
            format!(
                "istiod {} takes plug-in mode from the key file alone and fails on the missing file(s)",
                opts.istio_version
            )
        };
        out.push(
            Finding::new("incomplete-bundle", Severity::Error, bundle)
                .file(missing.join(", "))
                .message(format!("missing {}; {consequence}", missing.join(", ")))
                .evidence(format!(
                    "present: {}",
                    if present.is_empty() {
                        "nothing".into()
                    } else {
                        present.join(", ")
                    }
                ))
                .fix(format!(
                    "provide all of {} (`meshtrust certs cacerts NAME` writes them)",
                    bundle.expected_files()
                )),
        );
    }
    let cert_file = bundle.ca_cert.as_ref().map_or("ca-cert.pem", |f| f.name);
    let root_file = bundle
        .root_cert
        .as_ref()
        .map_or("root-cert.pem", |f| f.name);
    if let (Some(ca_cert), false) = (&parsed.ca_cert, parsed.roots.is_empty()) {
        let opts = PathOptions {
            at: opts.now,
            purpose: Purpose::ServerAuth,
            rules: Rules::Go,
        };
        if let Err(e) = path::verify(ca_cert, &parsed.cert_chain, &parsed.roots, &opts) {
            out.push(path_finding(bundle, cert_file, root_file, &e));
        }
    }
    if let (Some(key), Some(cert)) = (&parsed.key, &parsed.ca_cert) {
        if !crate::pki::key_matches_cert(key, cert) {
            let key_file = bundle.ca_key.as_ref().map_or("ca-key.pem", |f| f.name);
            out.push(
                Finding::new("key-mismatch", Severity::Error, bundle)
                    .file(key_file)
                    .message(format!("`{key_file}` is not the key of `{cert_file}`; istiod does not start"))
                    .evidence(format!("{cert_file}: {}", describe(cert)))
                    .fix(format!("put the key that `{cert_file}` was issued for in `{key_file}`, or regenerate both")),
            );
        }
    }
    if let Some(cert) = &parsed.ca_cert {
        if let Ok((_, x509)) = x509_parser::parse_x509_certificate(cert) {
            if !path::basic_constraints(&x509).is_some_and(|b| b.ca) {
                out.push(
                    Finding::new("ca-cert-not-ca", Severity::Error, bundle)
                        .file(cert_file)
                        .message(format!("`{cert_file}` is not a CA certificate (no basicConstraints CA:TRUE); istiod does not start"))
                        .evidence(format!("subject: {}", path::subject(&x509)))
                        .fix("use an intermediate CA certificate (`meshtrust certs cacerts NAME` makes one with CA:TRUE, pathlen:0)"),
                );
            }
        }
    }
    out
}

fn path_finding(bundle: &Bundle, cert_file: &str, root_file: &str, e: &PathError) -> Finding {
    let chain = if bundle.layout == Layout::Istiod {
        "cert-chain.pem"
    } else {
        "tls.crt + ca.crt"
    };
    let (id, fix) = match e {
        PathError::Expired { .. } => (
            "expired",
            "issue a new intermediate (`meshtrust certs cacerts NAME --force`) and rotate",
        ),
        PathError::NotYetValid { .. } => (
            "not-yet-valid",
            "check the clocks of the machine that made it; reissue with a current NotBefore",
        ),
        PathError::NoIssuer { .. } => (
            "no-path-to-root",
            "put the root that issued the chain in root-cert.pem, and every CA between it and ca-cert.pem in cert-chain.pem",
        ),
        PathError::Eku { .. } => (
            "eku-excludes-server-auth",
            "reissue the CA without an extendedKeyUsage (or with serverAuth in it): Go's verifier checks it along the whole chain",
        ),
        PathError::WeakSignature { .. } => (
            "weak-signature",
            "reissue with SHA-256 (macOS LibreSSL may default to SHA-1: pass `-sha256`)",
        ),
        PathError::NotCa { .. } => (
            "issuer-not-ca",
            "every certificate above ca-cert.pem must be a CA (basicConstraints CA:TRUE)",
        ),
        PathError::PathLen { .. } => (
            "pathlen-violation",
            "reissue the constraining CA with a larger pathlen, or shorten the chain",
        ),
        PathError::NoKeyCertSign { .. } => (
            "no-key-cert-sign",
            "reissue the CA with keyUsage keyCertSign",
        ),
        PathError::Unparseable { .. } => {
            ("cert-unparseable", "replace the unparseable certificate")
        }
    };
    Finding::new(id, Severity::Error, bundle)
        .file(cert_file)
        .message(format!(
            "`{cert_file}` does not verify to `{root_file}` through {chain}: {e}; istiod does not start"
        ))
        .fix(fix)
}

/// `subject (sha256 fingerprint prefix)`, for evidence lines.
pub(crate) fn describe(der: &[u8]) -> String {
    let fp = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let hex: String = fp.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => format!("`{}` (sha256 {hex}…)", path::subject(&c)),
        Err(_) => format!("<unparseable> (sha256 {hex}…)"),
    }
}
