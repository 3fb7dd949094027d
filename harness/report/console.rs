use std::fmt::Write as _;

use super::{RunReport, TrustGraph};

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

/// The trust graph of each failed scenario as a compact tree (what a reader of a failed
/// run looks at first); empty when every scenario passed.
pub fn render_failed_trees(report: &RunReport) -> String {
    let mut out = String::new();
    for s in report.scenarios.iter().filter(|s| !s.passed) {
        let _ = writeln!(out, "\n{} trust graph:", s.name);
        out.push_str(&TrustGraph::of_scenario(s).to_tree());
    }
    out
}

/// A Markdown summary (for `--summary FILE`, e.g. `$GITHUB_STEP_SUMMARY`): the result
/// table, each failure's reasons, and each scenario's trust graph as Mermaid, which
/// GitHub renders; failing leaves, unexpected certificates and refused mTLS in red.
pub fn render_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    let _ = writeln!(
        out,
        "## meshtrust: {passed}/{} scenarios passed on target `{}`\n",
        report.scenarios.len(),
        report.target
    );
    let _ = writeln!(out, "| scenario | result | time | expectation |");
    let _ = writeln!(out, "|---|---|---|---|");
    for s in &report.scenarios {
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.2}s | {} |",
            s.name,
            if s.passed { "pass" } else { "**FAIL**" },
            s.duration.as_secs_f64(),
            s.expectation.replace('|', "\\|")
        );
    }
    for s in &report.scenarios {
        let _ = writeln!(out, "\n### `{}`\n", s.name);
        for r in &s.reasons {
            let _ = writeln!(out, "- {}", r.replace('|', "\\|"));
        }
        if !s.reasons.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "```mermaid\n{}```",
            TrustGraph::of_scenario(s).to_mermaid()
        );
    }
    out
}
