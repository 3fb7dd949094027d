//! The kind target's entry gate. On a machine without docker, kind or istioctl this FAILS (it
//! never skips): in seconds, naming each missing tool and how to install it. `.ci/run` runs
//! plain `cargo test` (this file is compiled only with `--features e2e`), so CI here stays
//! green while `cargo test --features e2e` on such a machine is red for exactly this reason.

use std::time::{Duration, Instant};

use meshtrust::kube::{ToolSearch, preflight};

/// Preflight runs each tool's version command with a deadline of its own (15 s at most, for
/// `docker info`); the whole check must stay well inside this.
const FAST: Duration = Duration::from_secs(30);

/// `--istioctl` for e2e tests: `MESHTRUST_ISTIOCTL_A` and `_B` (the nightly upgrade pair), else
/// `ISTIOCTL` or PATH.
pub fn istioctl_phases() -> Vec<std::path::PathBuf> {
    ["MESHTRUST_ISTIOCTL_A", "MESHTRUST_ISTIOCTL_B"]
        .iter()
        .filter_map(|v| {
            std::env::var_os(v)
                .filter(|p| !p.is_empty())
                .map(Into::into)
        })
        .collect()
}

/// Every e2e test starts here: the tools, or a panic that names what is missing.
pub fn require_tools() -> meshtrust::kube::Toolbox {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let started = Instant::now();
    let result = runtime.block_on(preflight(&ToolSearch::from_env(istioctl_phases())));
    let took = started.elapsed();
    assert!(
        took < FAST,
        "preflight took {took:?}: it must fail fast, not hang"
    );
    match result {
        Ok(tools) => tools,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_kind_target_has_docker_kind_and_istioctl() {
    let tools = require_tools();
    assert!(!tools.istioctl.is_empty());
}
