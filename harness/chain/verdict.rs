//! The verdict on a related chain: named checks, each passed, failed (with what
//! differs) or informational. A chain is conformant when no check fails.

use std::fmt;

use time::{Duration, OffsetDateTime};

use super::path::{self, PathOptions, Purpose, Rules, Step};
use super::relate::{IssuerLink, Related, RelatedCert};
use super::{CertInfo, SpiffeId, duration};

/// istiod's default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
/// istiod refuses workload TTLs over 90 days (`MAX_WORKLOAD_CERT_TTL`).
pub const MAX_WORKLOAD_TTL: Duration = Duration::days(90);
/// istiod backdates a workload certificate's NotBefore by two minutes against clock skew.
pub const ISTIOD_BACKDATE: Duration = Duration::minutes(2);
/// Slack around an expected TTL: clock rounding below, backdating plus a minute above.
const TTL_SLACK_BELOW: Duration = Duration::minutes(1);
const TTL_SLACK_ABOVE: Duration = Duration::minutes(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    RootMatchesPlugged,
    IntermediateMatchesPlugged,
    LeafVerifies,
    SpiffeId,
    LeafTtl,
    LeafNotCa,
    LeafProfile,
    ChainLength,
    SelfSignedFallback,
}

impl CheckId {
    pub fn name(self) -> &'static str {
        match self {
            CheckId::RootMatchesPlugged => "root-matches-plugged",
            CheckId::IntermediateMatchesPlugged => "intermediate-matches-plugged",
            CheckId::LeafVerifies => "leaf-verifies",
            CheckId::SpiffeId => "spiffe-id",
            CheckId::LeafTtl => "leaf-ttl",
            CheckId::LeafNotCa => "leaf-not-ca",
            CheckId::LeafProfile => "leaf-profile",
            CheckId::ChainLength => "chain-length",
            CheckId::SelfSignedFallback => "self-signed-fallback",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Reported, never a failure.
    Info,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub id: CheckId,
    pub status: Status,
    /// One line: what was found.
    pub summary: String,
    /// What differs, expected against got, and hints; one line each.
    pub details: Vec<String>,
}

/// What the chain is held to, and when. The clock is a field so that tests pin it.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub at: OffsetDateTime,
    /// Defaults to the trust domain of `expect_id`, else `cluster.local`.
    pub trust_domain: Option<String>,
    pub expect_id: Option<SpiffeId>,
    /// The TTL the workload asked for (istiod's `SECRET_TTL`, 24h by default).
    pub expect_ttl: Option<Duration>,
    /// Hold the leaf to istiod's exact workload profile: differences that do not break
    /// mTLS (an SKI, a subject, KU criticality, the AKI) fail `leaf-profile` instead of
    /// being notes. For proving that istiod itself issued the leaf.
    pub istiod_profile: bool,
}

impl Expectations {
    pub fn at(at: OffsetDateTime) -> Expectations {
        Expectations {
            at,
            trust_domain: None,
            expect_id: None,
            expect_ttl: None,
            istiod_profile: false,
        }
    }

    pub fn now() -> Expectations {
        Expectations::at(OffsetDateTime::now_utc())
    }

    pub fn trust_domain(&self) -> &str {
        self.trust_domain
            .as_deref()
            .or(self.expect_id.as_ref().map(|id| id.trust_domain.as_str()))
            .unwrap_or(DEFAULT_TRUST_DOMAIN)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The cacerts bundle's name (`cluster1`).
    pub bundle: String,
    pub conformant: bool,
    pub length: usize,
    pub expected_length: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub checks: Vec<Check>,
    #[serde(rename = "chain", serialize_with = "served_certs")]
    pub related: Related,
}

fn served_certs<S: serde::Serializer>(r: &Related, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&r.certs, s)
}

impl Verdict {
    pub fn conformant(&self) -> bool {
        self.conformant
    }

