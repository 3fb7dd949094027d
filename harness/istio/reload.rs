//! What istiod does when the mounted `cacerts` files change (pilot/pkg/bootstrap
//! istio_ca.go `handleEvent`, ~100 ms after the last write): the new root bundle is
//! compared BY BYTES with the one it holds; a different one is refused unless
//! ISTIO_MULTIROOT_MESH is on and one bundle contains the other (1.30+: as sets of
//! certificates; before: as bytes); then only the key-cert bundle check runs
//! (security/pkg/pki/util keycertbundle.go `Verify`: rules 1 to 5 of [`super::load`],
//! no completeness, CA-flag or TTL rule).

use time::OffsetDateTime;

use super::gopem;
use super::load::{self, Rule};
use super::version::IstioVersion;
use crate::pki::Bundle;

/// istiod's line for the event.
pub const LOG_UPDATE: &str = "Update Istiod cacerts";
/// A different root without ISTIO_MULTIROOT_MESH.
pub const LOG_MULTI_ROOT_DISABLED: &str =
    "Multi root is disabled, updating new ROOT-CA not supported";
/// A different root, multi-root on, neither bundle containing the other.
pub const LOG_ROOT_NOT_SUPPORTED: &str = "Updating new ROOT-CA not supported";
/// A different root taken under ISTIO_MULTIROOT_MESH.
pub const LOG_ROOT_UPDATED: &str = "Updating new ROOT-CA";
/// The new files were taken.
pub const LOG_APPLIED: &str =
    "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly";
/// The prefix of a failed update.
pub const LOG_FAILED_PREFIX: &str = "Failed to update new Plug-in CA certs: ";

/// What the reload did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Reload {
    /// The new intermediate (and root, under multi-root) signs from now on.
    Applied,
    /// istiod kept its bundle; `log` says why.
    Ignored { log: &'static str },
    /// The new files failed Istio's key-cert bundle check; the old bundle stays.
    Failed { rule: Rule, reason: String },
}

impl Reload {
    /// istiod's last log line for this reload.
    pub fn log_line(&self) -> String {
        match self {
            Reload::Applied => LOG_APPLIED.to_owned(),
            Reload::Ignored { log } => (*log).to_owned(),
            Reload::Failed { reason, .. } => format!("{LOG_FAILED_PREFIX}{}", strip(reason)),
        }
    }
}

/// The key-cert bundle error without start-up's wrapping (a reload logs it bare).
fn strip(reason: &str) -> &str {
    reason
        .strip_prefix(load::CA_ERROR_PREFIX)
        .and_then(|r| r.strip_prefix("failed to create CA KeyCertBundle ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(reason)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn cert_set(pem: &[u8]) -> Vec<Vec<u8>> {
    let mut set: Vec<Vec<u8>> = gopem::blocks(pem)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.bytes)
        .collect();
    set.sort();
    set.dedup();
    set
}

/// Whether istiod takes `new` in place of `current` under ISTIO_MULTIROOT_MESH.
pub fn root_bundles_related(current: &[u8], new: &[u8], version: IstioVersion) -> bool {
    if version.root_bundle_subset_by_certificates() {
        let (a, b) = (cert_set(current), cert_set(new));
        if a.is_empty() || b.is_empty() {
            return false;
        }
        a.iter().all(|c| b.contains(c)) || b.iter().all(|c| a.contains(c))
    } else {
        contains(current, new) || contains(new, current)
    }
}

/// istiod holding `current_root_pem` sees the files of `new`.
pub fn reload(
    current_root_pem: &[u8],
    new: &Bundle,
    now: OffsetDateTime,
    version: IstioVersion,
    multi_root: bool,
) -> Reload {
    let new_root = new.root_cert.as_ref().map(|f| f.bytes.as_slice());
    let Some(new_root) = new_root else {
        return Reload::Failed {
            rule: Rule::CompleteBundle,
            reason: "failed reading root-cert.pem: no such file or directory".into(),
        };
    };
    if current_root_pem != new_root {
        if !multi_root {
            return Reload::Ignored {
                log: LOG_MULTI_ROOT_DISABLED,
            };
        }
        if !root_bundles_related(current_root_pem, new_root, version) {
            return Reload::Ignored {
                log: LOG_ROOT_NOT_SUPPORTED,
            };
        }
    }
    let evaluation = load::evaluate(new, now, version);
    let failure = evaluation.failures.iter().find(|f| {
        matches!(
            f.rule,
            Rule::CompleteBundle
                | Rule::ChainVerifies
                | Rule::KeyParses
                | Rule::KeyMatches
                | Rule::CrlSigned
        )
    });
    match failure {
        Some(f) => Reload::Failed {
            rule: f.rule,
            reason: f.reason.clone(),
        },
        None => Reload::Applied,
    }
}
