//! What a run tells its readers: the console summary, JSON, JUnit XML, and the
//! artifacts directory. Certificates only: no private key ever reaches a report.

mod artifacts;
mod console;
mod graph;
mod junit;
mod observation;

use std::time::Duration;

use serde::Serialize;

pub use artifacts::write_artifacts;
pub use console::{render_failed_trees, render_markdown, render_summary};
pub use graph::{Edge, EdgeKind, GraphInput, Node, NodeKind, TrustGraph};
pub use junit::to_junit;
pub use observation::{Observation, Observed, Transport};

/// The schema of `meshtrust run --json` (and `report.json` in `--artifacts`):
/// `fixtures/schemas/run.schema.json`.
pub const RUN_SCHEMA: &str = "meshtrust.run/v2";
/// The schema of an error printed under `--format json`: `fixtures/schemas/error.schema.json`.
pub const ERROR_SCHEMA: &str = "meshtrust.error/v1";
/// meshtrust's version, in every JSON document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One `meshtrust run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub target: String,
    /// RFC 3339.
    pub started: String,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    pub scenarios: Vec<ScenarioReport>,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.passed)
    }

    /// The JSON document (schema [`RUN_SCHEMA`]): the report with its schema, meshtrust's
    /// version and the overall verdict.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Document<'a> {
            schema: &'static str,
            meshtrust_version: &'static str,
            conformant: bool,
            #[serde(flatten)]
            report: &'a RunReport,
        }
        serde_json::to_string_pretty(&Document {
            schema: RUN_SCHEMA,
            meshtrust_version: VERSION,
            conformant: self.passed(),
            report: self,
        })
        .expect("a run report is plain data and always serializes")
    }
}

/// An error as JSON (schema [`ERROR_SCHEMA`]), for commands run with `--format json`:
/// `message` is the whole chain of causes, once each; `exit_code` is the process's.
pub fn error_json(message: &str, exit_code: u8) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "schema": ERROR_SCHEMA,
        "meshtrust_version": VERSION,
        "error": message,
        "exit_code": exit_code,
    }))
    .expect("plain data")
}

/// One scenario: whether it met its expectation, why not, and what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    /// `conformant`, or the named reason a negative scenario must fail with.
    pub expectation: String,
    pub passed: bool,
    /// Why it did not meet its expectation; empty when it passed.
    pub reasons: Vec<String>,
    /// What was observed, in order (istiod's log, captured chains, verdicts, requests).
    pub observations: Vec<Observation>,
    pub phases: Vec<Phase>,
    /// The target's own milestones (the istiod target: API server ready, istiod ready, first
    /// workload certificate), when it reports any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<crate::scenario::Milestone>,
    /// Captured chains, PEM, by label (`cluster1/foo/httpbin`).
    pub chains: Vec<ChainArtifact>,
    /// The cacerts bundles the scenario plugged in or checked against: public files only.
    pub bundles: Vec<BundleArtifact>,
    /// The trust bundle each cluster's workloads were given (ConfigMap
    /// `istio-ca-root-cert`), as last read.
    pub trust_bundles: Vec<TrustBundleArtifact>,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

/// A cacerts directory's public files (never its key), read when the scenario used it.
#[derive(Debug, Clone, Serialize)]
pub struct BundleArtifact {
    /// `mesh/cluster1`: the directory and its parent, unique within a run.
    pub label: String,
    /// Each public file present.
    pub files: Vec<BundleFileArtifact>,
}

/// One public file of a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleFileArtifact {
    /// `ca-cert.pem`, `cert-chain.pem`, ...
    pub name: String,
    pub pem: String,
}

impl BundleArtifact {
    /// Public files of a bundle, as far as they exist.
    pub const PUBLIC_FILES: [&'static str; 6] = [
        crate::pki::layout::CA_CERT,
        crate::pki::layout::CERT_CHAIN,
        crate::pki::layout::ROOT_CERT,
        crate::pki::TLS_CRT,
        crate::pki::TLS_CA,
        "ca-crl.pem",
    ];

