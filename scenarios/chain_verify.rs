//! `chain::verify_chain` on the chains istiod serves, and on each way they go
//! wrong; every verdict's `leaf-verifies` is cross-checked with `openssl verify`.

use std::path::{Path, PathBuf};

use meshtrust::chain::{self, CheckId, Expectations, Status, Verdict, render};
use meshtrust::pki::{Bundle, KeyAlg};
use rcgen::DnType;
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::support::chains::{
    CaSpec, HTTPBIN, Leaf, Mesh, ca_usages, istiod_self_signed_root, now, openssl_verify, served_by,
};

/// A verdict and what produced it, so that OpenSSL can be asked the same question.
struct Case {
    verdict: Verdict,
    served: Vec<CertificateDer<'static>>,
    root_pem: PathBuf,
    at: OffsetDateTime,
}

fn verify(bundle: &Bundle, served: Vec<CertificateDer<'static>>, expect: Expectations) -> Case {
    let verdict = chain::verify_chain(&served, bundle, &[], &expect).expect("a usable chain");
    Case {
        verdict,
        served,
        root_pem: bundle.dir.join("root-cert.pem"),
        at: expect.at,
    }
}

impl Case {
    /// Exactly `failed` fail; the report is printed when they do not.
    fn fails_exactly(&self, failed: &[CheckId]) -> &Self {
        let got: Vec<CheckId> = self.verdict.failures().map(|c| c.id).collect();
        assert_eq!(got, failed, "\n{}", render::text(&self.verdict));
        assert_eq!(self.verdict.conformant(), failed.is_empty());
        self
    }

    fn says(&self, id: CheckId, text: &str) -> &Self {
        let check = self.verdict.check(id);
        let all = format!("{}\n{}", check.summary, check.details.join("\n"));
        assert!(
            all.contains(text),
            "{id} does not say {text:?}:\n{}",
            render::text(&self.verdict)
        );
        self
    }

    /// `openssl verify -CAfile root -untrusted served[1..] -attime T leaf` agrees with leaf-verifies.
    fn openssl_agrees(&self) -> &Self {
        let ours = self.verdict.check(CheckId::LeafVerifies).status == Status::Pass;
        let theirs = openssl_verify(&self.root_pem, &self.served, Some(self.at));
        assert_eq!(
            ours,
            theirs.ok,
            "leaf-verifies and openssl verify disagree\nopenssl: {}\nours:\n{}",
            theirs.output,
            render::text(&self.verdict)
        );
        self
    }
}

fn at_now() -> Expectations {
    Expectations::at(now())
}

#[test]
fn a_leaf_of_the_plugged_intermediate_served_as_istiod_serves_it_is_conformant() {
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    verify(&mesh.bundle("cluster1"), served, at_now())
        .fails_exactly(&[])
        .says(CheckId::RootMatchesPlugged, "position 4 is root-cert.pem")
        .says(
            CheckId::IntermediateMatchesPlugged,
            "position 2 is cluster1/ca-cert.pem",
        )
        .says(
            CheckId::LeafVerifies,
            "leaf -> cluster1/ca-cert.pem -> root-cert.pem",
        )
        .says(CheckId::ChainLength, "4 certificates")
        .says(CheckId::ChainLength, "served twice, at positions 3 and 4")
        .says(CheckId::SpiffeId, HTTPBIN)
        .openssl_agrees();
}

#[test]
fn a_chain_from_another_clusters_intermediate_fails_intermediate_matches_plugged() {
    let mesh = Mesh::new(&["cluster1", "cluster2"]);
    let served = mesh.served("cluster2", &mesh.leaf("cluster2", &Leaf::default()));
    let expect = at_now();
    let verdict = chain::verify_chain(
        &served,
        &mesh.bundle("cluster1"),
        &[mesh.bundle("cluster2")],
        &expect,
    )
    .expect("usable");
    let case = Case {
        verdict,
        served: served.clone(),
        root_pem: mesh.root_pem(),
        at: expect.at,
    };
    // The root is shared, so the leaf still verifies: only the intermediate tells them apart.
    case.fails_exactly(&[CheckId::IntermediateMatchesPlugged])
        .says(
            CheckId::IntermediateMatchesPlugged,
            "position 2 is cluster2/ca-cert.pem, not cluster1/ca-cert.pem",
        )
        .says(CheckId::IntermediateMatchesPlugged, "L=cluster2")
        .openssl_agrees();

    // Twin: the same chain against its own bundle.
    verify(&mesh.bundle("cluster2"), served, at_now())
        .fails_exactly(&[])
        .openssl_agrees();
}

#[test]
fn a_chain_under_a_foreign_root_fails_root_matches_plugged_and_leaf_verifies() {
    let mesh = Mesh::new(&["cluster1"]);
    let foreign = Mesh::new(&["cluster1"]);
    let served = foreign.served("cluster1", &foreign.leaf("cluster1", &Leaf::default()));
    verify(&mesh.bundle("cluster1"), served.clone(), at_now())
        .fails_exactly(&[
            CheckId::RootMatchesPlugged,
            CheckId::IntermediateMatchesPlugged,
            CheckId::LeafVerifies,
        ])
        .says(
            CheckId::RootMatchesPlugged,
            "a root other than the plugged root-cert.pem",
        )
        .says(
            CheckId::RootMatchesPlugged,
            &chain::CertInfo::from_der(&served[3]).unwrap().sha256,
        )
        .says(CheckId::LeafVerifies, "no issuer of `O=Istio, CN=Root CA`")
        .says(
            CheckId::LeafVerifies,
            "is a self-signed root, but not the plugged one",
        )
        .openssl_agrees();
    // Twin: under its own root it passes.
    verify(&foreign.bundle("cluster1"), served, at_now())
        .fails_exactly(&[])
        .openssl_agrees();
}

