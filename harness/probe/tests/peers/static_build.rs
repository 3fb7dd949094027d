//! The probe is copied into pods whose images differ (Ubuntu proxyv2, distroless): it must be a
//! statically linked executable (ISTIO-FACTS §6). Builds it the way `just probe-static` does,
//! into its own target directory so the test build's flags are untouched.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::openssl::{SServer, ServerOptions};
use crate::support::pki::{KeyType, Pki};
use crate::support::probe_bin::run_bin;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn static_target_dir() -> PathBuf {
    // Next to the test build's own target directory, so it stays warm between runs.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("static")
}

fn build_static() -> PathBuf {
    let target_dir = static_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "meshtrust-probe",
            "--target",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cannot run cargo");
    assert!(
        out.status.success(),
        "static build failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir
        .join(TARGET)
        .join("release")
        .join("meshtrust-probe")
}

fn tool_output(tool: &str, binary: &Path) -> String {
    let out = Command::new(tool)
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("this test needs `{tool}` on PATH: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_static_build_is_statically_linked_and_captures_a_chain() {
    let binary = build_static();
    let file = tool_output("file", &binary);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "file says: {file}"
    );
    let ldd = tool_output("ldd", &binary);
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "ldd says: {ldd}"
    );

    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let run = run_bin(binary.to_str().unwrap(), [server.addr()]);
    run.expect_code(0);
    assert!(run.stderr.starts_with("captured 4 certificates"), "{run}");
}