    pub fn read(dir: &std::path::Path) -> BundleArtifact {
        let name = |p: Option<&std::path::Path>| {
            p.and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let label = format!("{}/{}", name(dir.parent()), name(Some(dir)));
        let files = Self::PUBLIC_FILES
            .iter()
            .filter_map(|f| {
                Some(BundleFileArtifact {
                    name: f.to_string(),
                    pem: std::fs::read_to_string(dir.join(f)).ok()?,
                })
            })
            .collect();
        BundleArtifact { label, files }
    }
}

/// A cluster's trust bundle as its workloads get it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustBundleArtifact {
    pub cluster: String,
    /// `root-cert.pem` of ConfigMap `istio-ca-root-cert`: every root the workloads trust.
    pub pem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainArtifact {
    pub label: String,
    pub pem: String,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, reasons: &[&str]) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            description: String::new(),
            expectation: "conformant".into(),
            passed: reasons.is_empty(),
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            observations: vec![Observation::new(
                name,
                Observed::Note {
                    text: "observed".into(),
                },
            )],
            phases: Vec::new(),
            milestones: Vec::new(),
            chains: Vec::new(),
            bundles: Vec::new(),
            trust_bundles: Vec::new(),
            duration: Duration::from_millis(250),
        }
    }

    #[test]
    fn milestones_are_in_the_json_only_when_the_target_reports_some() {
        let mut s = scenario("plugin-ca", &[]);
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("milestones").is_none(), "{json}");
        s.milestones.push(crate::scenario::Milestone::istiod_ready(
            "cluster1",
            "1.31",
            "default",
            Duration::from_millis(420),
        ));
        s.milestones
            .push(crate::scenario::Milestone::api_server_ready(
                "cluster2",
                Duration::from_millis(1500),
            ));
        let json = serde_json::to_value(&s).unwrap();
        // Each as fields, and as one line; an API server has no release or revision.
        assert_eq!(
            json["milestones"],
            serde_json::json!([
                {"name": "cluster1: istiod 1.31 (default) ready", "event": "istiod-ready",
                    "cluster": "cluster1", "release": "1.31", "revision": "default",
                    "duration_ms": 420},
                {"name": "cluster2: etcd + API server ready", "event": "api-server-ready",
                    "cluster": "cluster2", "duration_ms": 1500}
            ])
        );
    }

    fn run(scenarios: Vec<ScenarioReport>) -> RunReport {
        RunReport {
            target: "local".into(),
            started: String::new(),
            duration: Duration::from_secs(1),
            scenarios,
        }
    }

    #[test]
    fn a_passing_run_reports_no_failure() {
        let report = run(vec![scenario("plugin-ca", &[])]);
        assert!(report.passed());
        let xml = to_junit(&report);
        assert!(xml.contains(r#"failures="0""#), "{xml}");
        assert!(!xml.contains("<failure"), "{xml}");
        assert!(render_summary(&report).contains("1/1 scenarios passed"));
    }

    #[test]
    fn a_failed_scenario_carries_its_reasons_into_junit_and_the_summary() {
        let report = run(vec![
            scenario("plugin-ca", &[]),
            scenario(
                "default-ca",
                &["cluster1/foo/httpbin: the chain is conformant"],
            ),
        ]);
        assert!(!report.passed());
        let xml = to_junit(&report);
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(
            xml.contains(r#"<failure message="cluster1/foo/httpbin: the chain is conformant" type="conformance"/>"#),
            "{xml}"
        );
        let summary = render_summary(&report);
        assert!(
            summary
                .contains("default-ca failed:\n  - cluster1/foo/httpbin: the chain is conformant"),
            "{summary}"
        );
        assert!(summary.contains("1/2 scenarios passed"), "{summary}");
    }
}