#[test]
fn a_chain_ending_in_istiods_self_signed_root_fails_with_self_signed_fallback() {
    let mesh = Mesh::new(&["cluster1"]);
    let istiod = istiod_self_signed_root();
    let leaf = Leaf::default().signed_by(&istiod);
    let served = vec![leaf, istiod.cert_der().clone()];
    verify(&mesh.bundle("cluster1"), served.clone(), at_now())
        .fails_exactly(&[
            CheckId::RootMatchesPlugged,
            CheckId::IntermediateMatchesPlugged,
            CheckId::LeafVerifies,
            CheckId::SelfSignedFallback,
        ])
        .says(
            CheckId::SelfSignedFallback,
            "istiod fell back to its self-signed root",
        )
        .says(
            CheckId::IntermediateMatchesPlugged,
            "the intermediate is missing",
        )
        .openssl_agrees();

    // Twin: plugging that very root (an odd but valid choice) is not a fallback.
    let dir = tempfile::tempdir().unwrap();
    plug(dir.path(), &istiod, &[], &istiod);
    let bundle = Bundle::read(dir.path()).unwrap();
    let case = verify(&bundle, served, at_now());
    assert_eq!(
        case.verdict.check(CheckId::SelfSignedFallback).status,
        Status::Pass
    );
    case.openssl_agrees();
}

#[test]
fn istios_own_self_signed_workload_chain_fails_against_a_meshtrust_bundle_with_self_signed_fallback()
 {
    let mesh = Mesh::new(&["cluster1"]);
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/istio/istio-issued/workload-chain.pem"
    ))
    .unwrap();
    let served = chain::parse_chain(&pem, Path::new("workload-chain.pem")).unwrap();
    // While that leaf was valid, so that only the relationship fails.
    let at = OffsetDateTime::parse(
        "2023-05-15T12:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let case = verify(&mesh.bundle("cluster1"), served, Expectations::at(at));
    case.fails_exactly(&[
        CheckId::RootMatchesPlugged,
        CheckId::IntermediateMatchesPlugged,
        CheckId::LeafVerifies,
        CheckId::SelfSignedFallback,
    ])
    .says(
        CheckId::SelfSignedFallback,
        "istiod fell back to its self-signed root",
    )
    .says(CheckId::LeafTtl, "lifetime 24h2m")
    .says(CheckId::LeafProfile, "istiod's workload profile")
    .says(CheckId::ChainLength, "2 certificates where istiod serves 4")
    .openssl_agrees();
}

#[test]
fn an_intermediate_with_pathlen_0_and_another_ca_below_it_fails_leaf_verifies() {
    let mesh = Mesh::new(&["cluster1"]);
    let sub = CaSpec {
        subject: &[(DnType::CommonName, "Sub CA")],
        pathlen: None,
        key_usages: ca_usages(),
        issuer: Some(mesh.intermediate("cluster1")),
        key: KeyAlg::P256,
    }
    .build();
    let leaf = Leaf::default().signed_by(&sub);
    let mut served = mesh.served("cluster1", &leaf);
    served.insert(1, sub.cert_der().clone());
    let case = verify(&mesh.bundle("cluster1"), served.clone(), at_now());
    case.fails_exactly(&[CheckId::IntermediateMatchesPlugged, CheckId::LeafVerifies])
        .says(
            CheckId::LeafVerifies,
            "has pathlen:0 but 1 CA certificate(s) sit below it",
        );
    case.openssl_agrees();
    let openssl = openssl_verify(&case.root_pem, &served, None);
    assert!(openssl.output.contains("error 25"), "{}", openssl.output);
}

#[test]
fn a_root_with_pathlen_0_above_the_intermediate_fails_leaf_verifies_as_openssl_does() {
    // webpki ignores a trust anchor's pathlen; OpenSSL and Go do not, nor do we.
    let root = |pathlen| CaSpec {
        subject: &[
            (DnType::OrganizationName, "Istio"),
            (DnType::CommonName, "Root CA"),
        ],
        pathlen: Some(pathlen),
        key_usages: ca_usages(),
        issuer: None,
        key: KeyAlg::P256,
    };
    let mesh = Mesh::under_root(root(0).build(), &["cluster1"], KeyAlg::P256);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let case = verify(&mesh.bundle("cluster1"), served.clone(), at_now());
    case.fails_exactly(&[CheckId::LeafVerifies])
        .says(
            CheckId::LeafVerifies,
            "`O=Istio, CN=Root CA` has pathlen:0 but 1 CA certificate(s) sit below it",
        )
        .openssl_agrees();
    let openssl = openssl_verify(&case.root_pem, &served, None);
    assert!(openssl.output.contains("error 25"), "{}", openssl.output);

    // Twin: pathlen:1 leaves room for the intermediate.
    let mesh = Mesh::under_root(root(1).build(), &["cluster1"], KeyAlg::P256);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    verify(&mesh.bundle("cluster1"), served, at_now())
        .fails_exactly(&[])
        .openssl_agrees();
}

#[test]
fn an_expired_leaf_fails_leaf_ttl_and_leaf_verifies_at_a_fixed_clock() {
    let mesh = Mesh::new(&["cluster1"]);
    let leaf = mesh.leaf("cluster1", &Leaf::default());
    let served = mesh.served("cluster1", &leaf);
    let expiry = chain::CertInfo::from_der(&leaf).unwrap().not_after;
    verify(
        &mesh.bundle("cluster1"),
        served.clone(),
        Expectations::at(expiry + Duration::hours(1)),
    )
    .fails_exactly(&[CheckId::LeafVerifies, CheckId::LeafTtl])
    .says(CheckId::LeafTtl, "expired at")
    .says(CheckId::LeafVerifies, "expired at")
    .openssl_agrees();
    // Twin: one second before expiry.
    verify(
        &mesh.bundle("cluster1"),
        served,
        Expectations::at(expiry - Duration::seconds(1)),
    )
    .fails_exactly(&[])
    .openssl_agrees();
}

