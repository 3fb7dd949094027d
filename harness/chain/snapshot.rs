//! The redacted snapshot of a verdict (DESIGN.md "The snapshot"): what a chain
//! is and how it relates to the plugged bundle, without anything that changes
//! between runs or clusters.
//!
//! Naming rule: a certificate equal to a plugged file is named by that file.
//! The expected bundle's directory is written `<cluster>` (so `cluster1` and
//! `cluster2` snapshot identically: `<cluster>/ca-cert.pem`), another bundle's
//! `<other-cluster>`; the mesh's shared root keeps its plain name
//! (`root-cert.pem`). A certificate that is not plugged is `leaf` or
//! `#<position>`. Serials, dates, keys, signatures and fingerprints never
//! appear; a validity period is its duration.

use super::duration;
use super::relate::{IssuerLink, PluggedName, Related, RelatedCert, Role};
use super::verdict::{CheckId, Status, Verdict};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub length: usize,
    pub expected_length: usize,
    pub conformant: bool,
    pub certificates: Vec<SnapshotCert>,
    pub checks: Vec<SnapshotCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotCert {
    pub position: usize,
    pub role: Role,
    /// The plugged file this certificate is byte for byte, generically named.
    pub plugged: Option<String>,
    pub duplicate_of: Option<usize>,
    /// `self`, the issuer's name, or `unknown`.
    pub issued_by: String,
    pub spiffe_id: Option<String>,
    /// `RSA 2048`, `EC P-256`.
    pub key: String,
    pub ca: bool,
    pub pathlen: Option<u32>,
    /// `critical digitalSignature, keyEncipherment`.
    pub key_usage: Option<String>,
    pub extended_key_usage: Option<Vec<String>>,
    pub ttl: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotCheck {
    pub check: CheckId,
    pub status: Status,
    /// The check's notes (differences from istiod's profile that break nothing), with
    /// key identifiers redacted to `<hex>`; omitted when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Snapshot {
    pub fn of(v: &Verdict) -> Snapshot {
        let r = &v.related;
        Snapshot {
            length: v.length,
            expected_length: v.expected_length,
            conformant: v.conformant,
            certificates: r.certs.iter().map(|c| cert(r, c)).collect(),
            checks: v
                .checks
                .iter()
                .map(|c| SnapshotCheck {
                    check: c.id,
                    status: c.status,
                    notes: c
                        .details
                        .iter()
                        .filter_map(|d| d.strip_prefix("note: "))
                        .map(redact_hex)
                        .collect(),
                })
                .collect(),
        }
    }
}

fn cert(r: &Related, c: &RelatedCert) -> SnapshotCert {
    let info = &c.info;
    SnapshotCert {
        position: c.position,
        role: c.role,
        plugged: c.plugged.as_ref().map(generic),
        duplicate_of: c.duplicate_of,
        issued_by: match &c.issuer {
            IssuerLink::SelfSigned => "self".into(),
            IssuerLink::Served { position, .. } => name_of(&r.certs[position - 1]),
            IssuerLink::Plugged { name } => r
                .plugged
                .files
                .iter()
                .find(|p| &p.id.name == name)
                .map_or_else(
                    || name.clone(),
                    |p| format!("{} (not served)", generic(&p.id)),
                ),
            IssuerLink::Unknown => "unknown".into(),
        },
        spiffe_id: info.spiffe_ids.first().map(ToString::to_string),
        key: info.key.to_string(),
        ca: info.is_ca(),
        pathlen: info.basic_constraints.and_then(|b| b.pathlen),
        key_usage: info.key_usage.as_ref().map(|ku| {
            format!(
                "{}{}",
                if ku.critical { "critical " } else { "" },
                ku.usages.join(", ")
            )
        }),
        extended_key_usage: info.extended_key_usage.clone(),
        ttl: duration::format(info.lifetime()),
    }
}

fn name_of(c: &RelatedCert) -> String {
    c.plugged.as_ref().map_or_else(|| c.name.clone(), generic)
}

/// `cluster1/ca-cert.pem` -> `<cluster>/ca-cert.pem`; `root-cert.pem` stays.
fn generic(id: &PluggedName) -> String {
    match id.name.strip_prefix(&format!("{}/", id.bundle)) {
        Some(rest) if id.expected_bundle => format!("<cluster>/{rest}"),
        Some(rest) => format!("<other-cluster>/{rest}"),
        None => id.name.clone(),
    }
}

/// `7F:FE:4C:...` (a key identifier, a fingerprint) -> `<hex>`: four or more hex pairs
/// joined by colons (a time such as `12:30:00` is not one).
fn redact_hex(text: &str) -> String {
    let is_pair = |w: &str| w.len() == 2 && w.bytes().all(|b| b.is_ascii_hexdigit());
    text.split(' ')
        .map(|word| {
            let core = word.trim_end_matches([',', ';', ')']);
            let parts: Vec<&str> = core.split(':').collect();
            if parts.len() >= 4 && parts.iter().all(|p| is_pair(p)) {
                format!("<hex>{}", &word[core.len()..])
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_hex;

    #[test]
    fn key_identifiers_are_redacted_and_other_words_kept() {
        assert_eq!(
            redact_hex("subjectKeyIdentifier 7F:FE:4C:C9:34, istiod sets none"),
            "subjectKeyIdentifier <hex>, istiod sets none"
        );
        assert_eq!(
            redact_hex("writes cluster1/ca-cert.pem's subjectKeyIdentifier 69:D8:87:C7"),
            "writes cluster1/ca-cert.pem's subjectKeyIdentifier <hex>"
        );
        // Negative twins: one pair, a time, a word with a colon, non-hex pairs are kept.
        for kept in [
            "AB",
            "12:30:00 UTC",
            "note: CA:TRUE",
            "ns:foo",
            "GG:HH:II:JJ",
        ] {
            assert_eq!(redact_hex(kept), kept);
        }
    }
}
