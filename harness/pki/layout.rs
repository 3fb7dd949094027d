//! The Makefile's layout on disk: `root-cert.pem` + `root-key.pem` at the top,
//! `<cluster>/{ca-cert,ca-key,cert-chain,root-cert}.pem` per cluster.
//!
//! Every file is written to a temporary name and renamed into place, and a
//! cluster directory is built aside and renamed whole: an interrupted run leaves
//! the previous state, never half of a new one.
//!
//! Directories that hold keys (the cluster directories, and the output directory when
//! meshtrust creates it) are 0700: the keys are 0600, and so is the list of them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::without_temp_name;
use super::{Ca, IntermediateSpec, PkiError, RootSpec, ca, encoding};

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
/// The mode of a directory that holds keys.
pub const KEY_DIR_MODE: u32 = 0o700;

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
    create_key_dir(dir)?;
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

/// Creates `dir` and any missing parents with mode 0700 (a directory that exists keeps its mode).
pub fn create_key_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(KEY_DIR_MODE)
        .create(dir)
        .map_err(PkiError::io("create directory", dir))
}

/// The cluster directories under `dir` (as `certs cacerts` lays them out) whose
/// `root-cert.pem` does not hold `root`: clusters made under `root` cannot talk to them.
/// A directory whose `root-cert.pem` cannot be read or parsed counts as different.
pub fn clusters_with_other_root(dir: &Path, root: &Ca) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join(ROOT_CERT).is_file())
        .filter(|p| {
            let path = p.join(ROOT_CERT);
            let holds_root = fs::read(&path)
                .ok()
                .and_then(|bytes| encoding::parse_certs(&bytes, &path).ok())
                .is_some_and(|roots| roots.iter().any(|r| r == root.cert_der()));
            !holds_root
        })
        .collect();
    stale.sort();
    stale
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
        .permissions(fs::Permissions::from_mode(KEY_DIR_MODE))
        .tempdir_in(dir)
        .map_err(PkiError::io("create a directory in", dir))?;
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
    // The directory holds ca-key.pem: 0700 whatever the umask.
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(KEY_DIR_MODE))
        .map_err(PkiError::io("set permissions of", &target))?;
    let staged = staging.keep();
    if target.exists() {
        // --force: move the old directory aside first so that a failure keeps one complete copy.
        let old = tempfile::Builder::new()
            .prefix(&format!(".{}.old.", spec.cluster))
            .tempdir_in(dir)
            .map_err(PkiError::io("create a directory in", dir))?;
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
/// Errors name `path`, never the temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let parent = check_output_file(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".meshtrust.")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(&parent)
        .map_err(PkiError::io("write", path))?;
    tmp.as_file_mut()
        .write_all(bytes)
        .map_err(PkiError::io("write", path))?;
    tmp.as_file()
        .sync_all()
        .map_err(PkiError::io("write", path))?;
    tmp.persist(path).map_err(|e| PkiError::Io {
        action: "write",
        path: path.to_owned(),
        source: without_temp_name(e.error),
    })?;
    Ok(())
}

/// Checks, before any slow work, that `path` can be written: its directory exists and
/// takes new files, and `path` is not a directory. Returns that directory.
pub fn check_output_file(path: &Path) -> Result<PathBuf, PkiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(PkiError::NoDirectory {
                path: path.to_owned(),
                dir: parent,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PkiError::NoDirectory {
                path: path.to_owned(),
                dir: parent,
            });
        }
        Err(e) => return Err(PkiError::io("write", path)(e)),
    }
    if path.is_dir() {
        return Err(PkiError::IsADirectory {
            path: path.to_owned(),
        });
    }
    tempfile::Builder::new()
        .prefix(".meshtrust.")
        .tempfile_in(&parent)
        .map(drop)
        .map_err(PkiError::io("write", path))?;
    Ok(parent)
}