#[test]
fn a_leaf_with_another_identity_fails_spiffe_id() {
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let expecting = |id: &str| Expectations {
        expect_id: Some(chain::SpiffeId::parse(id).unwrap()),
        ..at_now()
    };
    verify(&mesh.bundle("cluster1"), served.clone(), expecting("spiffe://cluster.local/ns/foo/sa/sleep"))
        .fails_exactly(&[CheckId::SpiffeId])
        .says(
            CheckId::SpiffeId,
            "expected `spiffe://cluster.local/ns/foo/sa/sleep`, got `spiffe://cluster.local/ns/foo/sa/httpbin`",
        )
        .openssl_agrees();
    // Twin: the right identity.
    verify(&mesh.bundle("cluster1"), served, expecting(HTTPBIN))
        .fails_exactly(&[])
        .openssl_agrees();
}

#[test]
fn a_leaf_of_another_trust_domain_fails_spiffe_id_unless_that_domain_is_expected() {
    let mesh = Mesh::new(&["cluster1"]);
    let leaf = Leaf {
        spiffe: "spiffe://east.example/ns/foo/sa/httpbin".into(),
        ..Leaf::default()
    };
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &leaf));
    verify(&mesh.bundle("cluster1"), served.clone(), at_now())
        .fails_exactly(&[CheckId::SpiffeId])
        .says(
            CheckId::SpiffeId,
            "trust domain `east.example`, expected `cluster.local`",
        );
    let expect = Expectations {
        trust_domain: Some("east.example".into()),
        ..at_now()
    };
    verify(&mesh.bundle("cluster1"), served, expect).fails_exactly(&[]);
}

#[test]
fn a_chain_missing_the_intermediate_fails_intermediate_matches_plugged_and_leaf_verifies() {
    let mesh = Mesh::new(&["cluster1"]);
    let leaf = mesh.leaf("cluster1", &Leaf::default());
    let served = vec![leaf.clone(), mesh.root.cert_der().clone()];
    verify(&mesh.bundle("cluster1"), served, at_now())
        .fails_exactly(&[CheckId::IntermediateMatchesPlugged, CheckId::LeafVerifies])
        .says(
            CheckId::IntermediateMatchesPlugged,
            "position 2 is root-cert.pem: the intermediate is missing",
        )
        .says(CheckId::ChainLength, "2 certificates where istiod serves 4")
        .openssl_agrees();
    // Twin: the intermediate back in place (the 3 certificates of Istio's samples layout).
    let served = vec![
        leaf,
        mesh.intermediate("cluster1").cert_der().clone(),
        mesh.root.cert_der().clone(),
    ];
    verify(&mesh.bundle("cluster1"), served.clone(), at_now())
        .fails_exactly(&[])
        .says(
            CheckId::ChainLength,
            "3 certificates where istiod serves 4; nothing that breaks mTLS (note)",
        )
        .says(
            CheckId::ChainLength,
            "note: istiod serves 4 for this bundle",
        )
        .openssl_agrees();
    // --istiod-profile: proving istiod served it, one certificate short is a failure.
    let strict = Expectations {
        istiod_profile: true,
        ..at_now()
    };
    verify(&mesh.bundle("cluster1"), served, strict)
        .fails_exactly(&[CheckId::ChainLength])
        .says(
            CheckId::ChainLength,
            "3 certificates, expected 4 (--istiod-profile)",
        );
}

#[test]
fn a_ca_leaf_fails_leaf_not_ca_though_openssl_verifies_it() {
    let mesh = Mesh::new(&["cluster1"]);
    let leaf = Leaf {
        ca: true,
        ..Leaf::default()
    };
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &leaf));
    // The SKI rcgen gives a CA leaf only differs from istiod's profile: a note.
    verify(&mesh.bundle("cluster1"), served.clone(), at_now())
        .fails_exactly(&[CheckId::LeafNotCa])
        .says(
            CheckId::LeafNotCa,
            "the leaf is a CA (basicConstraints CA:TRUE): a workload certificate must not issue certificates",
        )
        .says(CheckId::LeafNotCa, "no pathlen constraint")
        .says(CheckId::LeafProfile, "note: subjectKeyIdentifier")
        .says(CheckId::LeafProfile, "nothing that breaks mTLS")
        .openssl_agrees();
    // CA:TRUE is leaf-not-ca's to fail: leaf-profile does not note the basicConstraints too.
    let case = verify(&mesh.bundle("cluster1"), served.clone(), at_now());
    let profile = case.verdict.check(CheckId::LeafProfile);
    assert!(
        profile
            .details
            .iter()
            .all(|d| !d.contains("basicConstraints")),
        "{:?}",
        profile.details
    );
    // Twin: the same leaf as CA:FALSE passes leaf-not-ca.
    let served_ee = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    verify(&mesh.bundle("cluster1"), served_ee, at_now())
        .fails_exactly(&[])
        .says(CheckId::LeafNotCa, "CA:FALSE");
    // --istiod-profile: the note fails too.
    let strict = Expectations {
        istiod_profile: true,
        ..at_now()
    };
    verify(&mesh.bundle("cluster1"), served, strict)
        .fails_exactly(&[CheckId::LeafNotCa, CheckId::LeafProfile])
        .says(CheckId::LeafProfile, "(--istiod-profile)");
}

