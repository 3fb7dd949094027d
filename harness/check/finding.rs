use serde::Serialize;

use crate::exit::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// istiod refuses the bundle, or the mesh breaks with it.
    Error,
    /// Works today, but will break, or differs from Istio's defaults.
    Warning,
    /// Information (what istiod will serve); never fails, even with `--strict`.
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`: as `check` prints it and JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `key-mismatch`.
    pub id: &'static str,
    pub severity: Severity,
    /// The bundle directory, or `*` for findings across bundles.
    pub bundle: String,
    /// The file the finding is about, relative to the bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What is wrong and what it will cause.
    pub message: String,
    /// Facts that show it: subjects, dates, fingerprints.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// How to fix it.
    pub fix: String,
    /// istiod's own error text for a refusal, verbatim (what its log shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod_error: Option<String>,
    /// For `peers-refuse`: each (workloads, peers, purpose) the peers refuse, with the
    /// peer's reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peer_refusals: Vec<PeerRefusal>,
}

/// Peers refusing a cluster's workload certificates: the workloads of bundle
/// `workloads` present their chain (as istiod serves it), the peers of bundle `peers`
/// verify it against their trust bundle (that bundle's `root-cert.pem` / `ca.crt`) as
/// OpenSSL and BoringSSL do, for `purpose` (`serverAuth`: the workload serves;
/// `clientAuth`: the workload is the mTLS client), and fail with `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerRefusal {
    /// The presenting bundle's name (`cluster1`).
    pub workloads: String,
    /// The verifying bundle's name; the same as `workloads` within one cluster.
    pub peers: String,
    /// `serverAuth` or `clientAuth`.
    pub purpose: String,
    /// The peer's error.
    pub reason: String,
}

impl Finding {
    pub(crate) fn new(
        id: &'static str,
        severity: Severity,
        bundle: &crate::pki::Bundle,
    ) -> Finding {
        Finding {
            id,
            severity,
            bundle: bundle.dir.display().to_string(),
            file: None,
            message: String::new(),
            evidence: Vec::new(),
            fix: String::new(),
            istiod_error: None,
            peer_refusals: Vec::new(),
        }
    }

    pub(crate) fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub(crate) fn message(mut self, m: impl Into<String>) -> Self {
        self.message = m.into();
        self
    }

    pub(crate) fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }

    pub(crate) fn istiod_error(mut self, e: impl Into<String>) -> Self {
        self.istiod_error = Some(e.into());
        self
    }

    pub(crate) fn refusal(
        mut self,
        workloads: &str,
        peers: &str,
        purpose: impl std::fmt::Display,
        reason: impl std::fmt::Display,
    ) -> Self {
        self.peer_refusals.push(PeerRefusal {
            workloads: workloads.to_owned(),
            peers: peers.to_owned(),
            purpose: purpose.to_string(),
            reason: reason.to_string(),
        });
        self
    }

    pub(crate) fn fix(mut self, f: impl Into<String>) -> Self {
        self.fix = f.into();
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub bundles: Vec<String>,
    pub findings: Vec<Finding>,
}

/// The schema of `meshtrust check --format json`: `fixtures/schemas/check.schema.json`.
pub const CHECK_SCHEMA: &str = "meshtrust.check/v1";

impl Report {
    /// The JSON document (schema [`CHECK_SCHEMA`]): schema, meshtrust's version, whether
    /// no error was found (`ok`; `--strict` also counts warnings), counts by severity, then
    /// the bundles and findings.
    pub fn to_json(&self, strict: bool) -> String {
        #[derive(Serialize)]
        struct Counts {
            errors: usize,
            warnings: usize,
            notes: usize,
        }
        #[derive(Serialize)]
        struct Document<'a> {
            schema: &'static str,
            meshtrust_version: &'static str,
            ok: bool,
            strict: bool,
            counts: Counts,
            #[serde(flatten)]
            report: &'a Report,
        }
        serde_json::to_string_pretty(&Document {
            schema: CHECK_SCHEMA,
            meshtrust_version: env!("CARGO_PKG_VERSION"),
            ok: self.exit(strict) == crate::exit::Exit::Conformant,
            strict,
            counts: Counts {
                errors: self.count(Severity::Error),
                warnings: self.count(Severity::Warning),
                notes: self.count(Severity::Note),
            },
            report: self,
        })
        .expect("a check report is plain data and always serializes")
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn has(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f.id == id)
    }

    /// 0 without errors (warnings too with `strict`), else 1. Notes never fail.
    pub fn exit(&self, strict: bool) -> Exit {
        let failing = self.count(Severity::Error)
            + if strict {
                self.count(Severity::Warning)
            } else {
                0
            };
        if failing == 0 {
            Exit::Conformant
        } else {
            Exit::NotConformant
        }
    }
}
