//! The `cacerts` Secret, as `kubectl create secret generic cacerts -n istio-system
//! --from-file=ca-cert.pem --from-file=ca-key.pem --from-file=cert-chain.pem
//! --from-file=root-cert.pem` would make it.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::Serialize;

use super::PkiError;
use super::layout::CACERTS_FILES;

pub const SECRET_NAME: &str = "cacerts";
pub const SECRET_NAMESPACE: &str = "istio-system";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    api_version: &'static str,
    data: BTreeMap<&'static str, String>,
    kind: &'static str,
    metadata: Metadata,
}

#[derive(Serialize)]
struct Metadata {
    name: &'static str,
    namespace: &'static str,
}

/// The Secret manifest (YAML) for the cacerts directory `dir`. It contains the CA
/// key: write it only to a 0600 file or a pipe. Errors: a missing file of the four
/// (`PkiError::MissingFile`), an unreadable one.
pub fn cacerts_secret_yaml(dir: &Path) -> Result<String, PkiError> {
    secret_yaml(dir, true)
}

/// As [`cacerts_secret_yaml`], from those of the four files that `dir` has, as
/// `kubectl create secret generic cacerts --from-file=DIR` makes it from a directory: an
/// incomplete bundle gives an incomplete Secret, which istiod must refuse (the scenarios plug
/// such bundles in on purpose). Errors: none of the four is there.
pub fn present_cacerts_secret_yaml(dir: &Path) -> Result<String, PkiError> {
    secret_yaml(dir, false)
}

fn secret_yaml(dir: &Path, require_all: bool) -> Result<String, PkiError> {
    let mut data = BTreeMap::new();
    let mut first_missing = None;
    for name in CACERTS_FILES {
        let path = dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let missing = PkiError::MissingFile {
                    dir: dir.to_owned(),
                    file: name,
                    expected: "ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem",
                };
                if require_all {
                    return Err(missing);
                }
                first_missing.get_or_insert(missing);
                continue;
            }
            Err(e) => return Err(PkiError::io("read", &path)(e)),
        };
        data.insert(
            name,
            base64::engine::general_purpose::STANDARD.encode(bytes),
        );
    }
    if data.is_empty()
        && let Some(missing) = first_missing
    {
        return Err(missing);
    }
    let secret = Secret {
        api_version: "v1",
        data,
        kind: "Secret",
        metadata: Metadata {
            name: SECRET_NAME,
            namespace: SECRET_NAMESPACE,
        },
    };
    Ok(serde_norway::to_string(&secret).expect("a Secret of strings serialises"))
}