#[test]
fn leaf_profile_fails_only_what_breaks_mtls() {
    use crate::support::pki as tpki;
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    let ca = tpki::intermediate("cluster1", &root);
    let dir = tpki::makefile_layout(tmp.path(), "cluster1", &ca, &root);
    let bundle = Bundle::read(&dir).unwrap();
    let der = |pem_text: &str| CertificateDer::from(pem::parse(pem_text).unwrap().into_contents());
    let leaf_with = |edit: &dyn Fn(&mut rcgen::CertificateParams)| {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.subject_alt_names = vec![rcgen::SanType::URI(HTTPBIN.try_into().unwrap())];
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        edit(&mut p);
        let leaf = tpki::signed(p, &ca);
        vec![der(&leaf.pem), der(&ca.pem), der(&root.pem), der(&root.pem)]
    };
    let profile = |served| {
        verify(&bundle, served, at_now())
            .verdict
            .check(CheckId::LeafProfile)
            .clone()
    };
    // Breaks: EKU without clientAuth, KU without digitalSignature.
    for (what, edit, text) in [
        (
            "no clientAuth",
            &(|p: &mut rcgen::CertificateParams| {
                p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]
            }) as &dyn Fn(&mut rcgen::CertificateParams),
            "lacks clientAuth",
        ),
        (
            "no serverAuth",
            &(|p: &mut rcgen::CertificateParams| {
                p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]
            }),
            "lacks serverAuth",
        ),
        (
            "no digitalSignature",
            &(|p: &mut rcgen::CertificateParams| {
                p.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment]
            }),
            "lacks digitalSignature",
        ),
    ] {
        let check = profile(leaf_with(edit));
        assert_eq!(check.status, Status::Fail, "{what}: {}", check.summary);
        assert!(
            check.details.iter().any(|d| d.contains(text)),
            "{what}: {:?}",
            check.details
        );
    }
    // Notes only: a subject, no EKU at all (any purpose), a non-critical KU.
    for (what, edit, text) in [
        (
            "a subject",
            &(|p: &mut rcgen::CertificateParams| {
                p.distinguished_name
                    .push(rcgen::DnType::CommonName, "httpbin")
            }) as &dyn Fn(&mut rcgen::CertificateParams),
            "note: subject `CN=httpbin`",
        ),
        (
            "no EKU",
            &(|p: &mut rcgen::CertificateParams| p.extended_key_usages = Vec::new()),
            "note: no extendedKeyUsage",
        ),
    ] {
        let check = profile(leaf_with(edit));
        assert_eq!(check.status, Status::Pass, "{what}: {}", check.summary);
        assert!(
            check.details.iter().any(|d| d.contains(text)),
            "{what}: {:?}",
            check.details
        );
    }
}

#[test]
fn an_expected_ttl_pins_the_leaf_lifetime_allowing_istiods_backdating() {
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let expecting = |ttl| Expectations {
        expect_ttl: Some(ttl),
        ..at_now()
    };
    verify(
        &mesh.bundle("cluster1"),
        served.clone(),
        expecting(Duration::hours(24)),
    )
    .fails_exactly(&[]);
    verify(
        &mesh.bundle("cluster1"),
        served,
        expecting(Duration::hours(1)),
    )
    .fails_exactly(&[CheckId::LeafTtl])
    .says(
        CheckId::LeafTtl,
        "the lifetime 24h2m is not the expected TTL 1h (1h2m with istiod's 2m backdating)",
    );
}

#[test]
fn a_leaf_over_istiods_90_day_maximum_fails_leaf_ttl() {
    let mesh = Mesh::new(&["cluster1"]);
    let long = Leaf {
        ttl: Duration::days(91),
        ..Leaf::default()
    };
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &long));
    verify(&mesh.bundle("cluster1"), served, at_now())
        .fails_exactly(&[CheckId::LeafTtl])
        .says(
            CheckId::LeafTtl,
            "exceeds istiod's maximum workload TTL of 90d",
        );
    let max = Leaf {
        ttl: Duration::days(90),
        ..Leaf::default()
    };
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &max));
    verify(&mesh.bundle("cluster1"), served, at_now()).fails_exactly(&[]);
}

#[test]
fn istios_sample_bundle_serves_three_certificates_and_they_relate_by_name() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/istio/istio-samples-certs"
    ));
    let bundle = Bundle::read(dir).unwrap();
    let ca = meshtrust::pki::Ca::load(&dir.join("ca-cert.pem"), &dir.join("ca-key.pem"))
        .expect("the sample key is PKCS#1 and matches");
    // The sample intermediate has no SKI, so Go writes no AKI into what it signs.
    let leaf = Leaf {
        authority_key_id: false,
        ..Leaf::default()
    }
    .signed_by(&ca);
    let served = crate::support::chains::served_by(&bundle, &leaf);
    let related = chain::relate(&served, &bundle, &[]).unwrap();
    let names: Vec<&str> = related.certs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["leaf", "istio-samples-certs/ca-cert.pem", "root-cert.pem"]
    );
    let roles: Vec<chain::Role> = related.certs.iter().map(|c| c.role).collect();
    assert_eq!(
        roles,
        [
            chain::Role::Leaf,
            chain::Role::Intermediate,
            chain::Role::Root
        ]
    );
    assert_eq!(
        related.certs[0].issuer,
        chain::IssuerLink::Served {
            position: 2,
            name: "istio-samples-certs/ca-cert.pem".into()
        }
    );
    assert_eq!(related.certs[2].issuer, chain::IssuerLink::SelfSigned);
    assert_eq!(related.expected_length(), 3);
    assert!(related.duplicates().is_empty());
    verify(&bundle, served.clone(), at_now())
        .fails_exactly(&[])
        .says(
            CheckId::ChainLength,
            "3 certificates, as istiod serves 3 for this bundle",
        )
        .openssl_agrees();
    // Twin: the Makefile layout's 4 certificates are one too many for this bundle.
    let mut four = served;
    four.push(four[2].clone());
    verify(&bundle, four.clone(), at_now())
        .fails_exactly(&[])
        .says(CheckId::ChainLength, "4 certificates where istiod serves 3");
    let strict = Expectations {
        istiod_profile: true,
        ..at_now()
    };
    verify(&bundle, four, strict)
        .fails_exactly(&[CheckId::ChainLength])
        .says(
            CheckId::ChainLength,
            "4 certificates, expected 3 (--istiod-profile)",
        );
}

