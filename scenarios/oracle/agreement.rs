//! The model of istiod against Istio's own code: load (every corpus bundle, both
//! releases), the chain a sidecar serves, the issued leaf, and hot reloads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use meshtrust::istio::{self, IstioVersion, Rule};
use meshtrust::pki::{Bundle, PkiError};
use time::OffsetDateTime;

use super::corpus::{self, Case, Keys};
use super::{LoadResult, Oracle};

/// Bundles generated per run beyond the fixed corpus (the issue asks for at least 500).
const GENERATED: usize = 520;

/// `MESHTRUST_ORACLE_GENERATED` lowers the count for quick local loops (mutation runs);
/// CI runs the full 520.
fn generated_count() -> usize {
    std::env::var("MESHTRUST_ORACLE_GENERATED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(GENERATED)
}

fn seed() -> u64 {
    std::env::var("MESHTRUST_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_130)
}

/// What istiod does with a directory at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    SelfSigned,
    Plugged { default_ttl_seconds: i64 },
    Refused { rule: Option<Rule>, text: String },
}

/// The rule behind an istiod start-up error, from its text (Istio 1.30, 1.31).
fn classify(error: &str) -> Option<Rule> {
    let e = error;
    Some(if e == istio::load::INCOMPLETE_BUNDLE {
        Rule::CompleteBundle
    } else if e.contains("failed to parse cert PEM") || e.contains("cannot verify the cert") {
        Rule::ChainVerifies
    } else if e.contains("failed to parse private key PEM") {
        Rule::KeyParses
    } else if e.contains("the cert does not match the key") {
        Rule::KeyMatches
    } else if e.contains("failed to parse cert chain")
        || e.contains("failed to parse CRL PEM")
        || e.contains("missing CRL signed by certificates")
    {
        Rule::CrlSigned
    } else if e == istio::load::NOT_A_CA {
        Rule::SigningCertIsCa
    } else if e.contains("failed to get default cert TTL") {
        Rule::ChainNotExpired
    } else {
        return None;
    })
}

fn oracle_outcome(r: &LoadResult) -> Outcome {
    match (r.loads, r.mode.as_str()) {
        (true, "self-signed") => Outcome::SelfSigned,
        (true, _) => Outcome::Plugged {
            default_ttl_seconds: r.default_ttl_seconds,
        },
        (false, _) => Outcome::Refused {
            rule: classify(&r.error),
            text: r.error.clone(),
        },
    }
}

fn model_outcome(
    dir: &Path,
    version: IstioVersion,
    now: OffsetDateTime,
) -> (Outcome, Option<istio::Evaluation>) {
    let bundle = match Bundle::read(dir) {
        Ok(b) => b,
        Err(PkiError::NotABundle { .. }) => return (Outcome::SelfSigned, None),
        Err(e) => panic!("cannot read `{}`: {e}", dir.display()),
    };
    let e = istio::evaluate(&bundle, now, version);
    let outcome = if e.ignored() {
        Outcome::SelfSigned
    } else if let Some(f) = e.failures.first() {
        Outcome::Refused {
            rule: Some(f.rule),
            text: f.reason.clone(),
        }
    } else {
        Outcome::Plugged {
            default_ttl_seconds: e.default_ttl.map_or(0, |d| d.whole_seconds()),
        }
    };
    (outcome, Some(e))
}

/// The part of an error text that does not come from Go's parsers and verifier, whose
/// inner wording meshtrust does not reproduce word for word.
/// Go's own inner texts are cut at the earliest of these markers; the CRL rule's list of
/// subjects is printed in Go's map order (random), so it is cut too.
fn istiod_part(text: &str) -> &str {
    let markers = [
        "with error: x509:",
        ": x509:",
        ": asn1:",
        ": crypto/",
        ": tls: failed to parse",
        "missing CRL signed by certificates: [",
    ];
    let cut = markers
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    &text[..cut]
}

fn agrees(model: &Outcome, oracle: &Outcome) -> bool {
    match (model, oracle) {
        (Outcome::SelfSigned, Outcome::SelfSigned) => true,
        (
            Outcome::Plugged {
                default_ttl_seconds: a,
            },
            Outcome::Plugged {
                default_ttl_seconds: b,
            },
        ) => (a - b).abs() <= 120,
        (Outcome::Refused { rule: a, text: ta }, Outcome::Refused { rule: b, text: tb }) => {
            a.is_some() && a == b && istiod_part(ta) == istiod_part(tb)
        }
        _ => false,
    }
}

/// Keeps a disagreeing bundle as a regression case with its recipe and both outcomes.
fn keep(case: &Case, release: &str, model: &Outcome, oracle: &Outcome) -> PathBuf {
    let dest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/oracle-disagreements")
        .join(release)
        .join(case.dir.file_name().unwrap());
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(&case.dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        dest.join("RECIPE.txt"),
        format!(
            "{}\nmeshtrust: {model:?}\nistio {release}: {oracle:?}\n",
            case.recipe
        ),
    )
    .unwrap();
    dest
}

struct Corpus {
    _tmp: tempfile::TempDir,
    cases: Vec<Case>,
}

fn corpus() -> Corpus {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::new();
    let mut cases = corpus::write_all(tmp.path(), &keys, seed(), generated_count());
    // Istio's own sample certificates (samples/certs), as a bundle of its own.
    let samples = tmp.path().join("istio-samples");
    std::fs::create_dir_all(&samples).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/istio/istio-samples-certs");
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        std::fs::copy(src.join(f), samples.join(f)).unwrap();
    }
    cases.push(Case {
        recipe: "istio samples/certs".into(),
        dir: samples,
    });
    // meshtrust's own generator, as `meshtrust certs cacerts` writes it.
    let made = meshtrust::pki::make::cacerts(
        &tmp.path().join("meshtrust-certs"),
        &meshtrust::pki::RootSpec {
            key: meshtrust::pki::KeyAlg::P256,
            ..Default::default()
        },
        &[meshtrust::pki::IntermediateSpec {
            key: meshtrust::pki::KeyAlg::P256,
            ..meshtrust::pki::IntermediateSpec::new("cluster1")
        }],
        false,
        false,
    )
    .unwrap();
    cases.push(Case {
        recipe: "meshtrust certs cacerts cluster1 (P-256)".into(),
        dir: made.clusters[0].1.clone(),
    });
    // The Makefile's own openssl recipe (RSA 4096).
    let makefile = tmp.path().join("makefile");
    std::fs::create_dir_all(&makefile).unwrap();
    crate::support::openssl::makefile_bundle(&makefile, "cluster1");
    cases.push(Case {
        recipe: "tools/certs Makefile recipe (openssl, RSA 4096)".into(),
        dir: makefile.join("cluster1"),
    });
    Corpus { _tmp: tmp, cases }
}

