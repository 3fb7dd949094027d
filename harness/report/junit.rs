use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunReport;

/// JUnit XML: one test suite per target, one test case per scenario, with the
/// failure reasons as the message and the observations as system-out.
pub fn to_junit(report: &RunReport) -> String {
    let mut junit = Report::new("meshtrust");
    let mut suite = TestSuite::new(report.target.clone());
    for s in &report.scenarios {
        let status = if s.passed {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(s.reasons.join("; "));
            st.set_type("conformance");
            st
        };
        let mut case = TestCase::new(s.name.clone(), status);
        case.set_classname(format!("meshtrust.{}", report.target));
        case.set_time(s.duration);
        case.set_system_out(
            s.observations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        suite.add_test_case(case);
    }
    suite.set_time(report.duration);
    junit.add_test_suite(suite);
    junit.set_time(report.duration);
    junit.to_string().expect("a report of strings serialises")
}