#[test]
fn the_duplicated_root_is_detected_and_linked_to_itself() {
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let related = chain::relate(&served, &mesh.bundle("cluster1"), &[]).unwrap();
    assert_eq!(related.duplicates(), [(4, 3)]);
    let names: Vec<&str> = related.certs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "leaf",
            "cluster1/ca-cert.pem",
            "root-cert.pem",
            "root-cert.pem"
        ]
    );
    assert_eq!(
        related.certs[1].issuer,
        chain::IssuerLink::Served {
            position: 3,
            name: "root-cert.pem".into()
        }
    );
}

/// Writes an istiod-layout bundle: `ca`, `chain` (cert-chain.pem = ca + chain), `root`.
fn plug(
    dir: &Path,
    ca: &meshtrust::pki::Ca,
    chain: &[CertificateDer<'static>],
    root: &meshtrust::pki::Ca,
) {
    let mut cert_chain = vec![ca.cert_der().clone()];
    cert_chain.extend_from_slice(chain);
    crate::support::chains::write_pem(dir, "ca-cert.pem", &[ca.cert_der().clone()]);
    crate::support::chains::write_pem(dir, "cert-chain.pem", &cert_chain);
    crate::support::chains::write_pem(dir, "root-cert.pem", &[root.cert_der().clone()]);
    std::fs::write(dir.join("ca-key.pem"), ca.key_pem()).unwrap();
}

#[test]
fn leaf_verifies_fails_when_position_one_is_the_plugged_root_or_a_reversed_chain() {
    let mesh = Mesh::new(&["cluster1"]);
    let bundle = mesh.bundle("cluster1");
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    // The plugged root alone: it "verifies" to itself, but it is no workload's certificate.
    let root_alone = verify(&bundle, vec![served[2].clone()], at_now());
    root_alone.says(
        CheckId::LeafVerifies,
        "position 1 is not an end-entity certificate: `O=Istio, CN=Root CA` is a self-issued (root) certificate",
    );
    assert_eq!(
        root_alone.verdict.check(CheckId::LeafVerifies).status,
        Status::Fail
    );
    // Reversed: root, root, intermediate, leaf.
    let mut reversed = served.clone();
    reversed.reverse();
    let case = verify(&bundle, reversed, at_now());
    assert_eq!(
        case.verdict.check(CheckId::LeafVerifies).status,
        Status::Fail
    );
    // The plugged intermediate first, then the rest.
    let intermediate_first = vec![served[1].clone(), served[2].clone()];
    verify(&bundle, intermediate_first, at_now()).says(
        CheckId::LeafVerifies,
        "is the plugged CA certificate cluster1/ca-cert.pem",
    );
    // Twin: the chain in served order passes leaf-verifies.
    let case = verify(&bundle, served, at_now());
    assert_eq!(
        case.verdict.check(CheckId::LeafVerifies).status,
        Status::Pass
    );
}

#[test]
fn a_private_key_inside_a_chain_file_is_refused_naming_where_and_never_echoed() {
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let pems: Vec<String> = served.iter().map(meshtrust::pki::to_pem).collect();
    let key = KeyAlg::P256.generate().unwrap().serialize_pem();
    let body = key.lines().nth(1).unwrap().to_owned();
    for (at, text) in [
        (
            "after certificate 1",
            format!("{}{key}{}", pems[0], pems[1..].concat()),
        ),
        ("first", format!("{key}{}", pems.concat())),
    ] {
        let err = chain::parse_chain(text.as_bytes(), Path::new("chain.pem"))
            .expect_err(at)
            .to_string();
        assert!(
            err.contains("chain.pem") && err.contains("private key"),
            "{at}: {err}"
        );
        assert!(
            err.contains("PEM block"),
            "{at}: the message says where: {err}"
        );
        assert!(
            !err.contains(&body),
            "{at}: the key leaked into the message"
        );
    }
    // Twin: the same certificates without the key parse.
    assert_eq!(
        chain::parse_chain(pems.concat().as_bytes(), Path::new("chain.pem"))
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn leaf_verifies_checks_the_client_side_of_mtls_too() {
    use crate::support::pki as tpki;
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    for (name, eku, client_ok) in [
        (
            "server-only",
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            false,
        ),
        ("none", vec![], true),
    ] {
        let mut p = tpki::intermediate_params("cluster1");
        p.extended_key_usages = eku;
        let ca = tpki::signed(p, &root);
        let dir = tpki::makefile_layout(tmp.path(), name, &ca, &root);
        let bundle = Bundle::read(&dir).unwrap();
        let mut lp = rcgen::CertificateParams::default();
        lp.distinguished_name = rcgen::DistinguishedName::new();
        lp.subject_alt_names = vec![rcgen::SanType::URI(HTTPBIN.try_into().unwrap())];
        lp.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf = tpki::signed(lp, &ca);
        let der =
            |pem_text: &str| CertificateDer::from(pem::parse(pem_text).unwrap().into_contents());
        let served = vec![der(&leaf.pem), der(&ca.pem), der(&root.pem), der(&root.pem)];
        let case = verify(&bundle, served, at_now());
        let check = case.verdict.check(CheckId::LeafVerifies);
        if client_ok {
            assert_eq!(check.status, Status::Pass, "{name}: {}", check.summary);
        } else {
            assert_eq!(check.status, Status::Fail, "{name}");
            assert!(
                check.summary.contains("without clientAuth"),
                "{}",
                check.summary
            );
        }
    }
}

#[test]
fn istiods_self_signed_root_is_recognised_for_any_trust_domain() {
    use rcgen::KeyUsagePurpose as Ku;
    let mesh = Mesh::new(&["cluster1"]);
    let root_for = |org: &'static str, usages: Vec<Ku>| {
        crate::support::chains::CaSpec {
            subject: &[(DnType::OrganizationName, org)],
            pathlen: None,
            key_usages: usages,
            issuer: None,
            key: KeyAlg::P256,
        }
        .build()
    };
    let fallback = |ca: &meshtrust::pki::Ca| {
        let served = vec![Leaf::default().signed_by(ca), ca.cert_der().clone()];
        verify(&mesh.bundle("cluster1"), served, at_now())
            .verdict
            .check(CheckId::SelfSignedFallback)
            .status
    };
    // A trust domain meshtrust was not told about: istiod's root shape gives it away.
    assert_eq!(
        fallback(&root_for("mesh.example.org", vec![Ku::KeyCertSign])),
        Status::Fail
    );
    // Twins: another CA shape with the same subject, or another subject, is not istiod's.
    assert_eq!(
        fallback(&root_for(
            "mesh.example.org",
            vec![Ku::KeyCertSign, Ku::DigitalSignature]
        )),
        Status::Pass
    );
    let other = crate::support::chains::CaSpec {
        subject: &[
            (DnType::OrganizationName, "Acme"),
            (DnType::CommonName, "Root"),
        ],
        pathlen: None,
        key_usages: vec![Ku::KeyCertSign],
        issuer: None,
        key: KeyAlg::P256,
    }
    .build();
    assert_eq!(fallback(&other), Status::Pass);
}

/// A change to a leaf's parameters.
type Edit<'a> = dyn Fn(&mut rcgen::CertificateParams) + 'a;

/// A leaf as istiod issues it (empty subject, critical SAN, critical KU digitalSignature +
/// keyEncipherment, EKU serverAuth + clientAuth, critical CA:FALSE, AKI, no SKI), then `edit`ed,
/// verified as served under a Makefile-layout bundle.
fn verdict_of_leaf(edit: &Edit<'_>, expect: Expectations) -> Verdict {
    use crate::support::pki as tpki;
    let tmp = tempfile::tempdir().unwrap();
    let root = tpki::root();
    let ca = tpki::intermediate("cluster1", &root);
    let dir = tpki::makefile_layout(tmp.path(), "cluster1", &ca, &root);
    let bundle = Bundle::read(&dir).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.subject_alt_names = vec![rcgen::SanType::URI(HTTPBIN.try_into().unwrap())];
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    p.custom_extensions = vec![basic_constraints(true, false)];
    p.not_before = now() - Duration::minutes(2);
    p.not_after = now() + Duration::hours(24);
    edit(&mut p);
    let leaf = tpki::signed(p, &ca);
    let der = |pem_text: &str| CertificateDer::from(pem::parse(pem_text).unwrap().into_contents());
    let served = vec![der(&leaf.pem), der(&ca.pem), der(&root.pem), der(&root.pem)];
    verify(&bundle, served, expect).verdict
}

/// basicConstraints as a raw extension, so that its criticality is the test's choice.
fn basic_constraints(critical: bool, ca: bool) -> rcgen::CustomExtension {
    let content = if ca {
        vec![0x30, 0x03, 0x01, 0x01, 0xff]
    } else {
        vec![0x30, 0x00]
    };
    let mut bc = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 19], content);
    bc.set_criticality(critical);
    bc
}

