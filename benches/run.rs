//! `cargo bench --bench run`: the whole local suite (`meshtrust run`'s work),
//! RSA 4096 roots and intermediates made fresh each time, median of N runs
//! (env `MESHTRUST_BENCH_RUNS`, default 10).

use std::time::{Duration, Instant};

use meshtrust::mesh::LocalTarget;
use meshtrust::scenario::{self, RunOptions};

fn main() {
    let runs: usize = std::env::var("MESHTRUST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let runs = if std::env::args().any(|a| a == "--bench") {
        runs
    } else {
        1
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times: Vec<Duration> = Vec::new();
    let mut failures = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = rt
            .block_on(scenario::run(
                LocalTarget::new,
                &RunOptions::default(),
                &|_, _| {},
            ))
            .unwrap();
        times.push(start.elapsed());
        failures += usize::from(!out.report.passed());
    }
    times.sort();
    println!(
        "meshtrust run (local, all {} scenarios, RSA 4096 CAs), {runs} runs",
        meshtrust::scenario::Scenario::ALL.len()
    );
    println!("  median {:>8.0} ms", times[runs / 2].as_secs_f64() * 1e3);
    println!("  min    {:>8.0} ms", times[0].as_secs_f64() * 1e3);
    println!("  max    {:>8.0} ms", times[runs - 1].as_secs_f64() * 1e3);
    println!("  failed runs: {failures}");
    assert_eq!(failures, 0, "a run failed");
}
