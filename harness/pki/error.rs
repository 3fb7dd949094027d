use std::path::PathBuf;

/// Everything that can go wrong making, reading or writing certificates.
///
/// Messages are lower-case, name the file in backticks and end with a hint where
/// the fix is known. A cause is only ever a `#[source]`, never part of the message:
/// `{:#}` (anyhow) and `meshtrust`'s error printer add it once.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a usable certificate file: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("`{}` is not a usable private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error(
        "`{}` does not match its key `{}` (hint: restore the pair, or regenerate both with `--force`)",
        cert.display(),
        key.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("`{}` already exists (hint: pass `--force` to regenerate it)", path.display())]
    Exists { path: PathBuf },
    #[error(
        "`{}` exists but `{}` does not (hint: restore the missing file, or regenerate the root with `--force`)",
        present.display(),
        missing.display()
    )]
    HalfPair { present: PathBuf, missing: PathBuf },
    #[error(
        "`{name}` is not a valid cluster name (hint: use letters, digits, `-`, `_` or `.`, as in `cluster1`)"
    )]
    BadName { name: String },
    #[error(
        "`{}` is not a cacerts bundle: none of {expected} is in it (hint: point at a directory made by `meshtrust certs cacerts NAME`)",
        dir.display()
    )]
    NotABundle {
        dir: PathBuf,
        expected: &'static str,
    },
    #[error(
        "`{}` is a file, not a cacerts directory (hint: pass the directory that holds the bundle, e.g. `{}`)",
        path.display(),
        parent.display()
    )]
    NotADirectory { path: PathBuf, parent: PathBuf },
    #[error("cluster `{name}` is given twice (hint: name each cluster once)")]
    DuplicateCluster { name: String },
    #[error(
        "cannot write `{}`: the directory `{}` does not exist (hint: create it first, or choose another path)",
        path.display(),
        dir.display()
    )]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot write `{}`: it is a directory (hint: name a file)", path.display())]
    IsADirectory { path: PathBuf },
    #[error("`{}` has no `{file}` (hint: a complete bundle has {expected})", dir.display())]
    MissingFile {
        dir: PathBuf,
        file: &'static str,
        expected: &'static str,
    },
    #[error("cannot generate {what}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
}

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| PkiError::Io {
            action,
            path,
            source: without_temp_name(source),
        }
    }
}

/// The OS error without the temporary file name `tempfile` appends to it (`... at path
/// "/dir/.meshtrust.faqMIy"`): that name means nothing to the user, who is told the real one.
pub(crate) fn without_temp_name(error: std::io::Error) -> std::io::Error {
    if error.raw_os_error().is_some() || error.get_ref().is_none() {
        return error;
    }
    let text = error.to_string();
    match text.find(" at path \"") {
        Some(end) => std::io::Error::new(error.kind(), text[..end].to_owned()),
        None => error,
    }
}
