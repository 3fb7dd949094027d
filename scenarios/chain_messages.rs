//! What `meshtrust verify` says about a chain, verdict by verdict, in one snapshot
//! (`fixtures/snapshots/chain_verdict_messages.snap`): every check's summary and details as
//! users read them, so that a change of wording, a wrong file name or an empty message shows
//! in review. Fingerprints and times are redacted; everything else is as printed.

use meshtrust::chain::{self, CheckId, Expectations, SpiffeId, render};
use meshtrust::pki::Bundle;
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::support::chains::{Leaf, Mesh, istiod_self_signed_root, now};

/// `## title`, then the verdict's text report.
fn transcript(
    title: &str,
    bundle: &Bundle,
    others: &[Bundle],
    served: &[CertificateDer<'static>],
    expect: &Expectations,
) -> String {
    let verdict = chain::verify_chain(served, bundle, others, expect).expect("a usable chain");
    format!("## {title}\n{}\n", render::text(&verdict))
}

#[test]
fn every_verdict_reads_as_in_the_snapshot() {
    let mesh = Mesh::new(&["cluster1", "cluster2"]);
    let foreign = Mesh::new(&["cluster1"]);
    let bundle = mesh.bundle("cluster1");
    let leaf = mesh.leaf("cluster1", &Leaf::default());
    let leaf_info = chain::CertInfo::from_der(&leaf).unwrap();
    let served = mesh.served("cluster1", &leaf);
    let intermediate = mesh.intermediate("cluster1").cert_der().clone();
    let root = mesh.root.cert_der().clone();
    let at = Expectations::at(now());
    let at_time = |t: OffsetDateTime| Expectations::at(t);
    let mut out = String::new();
    let mut add = |title: &str,
                   others: &[Bundle],
                   served: &[CertificateDer<'static>],
                   expect: &Expectations| {
        out.push_str(&transcript(title, &bundle, others, served, expect));
    };

    add("conformant, as istiod serves it", &[], &served, &at);
    let other = mesh.served("cluster2", &mesh.leaf("cluster2", &Leaf::default()));
    add(
        "another cluster's intermediate",
        &[mesh.bundle("cluster2")],
        &other,
        &at,
    );
    add(
        "another cluster's intermediate, that bundle not given",
        &[],
        &other,
        &at,
    );
    let other_leaf = mesh.leaf("cluster2", &Leaf::default());
    let other_intermediate = mesh.intermediate("cluster2").cert_der().clone();
    add(
        "another cluster's intermediate and no root",
        &[],
        &[other_leaf, other_intermediate],
        &at,
    );
    let foreign_served = foreign.served("cluster1", &foreign.leaf("cluster1", &Leaf::default()));
    add("under a foreign root", &[], &foreign_served, &at);
    add("the leaf alone", &[], std::slice::from_ref(&leaf), &at);
    add(
        "the intermediate missing",
        &[],
        &[leaf.clone(), root.clone()],
        &at,
    );
    add(
        "ending in the intermediate",
        &[],
        &[leaf.clone(), intermediate.clone()],
        &at,
    );
    add(
        "reversed",
        &[],
        &[root.clone(), intermediate.clone(), leaf.clone()],
        &at,
    );
    let istiod = istiod_self_signed_root();
    add(
        "istiod's self-signed root",
        &[],
        &[
            Leaf::default().signed_by(&istiod),
            istiod.cert_der().clone(),
        ],
        &at,
    );
    let istiod_root = istiod.cert_der().clone();
    add(
        "istiod's self-signed root, served twice",
        &[],
        &[
            Leaf::default().signed_by(&istiod),
            istiod_root.clone(),
            istiod_root,
        ],
        &at,
    );
    add(
        "expired",
        &[],
        &served,
        &at_time(leaf_info.not_after + Duration::hours(1)),
    );
    add(
        "not yet valid",
        &[],
        &served,
        &at_time(leaf_info.not_before - Duration::seconds(1)),
    );
    let expecting = Expectations {
        expect_id: Some(SpiffeId::parse("spiffe://east.example/ns/foo/sa/sleep").unwrap()),
        expect_ttl: Some(Duration::hours(1)),
        ..at.clone()
    };
    add(
        "another identity, trust domain and TTL than expected",
        &[],
        &served,
        &expecting,
    );
    let no_spiffe = Leaf {
        spiffe: "https://httpbin.foo.example/".into(),
        ..Leaf::default()
    };
    add(
        "no SPIFFE URI",
        &[],
        &mesh.served("cluster1", &mesh.leaf("cluster1", &no_spiffe)),
        &at,
    );
    let ca_leaf = Leaf {
        ca: true,
        ..Leaf::default()
    };
    add(
        "a CA as the leaf, held to istiod's profile",
        &[],
        &mesh.served("cluster1", &mesh.leaf("cluster1", &ca_leaf)),
        &Expectations {
            istiod_profile: true,
            ..at.clone()
        },
    );
    let long = Leaf {
        ttl: Duration::days(91),
        ..Leaf::default()
    };
    add(
        "over istiod's maximum TTL",
        &[],
        &mesh.served("cluster1", &mesh.leaf("cluster1", &long)),
        &at,
    );

    insta::with_settings!({
        snapshot_path => "../fixtures/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        filters => vec![
            (r"SHA-256 [0-9A-F]{2}(:[0-9A-F]{2})+", "SHA-256 [FINGERPRINT]"),
            (r"[0-9A-F]{2}(:[0-9A-F]{2}){19}", "[KEY ID]"),
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[TIME]"),
            (r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}:\d{2}(\.\d+)? \+00:00:00", "[TIME]"),
            (r"[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4} \+00:00", "[TIME]"),
        ],
    }, {
        insta::assert_snapshot!("chain_verdict_messages", out);
    });
}

#[test]
fn each_check_is_named_alike_in_text_in_json_and_by_display() {
    let all = [
        (CheckId::RootMatchesPlugged, "root-matches-plugged"),
        (
            CheckId::IntermediateMatchesPlugged,
            "intermediate-matches-plugged",
        ),
        (CheckId::LeafVerifies, "leaf-verifies"),
        (CheckId::SpiffeId, "spiffe-id"),
        (CheckId::LeafTtl, "leaf-ttl"),
        (CheckId::LeafNotCa, "leaf-not-ca"),
        (CheckId::LeafProfile, "leaf-profile"),
        (CheckId::ChainLength, "chain-length"),
        (CheckId::SelfSignedFallback, "self-signed-fallback"),
    ];
    for (id, name) in all {
        assert_eq!(id.name(), name);
        assert_eq!(id.to_string(), name);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(name));
    }
    // Every verdict runs every check, in this order.
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let verdict = chain::verify_chain(
        &served,
        &mesh.bundle("cluster1"),
        &[],
        &Expectations::at(now()),
    )
    .unwrap();
    let ids: Vec<CheckId> = verdict.checks.iter().map(|c| c.id).collect();
    assert_eq!(ids, all.map(|(id, _)| id));
}