#[test]
fn the_model_of_istiod_loads_and_refuses_every_bundle_as_istios_own_code_does() {
    let corpus = corpus();
    assert!(
        corpus.cases.len() >= generated_count() + corpus::fixed().len(),
        "{}",
        corpus.cases.len()
    );
    let dirs: Vec<PathBuf> = corpus.cases.iter().map(|c| c.dir.clone()).collect();
    let mut report = String::new();
    let mut disagreements = 0;
    for oracle in Oracle::all() {
        let now = OffsetDateTime::now_utc();
        let answers = oracle.load(&dirs);
        assert_eq!(answers.len(), dirs.len());
        let (mut loads, mut refuses, mut self_signed) = (0, 0, 0);
        let mut loadable = Vec::new();
        for (case, answer) in corpus.cases.iter().zip(&answers) {
            let theirs = oracle_outcome(answer);
            let (ours, evaluation) = model_outcome(&case.dir, oracle.version, now);
            // The layout istiod chose, and its mode line, as the model names them.
            let layout = match Bundle::read(&case.dir) {
                Ok(b) if b.layout == meshtrust::pki::Layout::KubernetesTls => "kubernetes.io/tls",
                _ => "istiod",
            };
            assert_eq!(answer.layout, layout, "{}", case.recipe);
            let mode_line = match &theirs {
                Outcome::SelfSigned => Some(istio::load::LOG_SELF_SIGNED),
                Outcome::Plugged { .. } => Some(istio::load::LOG_PLUGGED_IN),
                Outcome::Refused { .. } => None,
            };
            if let Some(line) = mode_line {
                assert!(
                    answer.log.iter().any(|l| l == line),
                    "{}: {:?}",
                    case.recipe,
                    answer.log
                );
            }
            match &theirs {
                Outcome::SelfSigned => self_signed += 1,
                Outcome::Plugged { .. } => loads += 1,
                Outcome::Refused { .. } => refuses += 1,
            }
            if !agrees(&ours, &theirs) {
                disagreements += 1;
                let kept = keep(case, &oracle.version.to_string(), &ours, &theirs);
                let _ = writeln!(
                    report,
                    "istio {}: {}\n  meshtrust: {ours:?}\n  istio:     {theirs:?}\n  kept in {}",
                    oracle.version,
                    case.recipe,
                    kept.display()
                );
            } else if let (Outcome::Plugged { .. }, Some(e)) = (&theirs, evaluation) {
                loadable.push((case, e));
            }
        }
        eprintln!(
            "istio {}: {} bundles, {loads} load, {refuses} refused, {self_signed} self-signed",
            oracle.version,
            dirs.len()
        );
        // The positive and negative halves must both be well represented.
        assert!(
            loads * 8 >= dirs.len() && refuses * 3 >= dirs.len(),
            "a lopsided corpus proves little: {loads} load, {refuses} refused"
        );
        disagreements += served_chains_agree(&oracle, &loadable, &mut report);
    }
    assert_eq!(
        disagreements, 0,
        "meshtrust's model disagrees with Istio's code:\n{report}"
    );
}