#[test]
fn leaf_profile_passes_istiods_exact_profile_and_notes_each_difference_alone() {
    let exact = verdict_of_leaf(&|_| {}, at_now());
    let check = exact.check(CheckId::LeafProfile);
    assert_eq!(check.status, Status::Pass, "{}", render::text(&exact));
    assert!(
        check.summary.starts_with("istiod's workload profile: "),
        "{}",
        check.summary
    );
    assert!(check.details.is_empty(), "{:?}", check.details);
    assert!(exact.conformant(), "{}", render::text(&exact));

    // (what, edit, the one note it must give)
    let no_bc = |p: &mut rcgen::CertificateParams| p.custom_extensions.clear();
    let cases: [(&str, &Edit<'_>, &str); 8] = [
        (
            "KU digitalSignature only",
            &|p| p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature],
            "note: keyUsage critical digitalSignature, istiod writes critical digitalSignature, keyEncipherment",
        ),
        (
            "non-critical KU",
            // digitalSignature (bit 0) and keyEncipherment (bit 2): BIT STRING 05 A0.
            &|p| {
                p.key_usages.clear();
                let mut ku = rcgen::CustomExtension::from_oid_content(
                    &[2, 5, 29, 15],
                    vec![0x03, 0x02, 0x05, 0xa0],
                );
                ku.set_criticality(false);
                p.custom_extensions.push(ku);
            },
            "note: keyUsage digitalSignature, keyEncipherment, istiod writes critical",
        ),
        (
            "no KU",
            &|p| p.key_usages.clear(),
            "note: no keyUsage, istiod writes critical digitalSignature, keyEncipherment",
        ),
        (
            "an extra EKU",
            &|p| {
                p.extended_key_usages
                    .push(rcgen::ExtendedKeyUsagePurpose::CodeSigning)
            },
            "note: extendedKeyUsage serverAuth, clientAuth, codeSigning, istiod writes serverAuth, clientAuth",
        ),
        (
            "anyExtendedKeyUsage",
            &|p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Any],
            "note: extendedKeyUsage anyExtendedKeyUsage, istiod writes serverAuth, clientAuth",
        ),
        (
            "non-critical CA:FALSE",
            &|p| p.custom_extensions = vec![basic_constraints(false, false)],
            "note: basicConstraints not critical, istiod marks CA:FALSE critical",
        ),
        (
            "no basicConstraints",
            &no_bc,
            "note: no basicConstraints, istiod writes critical CA:FALSE",
        ),
        (
            "an SKI",
            &|p| {
                let mut ski = vec![0x04, 0x14];
                ski.extend([0xab; 20]);
                p.custom_extensions
                    .push(rcgen::CustomExtension::from_oid_content(
                        &[2, 5, 29, 14],
                        ski,
                    ));
            },
            "note: subjectKeyIdentifier",
        ),
    ];
    for (what, edit, note) in cases {
        let v = verdict_of_leaf(edit, at_now());
        let check = v.check(CheckId::LeafProfile);
        assert_eq!(check.status, Status::Pass, "{what}:\n{}", render::text(&v));
        assert_eq!(
            check.summary,
            "the leaf differs from istiod's workload profile in 1 way; nothing that breaks mTLS (notes)",
            "{what}:\n{}",
            render::text(&v)
        );
        assert_eq!(check.details.len(), 1, "{what}:\n{}", render::text(&v));
        assert!(
            check.details[0].starts_with(note),
            "{what}: {:?}",
            check.details
        );
        // --istiod-profile fails each note alone.
        let strict = Expectations {
            istiod_profile: true,
            ..at_now()
        };
        let v = verdict_of_leaf(edit, strict);
        let failed: Vec<CheckId> = v.failures().map(|c| c.id).collect();
        assert_eq!(
            failed,
            [CheckId::LeafProfile],
            "{what}:\n{}",
            render::text(&v)
        );
        assert_eq!(
            v.check(CheckId::LeafProfile).summary,
            "the leaf differs from istiod's workload profile in 1 way (--istiod-profile)",
            "{what}"
        );
    }
}

