//! The Makefile's layout on disk: `root-cert.pem` + `root-key.pem` at the top,
//! `<cluster>/{ca-cert,ca-key,cert-chain,root-cert}.pem` per cluster.
//!
//! Every file is written to a temporary name and renamed into place, and a
//! cluster directory is built aside and renamed whole: an interrupted run leaves
//! the previous state, never half of a new one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Ca, IntermediateSpec, PkiError, RootSpec, ca};

pub const ROOT_CERT: &str = "root-cert.pem";
pub const ROOT_KEY: &str = "root-key.pem";
pub const CA_CERT: &str = "ca-cert.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// The optional CRL file of the istiod layout (read by istiod 1.27+).
pub const CA_CRL: &str = "ca-crl.pem";
/// The four files of a cluster's cacerts directory, in the order `kubectl create secret` lists them.
pub const CACERTS_FILES: [&str; 4] = [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT];

const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;

/// Whether the root was made now or found on disk (make's "nothing to be done").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootOrigin {
    Generated,
    Reused,
}

pub fn root_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(ROOT_CERT), dir.join(ROOT_KEY))
}

/// The existing root in `dir`, if both of its files are there. One without the
/// other is an error: a lone key or certificate is never silently replaced.
pub fn existing_root(dir: &Path) -> Result<Option<Ca>, PkiError> {
    let (cert, key) = root_paths(dir);
    match (cert.exists(), key.exists()) {
        (true, true) => Ca::load(&cert, &key).map(Some),
        (false, false) => Ok(None),
        (true, false) => Err(PkiError::HalfPair {
            present: cert,
            missing: key,
        }),
        (false, true) => Err(PkiError::HalfPair {
            present: key,
            missing: cert,
        }),
    }
}

/// Writes a root's certificate and key into `dir` (created if needed).
pub fn write_root(dir: &Path, root: &Ca) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(PkiError::io("create directory", dir))?;
    let (cert, key) = root_paths(dir);
    write_atomic(&key, root.key_pem().as_bytes(), KEY_MODE)?;
    write_atomic(&cert, root.cert_pem().as_bytes(), CERT_MODE)
}

/// `make root-ca`: reuse the root in `dir`, or make one (always with `force`).
pub fn ensure_root(dir: &Path, spec: &RootSpec, force: bool) -> Result<(Ca, RootOrigin), PkiError> {
    if !force && let Some(root) = existing_root(dir)? {
        return Ok((root, RootOrigin::Reused));
    }
    check_writable(dir)?;
    let root = ca::generate_root(spec)?;
    write_root(dir, &root)?;
    Ok((root, RootOrigin::Generated))
}

/// Checks that a cluster name is a single, harmless path component.
pub fn validate_cluster_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadName {
            name: name.to_owned(),
        })
    }
}

/// Fails early (before any slow key generation) when a cluster directory would be clobbered.
pub fn check_cluster_free(dir: &Path, cluster: &str, force: bool) -> Result<(), PkiError> {
    validate_cluster_name(cluster)?;
    let path = dir.join(cluster);
    if path.exists() && !force {
        return Err(PkiError::Exists { path });
    }
    Ok(())
}

/// Writes `<dir>/<cluster>/` with the four cacerts files: `cert-chain.pem` is the
/// intermediate then the root, `root-cert.pem` a copy of the root.
pub fn write_cacerts(
    dir: &Path,
    spec: &IntermediateSpec,
    intermediate: &Ca,
    root: &Ca,
    force: bool,
) -> Result<PathBuf, PkiError> {
    check_cluster_free(dir, &spec.cluster, force)?;
    let target = dir.join(&spec.cluster);
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.", spec.cluster))
        .tempdir_in(dir)
        .map_err(PkiError::io("create a staging directory in", dir))?;
    let key_pem = intermediate.key_pem();
    let chain = format!("{}{}", intermediate.cert_pem(), root.cert_pem());
    let files: [(&str, &[u8], u32); 4] = [
        (CA_CERT, intermediate.cert_pem().as_bytes(), CERT_MODE),
        (CA_KEY, key_pem.as_bytes(), KEY_MODE),
        (CERT_CHAIN, chain.as_bytes(), CERT_MODE),
        (ROOT_CERT, root.cert_pem().as_bytes(), CERT_MODE),
    ];
    for (name, bytes, mode) in files {
        write_atomic(&staging.path().join(name), bytes, mode)?;
    }
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
        .map_err(PkiError::io("set permissions of", staging.path()))?;
    let staged = staging.keep();
    if target.exists() {
        // --force: move the old directory aside first so that a failure keeps one complete copy.
        let old = tempfile::Builder::new()
            .prefix(&format!(".{}.old.", spec.cluster))
            .tempdir_in(dir)
            .map_err(PkiError::io("create a staging directory in", dir))?;
        let aside = old.path().join(&spec.cluster);
        fs::rename(&target, &aside).map_err(PkiError::io("move aside", &target))?;
        fs::rename(&staged, &target).map_err(PkiError::io("create", &target))?;
        drop(old);
    } else if let Err(e) = fs::rename(&staged, &target) {
        let _ = fs::remove_dir_all(&staged);
        return Err(PkiError::io("create", &target)(e));
    }
    Ok(target)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".meshtrust.")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(parent)
        .map_err(PkiError::io("write into", parent))?;
    tmp.write_all(bytes).map_err(PkiError::io("write", path))?;
    tmp.as_file()
        .sync_all()
        .map_err(PkiError::io("write", path))?;
    tmp.persist(path).map_err(|e| PkiError::Io {
        action: "write",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Creates `dir` if needed and checks that files can be made in it, before any slow work.
pub fn check_writable(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(PkiError::io("create directory", dir))?;
    tempfile::Builder::new()
        .prefix(".meshtrust.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(PkiError::io("write into", dir))
}
