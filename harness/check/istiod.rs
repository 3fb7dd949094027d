//! istiod's own load-time rules as findings. The rules themselves are
//! [`crate::istio::load::evaluate`], the same code istiod's start-up runs; here
//! each [`RuleFailure`] gets check's stable id, the file, the consequence, the
//! evidence and the fix.

use super::{CheckOptions, Finding, Severity};
use crate::istio::load::{Detail, Evaluation, Incomplete, KeyProblem, RuleFailure};
use crate::pki::{Bundle, Layout};
use crate::x509::path::{self, PathError};

/// One finding per failed istiod rule, in istiod's order.
pub(crate) fn istiod_findings(
    bundle: &Bundle,
    evaluation: &Evaluation,
    opts: &CheckOptions,
) -> Vec<Finding> {
    evaluation
        .failures
        .iter()
        .map(|f| {
            let finding = finding(bundle, evaluation, f, opts);
            match &f.detail {
                // Before 1.26.1 istiod says nothing: it self-signs.
                Detail::Incomplete {
                    effect: Incomplete::Ignored,
                    ..
                } => finding,
                _ => finding.istiod_error(&f.reason),
            }
        })
        .collect()
}

fn finding(
    bundle: &Bundle,
    evaluation: &Evaluation,
    failure: &RuleFailure,
    opts: &CheckOptions,
) -> Finding {
    let error = |id| Finding::new(id, Severity::Error, bundle);
    let cert_file = bundle.ca_cert.as_ref().map_or("ca-cert.pem", |f| f.name);
    let key_file = bundle.ca_key.as_ref().map_or("ca-key.pem", |f| f.name);
    match &failure.detail {
        Detail::Incomplete { missing, effect } => {
            let version = opts.istio_version;
            let consequence = match effect {
                Incomplete::Refused => format!("istiod {version} refuses to start"),
                Incomplete::Ignored => format!(
                    "istiod {version} silently ignores the bundle and signs with its self-signed root (`O=cluster.local`): workloads will not chain to your root"
                ),
                Incomplete::MissingFileFails => format!(
                    "istiod {version} takes plug-in mode from the key file alone and fails on the missing file(s)"
                ),
            };
            let present: Vec<_> = bundle.files().map(|f| f.name).collect();
            error("incomplete-bundle")
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
                ))
        }
        Detail::CertUnparseable { file, error: e } => error("cert-unparseable")
            .file(*file)
            .message(format!(
                "{e}; istiod cannot load the bundle and does not start"
            ))
            .fix(format!(
                "replace `{file}` with the PEM certificate(s) it should hold"
            )),
        Detail::Path(e) => path_finding(bundle, cert_file, e),
        Detail::Key(KeyProblem::EcParametersFirst) => error("ec-parameters-first")
            .file(key_file)
            .message("the key file starts with an `EC PARAMETERS` block; istiod reads only the first PEM block and fails to parse the key")
            .fix(format!("keep only the key: `openssl pkcs8 -topk8 -nocrypt -in {key_file} -out {key_file}.fixed && mv {key_file}.fixed {key_file}`")),
        Detail::Key(KeyProblem::Encrypted) => error("key-encrypted")
            .file(key_file)
            .message("the key is encrypted; istiod cannot read it and does not start")
            .fix(format!(
                "decrypt it: `openssl pkey -in {key_file} -out {key_file}.plain`"
            )),
        Detail::Key(KeyProblem::Unparseable(reason)) => error("key-unparseable")
            .file(key_file)
            .message(format!("the key does not parse as PKCS#1, SEC1 or PKCS#8 ({reason}); istiod does not start"))
            .fix(format!("replace `{key_file}` with the unencrypted PEM key of the signing certificate")),
        Detail::KeyMismatch { .. } => {
            let mut f = error("key-mismatch")
                .file(key_file)
                .message(format!("`{key_file}` is not the key of `{cert_file}`; istiod does not start"));
            if let Some(cert) = &evaluation.ca_cert {
                f = f.evidence(format!("{cert_file}: {}", describe(cert)));
            }
            f.fix(format!("put the key that `{cert_file}` was issued for in `{key_file}`, or regenerate both"))
        }
        Detail::Crl { reason } => error("crl-invalid")
            .file("ca-crl.pem")
            .message(format!(
                "`ca-crl.pem` fails istiod's CRL rule ({reason}); istiod {} does not start",
                opts.istio_version
            ))
            .fix("put in ca-crl.pem one CRL signed by each certificate of cert-chain.pem (`openssl ca -gencrl` with each CA's key), or remove the file"),
        Detail::ChainTtl { reason } if reason == crate::istio::load::CHAIN_EXPIRED => {
            error("cert-chain-expired")
                .file(chain_file(bundle))
                .message(format!(
                    "the first certificate of `{}` has expired; istiod derives its default workload TTL from it and does not start",
                    chain_file(bundle)
                ))
                .fix(format!(
                    "put the current signing certificate first in `{}` (`cat ca-cert.pem root-cert.pem > cert-chain.pem`), or reissue it",
                    chain_file(bundle)
                ))
        }
        // tls.crt and ca.crt are read as one run of bytes: without a final newline, tls.crt's
        // last certificate is glued to ca.crt's first and Go's PEM reader takes neither.
        Detail::ChainTtl { .. }
            if bundle.layout == Layout::KubernetesTls
                && bundle
                    .ca_cert
                    .as_ref()
                    .is_some_and(|f| !f.bytes.is_empty() && !f.bytes.ends_with(b"\n")) =>
        {
            error("cert-chain-unparseable")
                .file("tls.crt")
                .message("`tls.crt` does not end with a newline: istiod reads tls.crt and ca.crt as one run of bytes, so tls.crt's last certificate and ca.crt's first are glued together and neither is read; istiod does not start")
                .fix("end tls.crt with a newline (`echo >> tls.crt`; for the Secret, re-create it from the fixed file)")
        }
        Detail::ChainTtl { .. } => {
            let fix = match bundle.layout {
                Layout::Istiod => "start `cert-chain.pem` with the signing certificate (`cat ca-cert.pem root-cert.pem > cert-chain.pem`)",
                Layout::KubernetesTls => "start `tls.crt` with the signing certificate, in PEM",
            };
            error("cert-chain-unparseable")
                .file(chain_file(bundle))
                .message(format!(
                    "the first PEM block of `{}` is not a certificate; istiod reads it for its default workload TTL and does not start",
                    chain_file(bundle)
                ))
                .fix(fix)
        }
        Detail::NotCa { subject } => error("ca-cert-not-ca")
            .file(cert_file)
            .message(format!("`{cert_file}` is not a CA certificate (no basicConstraints CA:TRUE); istiod does not start"))
            .evidence(format!("subject: {subject}"))
            .fix("use an intermediate CA certificate (`meshtrust certs cacerts NAME` makes one with CA:TRUE, pathlen:0)"),
    }
}

/// The file istiod takes its certificate chain from, in the bundle's layout.
fn chain_file(bundle: &Bundle) -> &'static str {
    match bundle.layout {
        Layout::Istiod => "cert-chain.pem",
        Layout::KubernetesTls => "tls.crt",
    }
}

fn path_finding(bundle: &Bundle, cert_file: &str, e: &PathError) -> Finding {
    let root_file = bundle
        .root_cert
        .as_ref()
        .map_or("root-cert.pem", |f| f.name);
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
        PathError::NoIssuer { .. } | PathError::AnchorNotSelfSigned { .. } => (
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