#[test]
fn leaf_profile_counts_the_ways_a_leaf_breaks_mtls_and_keeps_the_notes_under_them() {
    // serverAuth without clientAuth: one way; the EKU is not also a note.
    let v = verdict_of_leaf(
        &|p| {
            p.extended_key_usages = vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::CodeSigning,
            ]
        },
        at_now(),
    );
    let check = v.check(CheckId::LeafProfile);
    assert_eq!(check.status, Status::Fail, "{}", render::text(&v));
    assert_eq!(check.summary, "the leaf breaks mTLS in 1 way");
    assert_eq!(
        check.details,
        [
            "extendedKeyUsage serverAuth, codeSigning lacks clientAuth: under mTLS every workload certificate is used as both server and client"
        ]
    );
    // Neither serverAuth nor clientAuth, and no keyUsage digitalSignature: three ways,
    // then the notes (a subject) marked as such.
    let v = verdict_of_leaf(
        &|p| {
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
            p.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "httpbin");
        },
        at_now(),
    );
    let check = v.check(CheckId::LeafProfile);
    assert_eq!(
        check.summary,
        "the leaf breaks mTLS in 3 ways",
        "{}",
        render::text(&v)
    );
    assert_eq!(
        check.details,
        [
            "keyUsage keyEncipherment lacks digitalSignature: no TLS handshake can be signed with this key",
            "extendedKeyUsage codeSigning lacks serverAuth: under mTLS every workload certificate is used as both server and client",
            "extendedKeyUsage codeSigning lacks clientAuth: under mTLS every workload certificate is used as both server and client",
            "note: subject `CN=httpbin`, istiod leaves it empty",
        ]
    );
    // A non-critical CA:TRUE is leaf-not-ca's failure; leaf-profile notes no basicConstraints.
    let v = verdict_of_leaf(
        &|p| p.custom_extensions = vec![basic_constraints(false, true)],
        at_now(),
    );
    let failed: Vec<CheckId> = v.failures().map(|c| c.id).collect();
    assert_eq!(failed, [CheckId::LeafNotCa], "{}", render::text(&v));
    let profile = v.check(CheckId::LeafProfile);
    assert!(
        profile
            .details
            .iter()
            .all(|d| !d.contains("basicConstraints")),
        "{:?}",
        profile.details
    );
}

#[test]
fn a_leaf_not_yet_valid_fails_leaf_ttl_and_leaf_verifies_and_is_valid_from_its_not_before() {
    // Issued a little later than its intermediate, so that only the leaf is not yet valid.
    let mesh = Mesh::new(&["cluster1"]);
    let later = Leaf {
        issued_at: now() + Duration::minutes(10),
        ..Leaf::default()
    };
    let leaf = mesh.leaf("cluster1", &later);
    let served = mesh.served("cluster1", &leaf);
    let info = chain::CertInfo::from_der(&leaf).unwrap();
    verify(
        &mesh.bundle("cluster1"),
        served.clone(),
        Expectations::at(info.not_before - Duration::seconds(1)),
    )
    .fails_exactly(&[CheckId::LeafVerifies, CheckId::LeafTtl])
    .says(CheckId::LeafTtl, "not yet valid at")
    .openssl_agrees();
    // Twins: valid from its NotBefore through its NotAfter, both included (RFC 5280 §4.1.2.5,
    // and Go: `now.After(NotAfter)` is expired). OpenSSL calls the NotAfter second itself
    // expired, so it is asked about NotBefore only.
    verify(
        &mesh.bundle("cluster1"),
        served.clone(),
        Expectations::at(info.not_before),
    )
    .fails_exactly(&[])
    .openssl_agrees();
    verify(
        &mesh.bundle("cluster1"),
        served,
        Expectations::at(info.not_after),
    )
    .fails_exactly(&[]);
}

