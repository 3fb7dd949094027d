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

/// How an ELF executable is linked, read from its program headers: the dynamic
/// loader it names (`PT_INTERP`) and the libraries it needs (`DT_NEEDED`).
#[derive(Debug, PartialEq, Eq)]
struct Linkage {
    interpreter: bool,
    needed: usize,
}

impl Linkage {
    fn of(binary: &Path) -> Linkage {
        use object::elf;
        use object::read::elf::{Dyn, FileHeader, ProgramHeader};
        let data = std::fs::read(binary)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", binary.display()));
        let header = elf::FileHeader64::<object::Endianness>::parse(&*data)
            .unwrap_or_else(|e| panic!("`{}` is not a 64-bit ELF file: {e}", binary.display()));
        let endian = header.endian().expect("ELF endianness");
        let phdrs = header
            .program_headers(endian, &*data)
            .expect("ELF program headers");
        let interpreter = phdrs.iter().any(|p| p.p_type(endian) == elf::PT_INTERP);
        let mut needed = 0;
        for p in phdrs {
            if let Some(dynamic) = p.dynamic(endian, &*data).expect("ELF dynamic section") {
                needed += dynamic
                    .iter()
                    .filter(|d| d.tag32(endian) == Some(elf::DT_NEEDED))
                    .count();
            }
        }
        Linkage {
            interpreter,
            needed,
        }
    }

    fn is_static(&self) -> bool {
        !self.interpreter && self.needed == 0
    }
}

#[test]
fn a_dynamically_linked_executable_is_not_taken_for_static() {
    // The test binary itself is linked the ordinary way (glibc, dynamic loader).
    let me = std::env::current_exe().expect("current_exe");
    let linkage = Linkage::of(&me);
    assert!(!linkage.is_static(), "{linkage:?}");
    assert!(linkage.interpreter && linkage.needed > 0, "{linkage:?}");
}

#[test]
fn the_static_build_is_statically_linked_and_captures_a_chain() {
    let binary = build_static();
    let linkage = Linkage::of(&binary);
    assert!(linkage.is_static(), "the probe is not static: {linkage:?}");

    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let run = run_bin(binary.to_str().unwrap(), [server.addr()]);
    run.expect_code(0);
    assert!(run.stderr.starts_with("captured 4 certificates"), "{run}");
}
