//! What a scenario saw, typed: each observation names its subject and carries its
//! facts as fields, so that programs reading the JSON report never parse prose.
//! `Display` gives the one line people read (console, JUnit system-out).

use std::fmt;

use serde::Serialize;

use crate::chain::{Check, Status};
use crate::check::Severity;

/// One thing a scenario observed (`observations[]` in `fixtures/schemas/run.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// What it is about: a workload (`cluster1/foo/httpbin`), a cluster (`cluster1`,
    /// `bad-not-a-ca`), a request (`sleep@cluster1 -> httpbin@cluster2`), or a stage of
    /// the scenario (`after rotation`).
    pub subject: String,
    #[serde(flatten)]
    pub observed: Observed,
}

/// The kinds of observation; `kind` in JSON (snake case).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observed {
    /// A line istiod logged while starting (its CA mode: plugged in or self-signed).
    IstiodLog { line: String },
    /// istiod refused the plugged bundle and did not start; `error` is its own text.
    IstiodRefused { error: String },
    /// A served chain was captured: how many certificates, from beside which workload,
    /// over which TLS version (`None`: not reported by the target).
    ChainCaptured {
        certificates: usize,
        /// The workload that served it (`cluster1/foo/httpbin`).
        workload: String,
        from: String,
        protocol: Option<String>,
    },
    /// One check of a chain verdict, as `meshtrust verify` reports it.
    Check {
        check: String,
        status: Status,
        summary: String,
        details: Vec<String>,
    },
    /// A chain verdict's bottom line: `failed` names the failed checks.
    Verdict {
        certificates: usize,
        bundle: String,
        conformant: bool,
        failed: Vec<String>,
    },
    /// A chain failed for the check a negative scenario expects.
    ExpectedFailure { check: String, summary: String },
    /// A request between workloads: `transport` is `mtls` or `plaintext`; either an
    /// HTTP `status` (and, over mTLS, the caller's SPIFFE id the server saw) or a
    /// refusal with its `reason`.
    Request {
        /// The calling workload (`cluster1/foo/sleep`).
        from: String,
        /// The called workload (`cluster2/foo/httpbin`).
        to: String,
        transport: Transport,
        status: Option<u16>,
        peer_identity: Option<String>,
        refused: Option<String>,
    },
    /// A ConfigMap `istio-ca-root-cert` compared with the plugged `root-cert.pem`.
    RootConfigMap { namespace: String, equal: bool },
    /// A `meshtrust check` finding about a bundle.
    Finding {
        id: String,
        severity: Severity,
        message: String,
    },
    /// A workload asked for a certificate and got none (`error`: why).
    NoCertificate { error: String },
    /// Anything else, in words (a teardown problem, ...).
    Note { text: String },
}

/// How a request travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Mtls,
    Plaintext,
}

impl Observation {
    pub fn new(subject: impl Into<String>, observed: Observed) -> Self {
        Observation {
            subject: subject.into(),
            observed,
        }
    }

    /// A check of a verdict, under `subject`.
    pub fn check(subject: &str, check: &Check) -> Self {
        Observation::new(
            subject,
            Observed::Check {
                check: check.id.name().to_owned(),
                status: check.status,
                summary: check.summary.clone(),
                details: check.details.clone(),
            },
        )
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Mtls => "mTLS",
            Transport::Plaintext => "plaintext",
        })
    }
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.subject)?;
        match &self.observed {
            Observed::IstiodLog { line } => write!(f, "istiod: {line}"),
            Observed::IstiodRefused { error } => write!(f, "istiod refused to start: {error}"),
            Observed::ChainCaptured {
                certificates,
                from,
                protocol,
                ..
            } => write!(
                f,
                "{certificates} certificate{} captured from beside {from}, {}",
                if *certificates == 1 { "" } else { "s" },
                protocol.as_deref().unwrap_or("TLS version not reported")
            ),
            Observed::Check {
                check,
                status,
                summary,
                details,
            } => {
                let status = match status {
                    Status::Pass => "PASS",
                    Status::Fail => "FAIL",
                    Status::Info => "INFO",
                };
                write!(f, "{status} {check}: {summary}")?;
                for d in details {
                    write!(f, "; {d}")?;
                }
                Ok(())
            }
            Observed::Verdict {
                certificates,
                bundle,
                conformant,
                failed,
            } => {
                write!(
                    f,
                    "chain of {certificates} certificate{} against cacerts `{bundle}`: ",
                    if *certificates == 1 { "" } else { "s" }
                )?;
                if *conformant {
                    f.write_str("conformant")
                } else {
                    write!(f, "not conformant: {} failed", failed.join(", "))
                }
            }
            Observed::ExpectedFailure { check, summary } => {
                write!(f, "fails as expected: {check}: {summary}")
            }
            Observed::Request {
                transport,
                status,
                from: _,
                to: _,
                peer_identity,
                refused,
            } => {
                match (status, refused) {
                    (Some(status), _) => write!(f, "{transport}: HTTP {status}")?,
                    (None, Some(reason)) => write!(f, "{transport}: refused ({reason})")?,
                    (None, None) => write!(f, "{transport}: no outcome")?,
                }
                if let Some(id) = peer_identity {
                    write!(f, ", the server saw {id}")?;
                }
                Ok(())
            }
            Observed::RootConfigMap { namespace, equal } => write!(
                f,
                "ConfigMap istio-ca-root-cert in {namespace} {} the plugged root-cert.pem",
                if *equal { "equals" } else { "differs from" }
            ),
            Observed::Finding {
                id,
                severity,
                message,
            } => write!(f, "meshtrust check: {}[{id}]: {message}", severity.name()),
            Observed::NoCertificate { error } => write!(f, "no workload certificate: {error}"),
            Observed::Note { text } => f.write_str(text),
        }
    }
}