    pub fn check(&self, id: CheckId) -> &Check {
        self.checks
            .iter()
            .find(|c| c.id == id)
            .expect("every verdict runs every check")
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

/// Runs every check on `related`.
pub fn evaluate(related: Related, expect: &Expectations) -> Verdict {
    let checks = vec![
        root_matches_plugged(&related),
        intermediate_matches_plugged(&related),
        leaf_verifies(&related, expect),
        spiffe_id(&related, expect),
        leaf_ttl(&related, expect),
        leaf_not_ca(&related),
        leaf_profile(&related, expect),
        chain_length(&related, expect),
        self_signed_fallback(&related, expect),
    ];
    Verdict {
        bundle: related.plugged.bundle.clone(),
        conformant: checks.iter().all(|c| c.status != Status::Fail),
        length: related.certs.len(),
        expected_length: related.expected_length(),
        checked_at: expect.at,
        checks,
        related,
    }
}

fn pass(id: CheckId, summary: impl Into<String>) -> Check {
    Check {
        id,
        status: Status::Pass,
        summary: summary.into(),
        details: Vec::new(),
    }
}

fn fail(id: CheckId, summary: impl Into<String>, details: Vec<String>) -> Check {
    Check {
        id,
        status: Status::Fail,
        summary: summary.into(),
        details,
    }
}

fn root_matches_plugged(r: &Related) -> Check {
    let id = CheckId::RootMatchesPlugged;
    let root_name = root_file(r);
    let last = r.last();
    if r.certs.len() == 1 {
        return fail(
            id,
            "the chain holds only the leaf: no root is served",
            plugged_roots(r),
        );
    }
    if r.plugged.roots.iter().any(|p| p.is(&last.info.der)) {
        return pass(
            id,
            format!(
                "position {} is {} `{}`",
                last.position, last.name, last.info.subject
            ),
        );
    }
    let mut details = vec![format!("served:  {}", last.info.identify())];
    details.extend(plugged_roots(r));
    if let Some(other) = &last.plugged {
        details.push(format!(
            "the served root is `{}` of another bundle",
            other.name
        ));
    }
    let summary = if last.info.self_issued {
        format!(
            "position {} is a root other than the plugged {root_name}",
            last.position
        )
    } else {
        format!(
            "the chain ends in `{}`, which is not a root: {root_name} is not served",
            last.info.display_name()
        )
    };
    fail(id, summary, details)
}

fn intermediate_matches_plugged(r: &Related) -> Check {
    let id = CheckId::IntermediateMatchesPlugged;
    let expected = &r.plugged.ca_cert;
    let expected_name = ca_cert_name(r);
    let plugged_line = format!("plugged: {expected_name} {}", expected.identify());
    let Some(second) = r.certs.get(1) else {
        return fail(
            id,
            "the chain holds only the leaf: no intermediate is served",
            vec![plugged_line],
        );
    };
    if second.info.is(&expected.der) {
        return pass(
            id,
            format!("position 2 is {expected_name} `{}`", expected.subject),
        );
    }
    let served_line = format!("served:  {}", second.info.identify());
    if r.plugged.roots.iter().any(|p| p.is(&second.info.der)) {
        return fail(
            id,
            format!(
                "position 2 is {}: the intermediate is missing (istiod serves the leaf, then cert-chain.pem, then root-cert.pem)",
                second.name
            ),
            vec![served_line, plugged_line],
        );
    }
    let summary = match &second.plugged {
        Some(other) => format!("position 2 is {}, not {expected_name}", other.name),
        None if second.info.self_issued && r.certs.len() == 2 => {
            format!("position 2 is a root, not {expected_name}: the intermediate is missing")
        }
        None => format!("position 2 is not {expected_name}"),
    };
    fail(id, summary, vec![served_line, plugged_line])
}

fn leaf_verifies(r: &Related, expect: &Expectations) -> Check {
    let id = CheckId::LeafVerifies;
    // A path from a CA to the root proves nothing about a workload: position 1 must be
    // the end-entity certificate. A root served first, a plugged CA served first, or a
    // CA that issued another served certificate (a reversed chain) is not one; a leaf
    // that merely carries CA:TRUE is `leaf-not-ca`'s to fail.
    let first = &r.certs[0];
    let issues_a_served_cert = r.certs[1..]
        .iter()
        .any(|c| matches!(c.issuer, IssuerLink::Served { position: 1, .. }));
    let not_end_entity = if first.info.self_issued {
        Some("a self-issued (root) certificate".to_owned())
    } else if let Some(plugged) = &first.plugged {
        Some(format!("the plugged CA certificate {}", plugged.name))
    } else if first.info.is_ca() && issues_a_served_cert {
        Some("a CA certificate that issued a later certificate of the chain".to_owned())
    } else {
        None
    };
    if let Some(what) = not_end_entity {
        return fail(
            id,
            format!(
                "position 1 is not an end-entity certificate: `{}` is {what}",
                first.info.display_name()
            ),
            vec![format!(
                "a served chain starts with the workload's own certificate; got {}",
                r.certs
                    .iter()
                    .map(|c| format!("`{}`", c.info.display_name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        );
    }
    let untrusted: Vec<&[u8]> = r.certs[1..].iter().map(|c| c.info.der.as_ref()).collect();
    let roots: Vec<&[u8]> = r.plugged.roots.iter().map(|c| c.der.as_ref()).collect();
    let opts = PathOptions {
        at: expect.at,
        purpose: Purpose::ServerAuth,
        rules: Rules::Peer,
    };
    // Under mTLS every workload certificate is a client certificate too: the peer that
    // receives it checks clientAuth along the whole path (OpenSSL `-purpose sslclient`).
    let as_client = PathOptions {
        purpose: Purpose::ClientAuth,
        ..opts.clone()
    };
    let leaf_der = r.leaf().info.der.as_ref();
    let result = path::verify(leaf_der, &untrusted, &roots, &opts).and_then(|verified| {
        path::verify(leaf_der, &untrusted, &roots, &as_client).map(|_| verified)
    });
    match result {
        Ok(verified) => {
            let names: Vec<String> = verified
                .steps
                .iter()
                .map(|step| match step {
                    Step::Target => "leaf".to_owned(),
                    Step::Untrusted(i) => r.certs[i + 1].name.clone(),
                    Step::Root(i) => r
                        .plugged_name(&r.plugged.roots[*i].der)
                        .map_or_else(|| root_file(r).to_owned(), |p| p.name.clone()),
                })
                .collect();
            pass(
                id,
                format!(
                    "{} (served certificates untrusted, plugged {} trusted; as server and as client)",
                    names.join(" -> "),
                    root_file(r)
                ),
            )
        }
        Err(e) => {
            let mut details = Vec::new();
            if let path::PathError::NoIssuer { subject, issuer } = &e
                && subject == issuer
            {
                details.push(format!(
                        "`{subject}` is a self-signed root, but not the plugged one: only {} is trusted",
                        root_file(r)
                    ));
            }
            details.push(format!(
                "verified at {} against the plugged {}, with the served certificates as untrusted intermediates",
                rfc3339(expect.at),
                root_file(r)
            ));
            fail(id, e.to_string(), details)
        }
    }
}

fn spiffe_id(r: &Related, expect: &Expectations) -> Check {
    let id = CheckId::SpiffeId;
    let leaf = &r.leaf().info;
    let san = leaf.subject_alt_names.clone().unwrap_or_default();
    let uris: Vec<&String> = san
        .uri
        .iter()
        .filter(|u| SpiffeId::is_spiffe_uri(u))
        .collect();
    let [uri] = uris.as_slice() else {
        let summary = if uris.is_empty() {
            "the leaf has no SPIFFE URI SAN".to_owned()
        } else {
            format!(
                "the leaf has {} SPIFFE URI SANs; istiod issues exactly one",
                uris.len()
            )
        };
        let mut details: Vec<String> = uris.iter().map(|u| format!("URI SAN `{u}`")).collect();
        if uris.is_empty() {
            let list = |names: &[String]| {
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            details.push(format!(
                "its SANs: DNS {}; URI {}; IP {}",
                list(&san.dns),
                list(&san.uri),
                list(&san.ip)
            ));
        }
        return fail(id, summary, details);
    };
    let parsed = match SpiffeId::parse(uri) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                id,
                format!("the leaf's URI SAN is malformed: {e}"),
                Vec::new(),
            );
        }
    };
    let mut problems = Vec::new();
    if leaf.subject.is_empty() && !san.critical {
        problems.push(
            "the subject is empty but the SAN extension is not critical (RFC 5280 §4.2.1.6; istiod marks it critical)"
                .to_owned(),
        );
    }
    if let Some(want) = &expect.expect_id
        && *want != parsed
    {
        problems.push(format!("expected `{want}`, got `{parsed}`"));
    }
    let td = expect.trust_domain();
    if parsed.trust_domain != td {
        problems.push(format!(
            "trust domain `{}`, expected `{td}` (hint: pass `--trust-domain` if the mesh uses another)",
            parsed.trust_domain
        ));
    }
    if problems.is_empty() {
        pass(id, parsed.to_string())
    } else {
        fail(
            id,
            format!("`{parsed}` is not the expected identity"),
            problems,
        )
    }
}

fn leaf_ttl(r: &Related, expect: &Expectations) -> Check {
    let id = CheckId::LeafTtl;
    let leaf = &r.leaf().info;
    let lifetime = leaf.lifetime();
    let window = format!(
        "valid from {} until {}, lifetime {}",
        rfc3339(leaf.not_before),
        rfc3339(leaf.not_after),
        duration::format(lifetime)
    );
    let mut problems = Vec::new();
    if expect.at < leaf.not_before {
        problems.push(format!("not yet valid at {}", rfc3339(expect.at)));
    }
    if expect.at > leaf.not_after {
        problems.push(format!(
            "expired at {}, checked at {}",
            rfc3339(leaf.not_after),
            rfc3339(expect.at)
        ));
    }
    if lifetime > MAX_WORKLOAD_TTL + ISTIOD_BACKDATE {
        problems.push(format!(
            "the lifetime {} exceeds istiod's maximum workload TTL of {}",
            duration::format(lifetime),
            duration::format(MAX_WORKLOAD_TTL)
        ));
    }
    if let Some(ttl) = expect.expect_ttl
        && (lifetime < ttl - TTL_SLACK_BELOW || lifetime > ttl + TTL_SLACK_ABOVE)
    {
        let mut problem = format!(
            "the lifetime {} is not the expected TTL {} ({} with istiod's {} backdating)",
            duration::format(lifetime),
            duration::format(ttl),
            duration::format(ttl + ISTIOD_BACKDATE),
            duration::format(ISTIOD_BACKDATE),
        );
        if issuer_of(r, r.leaf()).is_some_and(|i| i.not_after == leaf.not_after) {
            problem.push_str(
                    "; NotAfter equals the issuer's: istiod 1.28+ clamps a leaf to its intermediate's expiry",
                );
        }
        problems.push(problem);
    }
    if problems.is_empty() {
        pass(id, window)
    } else {
        let summary = problems.remove(0);
        problems.push(window);
        fail(id, summary, problems)
    }
}

fn leaf_not_ca(r: &Related) -> Check {
    let id = CheckId::LeafNotCa;
    match r.leaf().info.basic_constraints {
        Some(bc) if bc.ca => fail(
            id,
            "the leaf is a CA (basicConstraints CA:TRUE): a workload certificate must not issue certificates",
            vec![match bc.pathlen {
                Some(n) => format!("pathlen: {n}"),
                None => "no pathlen constraint".to_owned(),
            }],
        ),
        Some(_) => pass(id, "CA:FALSE"),
        None => pass(id, "no basicConstraints (not a CA)"),
    }
}

/// What mTLS needs of a workload leaf fails; anything else that differs from the leaf
/// istiod issues (security/pkg/pki/util generate_cert.go, held to Istio's CA by the
/// oracle tier) is a note, failing only with [`Expectations::istiod_profile`]: leaves from
/// Istio's own `tools/certs` VM recipe, cert-manager istio-csr or an external CA carry an
/// SKI or a subject and work.
fn leaf_profile(r: &Related, expect: &Expectations) -> Check {
    let id = CheckId::LeafProfile;
    let leaf = &r.leaf().info;
    // Breaks mTLS: the peer refuses the certificate for the purpose it is used for.
    let mut breaks = Vec::new();
    // Differs from istiod's exact profile, and works.
    let mut notes = Vec::new();
    if !leaf.subject.is_empty() {
        notes.push(format!(
            "subject `{}`, istiod leaves it empty",
            leaf.subject
        ));
    }
    match &leaf.key_usage {
        Some(ku) if !ku.usages.contains(&"digitalSignature") => breaks.push(format!(
            "keyUsage {} lacks digitalSignature: no TLS handshake can be signed with this key",
            ku.usages.join(", ")
        )),
        Some(ku) if ku.critical && ku.usages == ["digitalSignature", "keyEncipherment"] => {}
        Some(ku) => notes.push(format!(
            "keyUsage {}{}, istiod writes critical digitalSignature, keyEncipherment",
            if ku.critical { "critical " } else { "" },
            ku.usages.join(", ")
        )),
        None => notes
            .push("no keyUsage, istiod writes critical digitalSignature, keyEncipherment".into()),
    }
    match &leaf.extended_key_usage {
        Some(eku) => {
            for need in ["serverAuth", "clientAuth"] {
                if !eku.iter().any(|u| u == need || u == "anyExtendedKeyUsage") {
                    breaks.push(format!(
                        "extendedKeyUsage {} lacks {need}: under mTLS every workload certificate is used as both server and client",
                        eku.join(", ")
                    ));
                }
            }
            if eku != &["serverAuth", "clientAuth"] && breaks.is_empty() {
                notes.push(format!(
                    "extendedKeyUsage {}, istiod writes serverAuth, clientAuth",
                    eku.join(", ")
                ));
            }
        }
        None => notes.push("no extendedKeyUsage, istiod writes serverAuth, clientAuth".into()),
    }
    match leaf.basic_constraints {
        // CA:TRUE is leaf-not-ca's to fail.
        Some(bc) if bc.critical || bc.ca => {}
        Some(_) => {
            notes.push("basicConstraints not critical, istiod marks CA:FALSE critical".into())
        }
        None => notes.push("no basicConstraints, istiod writes critical CA:FALSE".into()),
    }
    if let Some(ski) = &leaf.subject_key_id {
        notes.push(format!("subjectKeyIdentifier {ski}, istiod sets none"));
    }
    // The issuer actually found, else the plugged ca-cert.pem. Go copies the
    // issuer's SKI into the AKI, and writes no AKI when the issuer has no SKI.
    let (issuer_name, issuer) = match issuer_of(r, r.leaf()) {
        Some(info) => (issuer_name(r, r.leaf()), info),
        None => (ca_cert_name(r), &r.plugged.ca_cert),
    };
    if leaf.authority_key_id != issuer.subject_key_id {
        notes.push(format!(
            "authorityKeyIdentifier {}, istiod writes {}'s subjectKeyIdentifier {}",
            leaf.authority_key_id.as_deref().unwrap_or("absent"),
            issuer_name,
            issuer
                .subject_key_id
                .as_deref()
                .unwrap_or("(absent, so no AKI)")
        ));
    }
    let ways = |n: usize| {
        if n == 1 {
            "1 way".to_owned()
        } else {
            format!("{n} ways")
        }
    };
    if !breaks.is_empty() {
        let n = breaks.len();
        breaks.extend(notes.into_iter().map(|n| format!("note: {n}")));
        return fail(id, format!("the leaf breaks mTLS in {}", ways(n)), breaks);
    }
    if notes.is_empty() {
        return pass(
            id,
            format!(
                "istiod's workload profile: empty subject, critical KU digitalSignature+keyEncipherment, EKU serverAuth+clientAuth, critical CA:FALSE, no SKI, AKI = {issuer_name}'s SKI"
            ),
        );
    }
    let summary = format!(
        "the leaf differs from istiod's workload profile in {}",
        ways(notes.len())
    );
    if expect.istiod_profile {
        fail(id, format!("{summary} (--istiod-profile)"), notes)
    } else {
        let mut check = pass(id, format!("{summary}; nothing that breaks mTLS (notes)"));
        check.details = notes.into_iter().map(|n| format!("note: {n}")).collect();
        check
    }
}

/// How many certificates are served against how many istiod serves for the bundle. A
/// different count is a note (peers need only a path to the root, which `leaf-verifies`
/// checks: Istio's `tools/certs` VM chains serve 3 where istiod serves 4), failing only
/// with [`Expectations::istiod_profile`].
fn chain_length(r: &Related, expect: &Expectations) -> Check {
    let id = CheckId::ChainLength;
    let got = r.certs.len();
    let want = r.expected_length();
    let composition = format!(
        "istiod serves {want} for this bundle: the leaf, the {} of cert-chain.pem, then the {} of {}",
        count(r.plugged.cert_chain.len()),
        count(r.plugged.roots.len()),
        root_file(r)
    );
    let mut details: Vec<String> = r
        .duplicates()
        .iter()
        .map(|(pos, first)| {
            format!(
                "{} is served twice, at positions {first} and {pos}: cert-chain.pem already ends in the root and istiod appends {} again (istio/istio#39001)",
                r.certs[pos - 1].name,
                root_file(r)
            )
        })
        .collect();
    if got == want {
        let mut check = pass(id, format!("{}, as {composition}", count(got)));
        check.details = details;
        check
    } else if expect.istiod_profile {
        details.insert(0, composition);
        fail(
            id,
            format!("{}, expected {want} (--istiod-profile)", count(got)),
            details,
        )
    } else {
        details.insert(0, composition);
        let mut check = pass(
            id,
            format!(
                "{} where istiod serves {want}; nothing that breaks mTLS (note)",
                count(got)
            ),
        );
        check.details = details.into_iter().map(|d| format!("note: {d}")).collect();
        check
    }
}

fn self_signed_fallback(r: &Related, expect: &Expectations) -> Check {
    let id = CheckId::SelfSignedFallback;
    let last = r.last();
    // istiod's own root (ISTIO-FACTS §4): self-signed, `O=<trust domain>` and nothing else,
    // a CA whose keyUsage is keyCertSign only; whatever the trust domain is.
    let istiod_subject = |td: &str| last.info.subject == format!("O={td}");
    let org_only = last
        .info
        .subject
        .strip_prefix("O=")
        .is_some_and(|org| !org.is_empty() && !org.contains(", "));
    let cert_sign_only = last
        .info
        .key_usage
        .as_ref()
        .is_some_and(|ku| ku.usages == ["keyCertSign"]);
    let looks_like_istiod = last.info.self_signed
        && (istiod_subject(expect.trust_domain())
            || istiod_subject(DEFAULT_TRUST_DOMAIN)
            || (org_only && cert_sign_only && last.info.is_ca()));
    let plugged = r.plugged.roots.iter().any(|p| p.is(&last.info.der));
    if looks_like_istiod && !plugged {
        let mut details = vec![format!(
            "the chain ends in {}, istiod's own root (secret `istio-ca-secret`), not the plugged {}",
            last.info.identify(),
            root_file(r)
        )];
        details.extend(plugged_roots(r));
        details.push(
            "hint: istiod reads cacerts at start: create the `cacerts` secret in istio-system before installing Istio, or restart istiod; its log says \"Use self-signed certificate as the CA certificate\" when it falls back".into(),
        );
        fail(id, "istiod fell back to its self-signed root", details)
    } else {
        pass(id, "the chain does not end in istiod's self-signed root")
    }
}

/// The certificate that issued `cert`: served or plugged, when found.
fn issuer_of<'a>(r: &'a Related, cert: &RelatedCert) -> Option<&'a CertInfo> {
    match &cert.issuer {
        IssuerLink::Served { position, .. } => Some(&r.certs[position - 1].info),
        IssuerLink::Plugged { name } => r
            .plugged
            .files
            .iter()
            .find(|p| &p.id.name == name)
            .map(|p| &p.info),
        IssuerLink::SelfSigned | IssuerLink::Unknown => None,
    }
}

fn issuer_name(r: &Related, cert: &RelatedCert) -> String {
    match &cert.issuer {
        IssuerLink::Served { name, .. } | IssuerLink::Plugged { name } => name.clone(),
        IssuerLink::SelfSigned | IssuerLink::Unknown => ca_cert_name(r),
    }
}

fn ca_cert_name(r: &Related) -> String {
    r.plugged_name(&r.plugged.ca_cert.der)
        .map_or_else(|| "ca-cert.pem".to_owned(), |p| p.name.clone())
}

fn root_file(r: &Related) -> &'static str {
    r.plugged
        .roots
        .first()
        .and_then(|root| r.plugged_name(&root.der))
        .map_or("root-cert.pem", |p| p.file)
}

fn plugged_roots(r: &Related) -> Vec<String> {
    r.plugged
        .roots
        .iter()
        .map(|root| {
            let name = r
                .plugged_name(&root.der)
                .map_or("root-cert.pem", |p| p.name.as_str());
            format!("plugged: {name} {}", root.identify())
        })
        .collect()
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 certificate".into()
    } else {
        format!("{n} certificates")
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