/// For every bundle istiod loads, the CreateCertificate elements after the leaf and the
/// chain the agent hands Envoy must be byte-identical to meshtrust's prediction.
fn served_chains_agree(
    oracle: &Oracle,
    loadable: &[(&Case, istio::Evaluation)],
    report: &mut String,
) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let csr = tmp.path().join("csr.pem");
    crate::support::openssl::openssl(
        tmp.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-subj",
            "/",
            "-out",
            "csr.pem",
        ],
    );
    let dirs: Vec<PathBuf> = loadable.iter().map(|(c, _)| c.dir.clone()).collect();
    let signed = oracle.sign(&dirs, &csr, "spiffe://cluster.local/ns/foo/sa/httpbin");
    let mut bad = 0;
    for ((case, evaluation), answer) in loadable.iter().zip(signed) {
        assert!(answer.load.loads, "{}", case.recipe);
        let Some(sign) = answer.sign else {
            bad += 1;
            let _ = writeln!(
                report,
                "istio {}: {}: the oracle did not sign",
                oracle.version, case.recipe
            );
            continue;
        };
        let theirs: Vec<Vec<u8>> = sign
            .elements
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(String::into_bytes)
            .collect();
        let ours = theirs.first().map(|leaf| {
            // The leaf element is Istio's own (a fresh signature); the rest is predicted.
            let mut e =
                istio::served::response_elements(b"", &evaluation.chain_pem, &evaluation.root_pem);
            e.insert(0, leaf.clone());
            e
        });
        let served_ours = ours.as_ref().map(|e| istio::served::agent_chain(&e[1..]));
        let served_ok = served_ours
            .as_ref()
            .is_some_and(|tail| sign.served_pem.as_bytes().ends_with(tail));
        let count_ok = istio::served::served_certificates(sign.served_pem.as_bytes()).len()
            == 1 + istio::served::served_after_leaf(&evaluation.chain_pem, &evaluation.root_pem)
                .len();
        // The agent's trust bundle is the last element: the raw root-cert.pem.
        let trust_ok = sign.trust_bundle_pem.as_bytes()
            == istio::served::trust_bundle(ours.as_deref().unwrap_or_default());
        if !trust_ok
            || ours.as_deref() != Some(theirs.as_slice())
            || !served_ok
            || !count_ok
            || !sign.error.is_empty()
        {
            bad += 1;
            let _ = writeln!(
                report,
                "istio {}: {}: served chain differs (elements equal: {}, agent chain suffix: {served_ok}, count: {count_ok}, trust bundle: {trust_ok}, error: `{}`)",
                oracle.version,
                case.recipe,
                ours.as_deref() == Some(theirs.as_slice()),
                sign.error
            );
        }
    }
    eprintln!(
        "istio {}: {} served chains compared",
        oracle.version,
        loadable.len()
    );
    bad
}

