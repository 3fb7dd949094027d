use std::fmt::Write as _;

use super::RunReport;

/// A table, one line per scenario, then the reasons of those that failed.
pub fn render_summary(report: &RunReport) -> String {
    let mut out = String::new();
    let width = report
        .scenarios
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:<width$}  {:<6}  {:>8}  expectation",
        "scenario", "result", "time"
    );
    for s in &report.scenarios {
        let _ = writeln!(
            out,
            "{:<width$}  {:<6}  {:>7.2}s  {}",
            s.name,
            if s.passed { "pass" } else { "FAIL" },
            s.duration.as_secs_f64(),
            s.expectation
        );
    }
    for s in report.scenarios.iter().filter(|s| !s.passed) {
        let _ = writeln!(out, "\n{} failed:", s.name);
        for r in &s.reasons {
            let _ = writeln!(out, "  - {r}");
        }
    }
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    let _ = writeln!(
        out,
        "\n{passed}/{} scenarios passed on target `{}` in {:.2}s",
        report.scenarios.len(),
        report.target,
        report.duration.as_secs_f64()
    );
    out
}
