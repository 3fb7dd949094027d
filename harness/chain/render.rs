//! A verdict for people (one line per check, reasons indented) and for machines (JSON).

use std::fmt::Write as _;

use super::verdict::{Status, Verdict};

/// The text report: `PASS name  summary`, then each detail indented under it,
/// then one line with the overall result.
pub fn text(v: &Verdict) -> String {
    let width = v
        .checks
        .iter()
        .map(|c| c.id.name().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "chain of {} certificate{} against cacerts `{}`",
        v.length,
        if v.length == 1 { "" } else { "s" },
        v.bundle
    );
    for c in &v.checks {
        let status = match c.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Info => "INFO",
        };
        let _ = writeln!(out, "{status} {:width$}  {}", c.id.name(), c.summary);
        for d in &c.details {
            let _ = writeln!(out, "       {d}");
        }
    }
    let failed: Vec<&str> = v.failures().map(|c| c.id.name()).collect();
    if failed.is_empty() {
        let _ = writeln!(out, "conformant");
    } else {
        let _ = writeln!(out, "not conformant: {} failed", failed.join(", "));
    }
    out
}

/// The schema of `meshtrust verify --format json`: `fixtures/schemas/verify.schema.json`.
pub const VERIFY_SCHEMA: &str = "meshtrust.verify/v1";

/// The verdict as pretty JSON (schema [`VERIFY_SCHEMA`]): schema, meshtrust's version,
/// then the checks and every served certificate described.
pub fn json(v: &Verdict) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        schema: &'static str,
        meshtrust_version: &'static str,
        #[serde(flatten)]
        verdict: &'a Verdict,
    }
    serde_json::to_string_pretty(&Document {
        schema: VERIFY_SCHEMA,
        meshtrust_version: env!("CARGO_PKG_VERSION"),
        verdict: v,
    })
    .expect("a verdict is plain data and always serializes")
}