/// Where a report given by path goes, decided before any slow work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportPath {
    /// A regular file (new, or replaced atomically): this path, or the file a symlink names
    /// (the link stays a link).
    File(PathBuf),
    /// Something that is there and is not a regular file: a device (`/dev/null`), a FIFO, a
    /// pipe (`/dev/stdout`, `/dev/fd/63` from `>(...)`). Written in place, never replaced:
    /// replacing `/dev/null` with a file would break the machine for everyone.
    InPlace(PathBuf),
}

/// Checks that a report can go to `path` (see [`ReportPath`]).
///
/// # Errors
/// A directory, a missing directory, a directory that takes no new files.
pub fn check_report_path(path: &Path) -> Result<ReportPath, PkiError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(PkiError::IsADirectory {
            path: path.to_owned(),
        }),
        Ok(meta) if !meta.is_file() => Ok(ReportPath::InPlace(path.to_owned())),
        // A regular file, maybe through symlinks: the file itself is replaced.
        Ok(_) => {
            let real = fs::canonicalize(path).map_err(PkiError::io("write", path))?;
            check_output_file(&real)?;
            Ok(ReportPath::File(real))
        }
        Err(_) => {
            check_output_file(path)?;
            Ok(ReportPath::File(path.to_owned()))
        }
    }
}

/// Writes a report where [`check_report_path`] says it goes; a file is mode `mode`.
///
/// # Errors
/// As [`check_report_path`], and the write itself.
pub fn write_report(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    match check_report_path(path)? {
        ReportPath::File(file) => write_atomic(&file, bytes, mode),
        ReportPath::InPlace(target) => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(PkiError::io("write", path))?;
            f.write_all(bytes)
                .and_then(|()| f.flush())
                .map_err(PkiError::io("write", path))
        }
    }
}

/// Creates the output directory `dir` if needed and checks that files can be made in it.
pub fn check_output_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.exists() && !dir.is_dir() {
        return Err(PkiError::Io {
            action: "write into",
            path: dir.to_owned(),
            source: std::io::Error::from_raw_os_error(20), // ENOTDIR
        });
    }
    fs::create_dir_all(dir).map_err(PkiError::io("create directory", dir))?;
    tempfile::Builder::new()
        .prefix(".meshtrust.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(PkiError::io("write into", dir))
}

/// Creates `dir` if needed (0700: it will hold keys) and checks that files can be made in
/// it, before any slow work.
pub fn check_writable(dir: &Path) -> Result<(), PkiError> {
    create_key_dir(dir)?;
    tempfile::Builder::new()
        .prefix(".meshtrust.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(PkiError::io("write into", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_goes_into_a_fifo_in_place_and_through_a_symlink_into_its_file() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO (what `/dev/stdout` or `>(...)` often is): written into, never replaced.
        let fifo = dir.path().join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_report(&fifo, b"{}\n", 0o644).unwrap();
        assert_eq!(reader.join().unwrap(), "{}\n");
        use std::os::unix::fs::FileTypeExt as _;
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        // A symlink to a file: the file gets the report, the link stays a link.
        let target = dir.path().join("target.json");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_report(&link, b"new", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // The twin: a plain path is a file, replaced whole.
        let plain = dir.path().join("plain.json");
        fs::write(&plain, "old, longer than the new").unwrap();
        write_report(&plain, b"new", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&plain).unwrap(), "new");
        assert_eq!(
            check_report_path(&plain).unwrap(),
            ReportPath::File(fs::canonicalize(&plain).unwrap())
        );
        assert_eq!(
            check_report_path(&fifo).unwrap(),
            ReportPath::InPlace(fifo.clone())
        );
        assert!(matches!(
            check_report_path(dir.path()),
            Err(PkiError::IsADirectory { .. })
        ));
    }

    #[test]
    fn a_temporary_file_name_never_reaches_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = tempfile::Builder::new()
            .prefix(".meshtrust.")
            .tempfile_in(tmp.path().join("missing"))
            .unwrap_err();
        assert!(err.to_string().contains(".meshtrust."), "{err}");
        let plain = without_temp_name(err);
        assert_eq!(plain.to_string(), "No such file or directory (os error 2)");
        assert_eq!(plain.kind(), std::io::ErrorKind::NotFound);
    }
}
