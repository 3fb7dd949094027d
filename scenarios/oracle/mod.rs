//! The oracle tier (`cargo test --features oracle`): Istio's own code, built from the
//! Go module proxy into `target/oracle/istio-oracle-<release>` (`just oracle`), run on
//! the same inputs as meshtrust's model of istiod (`meshtrust::istio`). Where they
//! disagree the model is wrong; a missing oracle binary is a failure naming the build
//! command, never a skip.

mod agreement;
mod corpus;
mod leaf;
mod reload;

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust::istio::IstioVersion;
use serde::Deserialize;

/// One oracle build: the Istio release it runs and the binary.
pub struct Oracle {
    pub version: IstioVersion,
    pub binary: PathBuf,
}

/// The Istio releases the oracle is built for (`oracle/istio-<release>/`).
pub const RELEASES: [&str; 2] = ["1.30", "1.31"];

impl Oracle {
    /// The oracle for `release`, from `MESHTRUST_ORACLE_DIR` or `target/oracle/`.
    pub fn for_release(release: &str) -> Oracle {
        let dir = std::env::var_os("MESHTRUST_ORACLE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oracle"));
        let binary = dir.join(format!("istio-oracle-{release}"));
        assert!(
            binary.is_file(),
            "the oracle tier needs `{}`: build it with `just oracle` (Go, and the Go module proxy for istio.io/istio)",
            binary.display()
        );
        Oracle {
            version: release.parse().expect("a release name"),
            binary,
        }
    }

    /// Every release of [`RELEASES`], or those `MESHTRUST_ORACLE_RELEASES` lists
    /// (comma-separated), for a quicker local run.
    pub fn all() -> Vec<Oracle> {
        match std::env::var("MESHTRUST_ORACLE_RELEASES") {
            Ok(list) => list
                .split(',')
                .map(|r| Oracle::for_release(r.trim()))
                .collect(),
            Err(_) => RELEASES.iter().map(|r| Oracle::for_release(r)).collect(),
        }
    }

    fn run(&self, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Vec<u8> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.binary.display()));
        assert!(
            out.status.success(),
            "`{}` {:?} failed ({}):\n{}",
            self.binary.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `load DIR...`: istiod's start-up on each directory, in order.
    pub fn load(&self, dirs: &[PathBuf]) -> Vec<LoadResult> {
        let mut args: Vec<&std::ffi::OsStr> = vec!["load".as_ref()];
        args.extend(dirs.iter().map(|d| d.as_os_str()));
        let out = self.run(&args, &[]);
        if dirs.len() == 1 {
            vec![serde_json::from_slice(&out).expect("load JSON")]
        } else {
            serde_json::from_slice(&out).expect("load JSON array")
        }
    }

    /// `sign DIR... --csr F --id ID`: CreateCertificate and the agent's chain for each.
    pub fn sign(&self, dirs: &[PathBuf], csr: &Path, id: &str) -> Vec<Signed> {
        let mut args: Vec<&std::ffi::OsStr> = vec!["sign".as_ref()];
        args.extend(dirs.iter().map(|d| d.as_os_str()));
        args.extend([
            "--csr".as_ref(),
            csr.as_os_str(),
            "--id".as_ref(),
            id.as_ref(),
        ]);
        let out = self.run(&args, &[]);
        if dirs.len() == 1 {
            vec![serde_json::from_slice(&out).expect("sign JSON")]
        } else {
            serde_json::from_slice(&out).expect("sign JSON array")
        }
    }

    /// `reload DIR NEWDIR`, with ISTIO_MULTIROOT_MESH as given.
    pub fn reload(&self, dir: &Path, new: &Path, multi_root: bool) -> Reloaded {
        let out = self.run(
            &["reload".as_ref(), dir.as_os_str(), new.as_os_str()],
            &[(
                "ISTIO_MULTIROOT_MESH",
                if multi_root { "true" } else { "false" },
            )],
        );
        serde_json::from_slice(&out).expect("reload JSON")
    }
}

/// The oracle's `load` answer (oracle/glue load.go, `LoadResult`).
#[derive(Debug, Clone, Deserialize)]
pub struct LoadResult {
    pub loads: bool,
    #[serde(default)]
    pub mode: String,
    pub layout: String,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub log: Vec<String>,
    #[serde(default)]
    pub default_ttl_seconds: i64,
}

/// The oracle's `sign` answer (oracle/glue sign.go).
#[derive(Debug, Clone, Deserialize)]
pub struct Signed {
    pub load: LoadResult,
    pub sign: Option<SignResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SignResult {
    #[serde(default)]
    pub elements: Option<Vec<String>>,
    #[serde(default)]
    pub served_pem: String,
    #[serde(default)]
    pub trust_bundle_pem: String,
    #[serde(default)]
    pub error: String,
}

/// The oracle's `reload` answer (oracle/glue reload.go).
#[derive(Debug, Clone, Deserialize)]
pub struct Reloaded {
    pub load: LoadResult,
    pub reload: ReloadResult,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReloadResult {
    pub outcome: String,
    #[serde(default)]
    pub log: Vec<String>,
    #[serde(default)]
    pub error: String,
}