#[test]
fn the_classifier_names_every_istiod_refusal_and_nothing_else() {
    assert_eq!(
        classify(istio::load::INCOMPLETE_BUNDLE),
        Some(Rule::CompleteBundle)
    );
    assert_eq!(classify(istio::load::NOT_A_CA), Some(Rule::SigningCertIsCa));
    assert_eq!(
        classify(istio::load::CHAIN_EXPIRED),
        Some(Rule::ChainNotExpired)
    );
    assert_eq!(
        classify("failed to create an istiod CA: something else"),
        None
    );
    assert!(agrees(&Outcome::SelfSigned, &Outcome::SelfSigned));
    assert!(!agrees(
        &Outcome::SelfSigned,
        &Outcome::Plugged {
            default_ttl_seconds: 86400
        }
    ));
    assert!(!agrees(
        &Outcome::Refused {
            rule: None,
            text: "x".into()
        },
        &Outcome::Refused {
            rule: None,
            text: "x".into()
        }
    ));
    assert!(!agrees(
        &Outcome::Plugged {
            default_ttl_seconds: 86400
        },
        &Outcome::Plugged {
            default_ttl_seconds: 21600
        }
    ));
}

/// The README's table of what the oracle taught the model, case by case: each claim is
/// the oracle's answer, and the model's.
#[test]
fn the_readmes_examples_are_what_istio_does() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::new();
    let fixed = corpus::fixed();
    let expect: &[(&str, Option<Rule>)] = &[
        ("root-cert unparseable extra block", None),
        ("cert-chain empty", None),
        ("key file starts with a certificate", Some(Rule::KeyParses)),
        (
            "ca-cert first block not a certificate",
            Some(Rule::ChainVerifies),
        ),
        ("root without basicConstraints", Some(Rule::ChainVerifies)),
        ("intermediate RSA 1024 (weak-rsa; Go reads it)", None),
        (
            "intermediate signed with SHA-1 (weak-signature)",
            Some(Rule::ChainVerifies),
        ),
        ("crl valid", None),
        ("crl missing the root's", Some(Rule::CrlSigned)),
        (
            "cert-chain starts with an expired certificate",
            Some(Rule::ChainNotExpired),
        ),
        (
            "cert-chain starts with a non-certificate block",
            Some(Rule::ChainNotExpired),
        ),
        ("intermediate without keyCertSign (Go ignores KU)", None),
        ("ca-cert not a CA", Some(Rule::SigningCertIsCa)),
        (
            "missing cert-chain (incomplete)",
            Some(Rule::CompleteBundle),
        ),
    ];
    for oracle in Oracle::all() {
        for (name, rule) in expect {
            let (i, (_, ms)) = fixed
                .iter()
                .enumerate()
                .find(|(_, (n, _))| n == name)
                .unwrap_or_else(|| panic!("no fixed case `{name}`"));
            let dir = tmp.path().join(format!("{}-{i}", oracle.version));
            corpus::build(&dir, &keys, i, ms);
            let theirs = oracle_outcome(&oracle.load(std::slice::from_ref(&dir))[0]);
            let (ours, _) = model_outcome(&dir, oracle.version, OffsetDateTime::now_utc());
            let want_ok = |o: &Outcome| match (o, rule) {
                (Outcome::Plugged { .. }, None) => true,
                (Outcome::Refused { rule: r, .. }, Some(want)) => r.as_ref() == Some(want),
                _ => false,
            };
            assert!(
                want_ok(&theirs),
                "istio {}: {name}: {theirs:?}",
                oracle.version
            );
            assert!(
                want_ok(&ours),
                "meshtrust for {}: {name}: {ours:?}",
                oracle.version
            );
        }
    }
}
