//! Hot reloads: what istiod does when the mounted files change, and the line it logs,
//! against meshtrust's model ([`meshtrust::istio::reload`]).

use std::path::Path;

use meshtrust::istio::reload::{self, Reload};
use meshtrust::pki::Bundle;
use time::OffsetDateTime;

use super::Oracle;
use super::corpus::{self, Keys};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn outcome_name(r: &Reload) -> &'static str {
    match r {
        Reload::Applied => "applied",
        Reload::Ignored { .. } => "ignored",
        Reload::Failed { .. } => "failed",
    }
}

#[test]
fn the_model_reloads_as_istiod_does_for_every_kind_of_change() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::new();
    // The running bundle, and a second bundle under the same root (a new intermediate).
    let old = tmp.path().join("old");
    corpus::build(&old, &keys, 0, &[]);
    let other_root = tmp.path().join("other-root");
    corpus::build(&other_root, &keys, 7, &[]);

    let root = std::fs::read_to_string(old.join("root-cert.pem")).unwrap();
    // A new intermediate under the same root certificate (rotation of the intermediate).
    let under_same_root = |name: &str, edit: &dyn Fn(&mut rcgen::CertificateParams)| {
        let dir = tmp.path().join(name);
        copy_dir(&old, &dir);
        let root_key = rcgen::KeyPair::from_pem(
            &std::fs::read_to_string(old.join(corpus::ROOT_KEY_FILE)).unwrap(),
        )
        .unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&root, &root_key).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = crate::support::pki::intermediate_params("cluster1");
        edit(&mut params);
        let cert = params.signed_by(&key, &issuer).unwrap().pem();
        std::fs::write(dir.join("ca-cert.pem"), &cert).unwrap();
        std::fs::write(dir.join("ca-key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("cert-chain.pem"), format!("{cert}{root}")).unwrap();
        dir
    };
    let new_int = under_same_root("new-intermediate", &|_| {});
    let not_ca = under_same_root("not-ca", &|p| p.is_ca = rcgen::IsCa::ExplicitNoCa);
    let foreign = std::fs::read_to_string(other_root.join("root-cert.pem")).unwrap();
    let write = |name: &str, edit: &dyn Fn(&Path)| {
        let d = tmp.path().join(name);
        copy_dir(&old, &d);
        edit(&d);
        d
    };
    let cases = vec![
        ("the same files again", write("same", &|_| {})),
        ("a new intermediate under the same root", new_int.clone()),
        ("another root", other_root.clone()),
        (
            "combined roots (rotation phase 1)",
            write("combined", &|d| {
                std::fs::write(d.join("root-cert.pem"), format!("{root}{foreign}")).unwrap()
            }),
        ),
        (
            "the same root with CRLF line ends",
            write("crlf", &|d| {
                std::fs::write(d.join("root-cert.pem"), root.replace('\n', "\r\n")).unwrap()
            }),
        ),
        (
            "a key that does not match",
            write("mismatch", &|d| {
                std::fs::copy(other_root.join("ca-key.pem"), d.join("ca-key.pem")).unwrap();
            }),
        ),
        // Start-up refuses it; a reload runs only the chain checks and takes it.
        ("a signing certificate that is not a CA", not_ca.clone()),
        (
            "cert-chain.pem removed",
            write("no-chain", &|d| {
                std::fs::remove_file(d.join("cert-chain.pem")).unwrap()
            }),
        ),
    ];
    let mut differences = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for oracle in Oracle::all() {
        for multi_root in [false, true] {
            for (name, new) in &cases {
                let theirs = oracle.reload(&old, new, multi_root);
                assert!(theirs.load.loads, "the running bundle must load");
                let ours = reload::reload(
                    root.as_bytes(),
                    &Bundle::read(new).unwrap(),
                    OffsetDateTime::now_utc(),
                    oracle.version,
                    multi_root,
                );
                let their_line = theirs.reload.log.last().cloned().unwrap_or_default();
                let our_line = ours.log_line();
                let lines_agree = match &ours {
                    // Go's inner error texts are not reproduced word for word.
                    Reload::Failed { .. } => {
                        their_line.starts_with(reload::LOG_FAILED_PREFIX)
                            && !theirs.reload.error.is_empty()
                            && their_line.ends_with(&theirs.reload.error)
                    }
                    _ => their_line == our_line,
                };
                seen.insert(theirs.reload.outcome.clone());
                if outcome_name(&ours) != theirs.reload.outcome || !lines_agree {
                    differences.push(format!(
                        "istio {} multi-root={multi_root}: {name}\n  meshtrust: {} `{our_line}`\n  istio:     {} `{their_line}`",
                        oracle.version,
                        outcome_name(&ours),
                        theirs.reload.outcome
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Every outcome is exercised, so the agreement is not that of a degenerate corpus.
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["applied", "failed", "ignored"]
    );
}