#[test]
fn an_expected_ttl_allows_a_minute_below_and_three_minutes_above_and_no_more() {
    let mesh = Mesh::new(&["cluster1"]);
    let ttl = Duration::hours(24);
    let with_lifetime = |lifetime: Duration| {
        let leaf = Leaf {
            ttl: lifetime,
            backdate: Duration::ZERO,
            ..Leaf::default()
        };
        let served = mesh.served("cluster1", &mesh.leaf("cluster1", &leaf));
        let expect = Expectations {
            expect_ttl: Some(ttl),
            ..at_now()
        };
        verify(&mesh.bundle("cluster1"), served, expect)
    };
    let m = Duration::minutes;
    let s = Duration::seconds;
    for ok in [ttl - m(1), ttl, ttl + m(3)] {
        with_lifetime(ok).fails_exactly(&[]);
    }
    for off in [ttl - m(1) - s(1), ttl + m(3) + s(1)] {
        with_lifetime(off).fails_exactly(&[CheckId::LeafTtl]);
    }
    // Too short: what users see, with no clamp hint (the leaf ends long before its issuer).
    let case = with_lifetime(Duration::hours(1));
    case.fails_exactly(&[CheckId::LeafTtl]).says(
        CheckId::LeafTtl,
        "the lifetime 1h is not the expected TTL 24h (24h2m with istiod's 2m backdating)",
    );
    assert!(
        !render::text(&case.verdict).contains("clamps"),
        "{}",
        render::text(&case.verdict)
    );
}

#[test]
fn a_leaf_clamped_to_its_intermediates_expiry_is_named_as_clamped() {
    // An intermediate with a day left; istiod 1.28+ cuts a 48h leaf at the intermediate's end.
    let mesh = Mesh::new(&["cluster1"]);
    let tmp = tempfile::tempdir().unwrap();
    let spec = meshtrust::pki::IntermediateSpec {
        days: 1,
        key: KeyAlg::P256,
        ..meshtrust::pki::IntermediateSpec::new("short")
    };
    let ca = meshtrust::pki::generate_intermediate(&mesh.root, &spec).unwrap();
    let dir =
        meshtrust::pki::layout::write_cacerts(tmp.path(), &spec, &ca, &mesh.root, false).unwrap();
    let bundle = Bundle::read(&dir).unwrap();
    let ca_end = chain::CertInfo::from_der(ca.cert_der()).unwrap().not_after;
    let issued_at = now();
    let expect = Expectations {
        expect_ttl: Some(Duration::hours(48)),
        ..at_now()
    };
    let clamped = Leaf {
        ttl: ca_end - issued_at,
        issued_at,
        ..Leaf::default()
    };
    let served = served_by(&bundle, &clamped.signed_by(&ca));
    verify(&bundle, served, expect.clone())
        .fails_exactly(&[CheckId::LeafTtl])
        .says(
            CheckId::LeafTtl,
            "; NotAfter equals the issuer's: istiod 1.28+ clamps a leaf to its intermediate's expiry",
        );
    // Twin: a short leaf that ends before its issuer is not called clamped.
    let short = Leaf {
        ttl: ca_end - issued_at - Duration::hours(1),
        issued_at,
        ..Leaf::default()
    };
    let case = verify(&bundle, served_by(&bundle, &short.signed_by(&ca)), expect);
    case.fails_exactly(&[CheckId::LeafTtl]);
    assert!(
        !render::text(&case.verdict).contains("clamps"),
        "{}",
        render::text(&case.verdict)
    );
}

#[test]
fn istiods_root_is_recognised_by_the_expected_trust_domain_alone_and_by_the_default_one() {
    use rcgen::KeyUsagePurpose as Ku;
    let mesh = Mesh::new(&["cluster1"]);
    // Not istiod's keyUsage shape: only the subject can give these away.
    let root_for = |org: &'static str| {
        CaSpec {
            subject: &[(DnType::OrganizationName, org)],
            pathlen: None,
            key_usages: vec![Ku::KeyCertSign, Ku::DigitalSignature],
            issuer: None,
            key: KeyAlg::P256,
        }
        .build()
    };
    let fallback = |ca: &meshtrust::pki::Ca, trust_domain: Option<&str>| {
        let served = vec![Leaf::default().signed_by(ca), ca.cert_der().clone()];
        let expect = Expectations {
            trust_domain: trust_domain.map(str::to_owned),
            ..at_now()
        };
        verify(&mesh.bundle("cluster1"), served, expect)
            .verdict
            .check(CheckId::SelfSignedFallback)
            .status
    };
    let east = root_for("east.example");
    assert_eq!(fallback(&east, Some("east.example")), Status::Fail);
    assert_eq!(fallback(&east, None), Status::Pass);
    let default = root_for("cluster.local");
    assert_eq!(fallback(&default, Some("east.example")), Status::Fail);
    assert_eq!(fallback(&default, None), Status::Fail);
}

#[test]
fn an_empty_subject_needs_a_critical_san_and_a_subject_does_not() {
    // subjectAltName as a raw, non-critical extension: SEQUENCE { [6] IA5String uri }.
    let non_critical_san = || {
        let uri = HTTPBIN.as_bytes();
        let mut content = vec![0x30, (uri.len() + 2) as u8, 0x86, uri.len() as u8];
        content.extend_from_slice(uri);
        let mut san = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 17], content);
        san.set_criticality(false);
        san
    };
    let v = verdict_of_leaf(
        &|p| {
            p.subject_alt_names.clear();
            p.custom_extensions.push(non_critical_san());
        },
        at_now(),
    );
    let failed: Vec<CheckId> = v.failures().map(|c| c.id).collect();
    assert_eq!(failed, [CheckId::SpiffeId], "{}", render::text(&v));
    assert_eq!(
        v.check(CheckId::SpiffeId).details,
        [
            "the subject is empty but the SAN extension is not critical (RFC 5280 §4.2.1.6; istiod marks it critical)"
        ]
    );
    // Twin: with a subject, a non-critical SAN is fine (a note on the subject only).
    let v = verdict_of_leaf(
        &|p| {
            p.subject_alt_names.clear();
            p.custom_extensions.push(non_critical_san());
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "httpbin");
        },
        at_now(),
    );
    assert!(v.conformant(), "{}", render::text(&v));
    assert_eq!(v.check(CheckId::SpiffeId).summary, HTTPBIN);
}
