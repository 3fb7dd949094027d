//! `meshtrust certs`: Istio Makefile parity, checked with Debian's openssl as the reference peer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::openssl::{makefile_bundle, openssl, openssl_fails};

fn meshtrust() -> Command {
    let mut cmd = Command::cargo_bin("meshtrust").expect("the meshtrust binary is built");
    // The Makefile's variables are read from the environment; keep the caller's out.
    for var in [
        "ROOTCA_ORG",
        "ROOTCA_CN",
        "ROOTCA_DAYS",
        "INTERMEDIATE_ORG",
        "INTERMEDIATE_CN",
        "INTERMEDIATE_DAYS",
        "INTERMEDIATE_SAN_DNS",
        "MESHTRUST_CERTS_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn x509_text(dir: &Path, file: &str) -> String {
    openssl(
        dir,
        &[
            "x509",
            "-in",
            file,
            "-noout",
            "-text",
            "-certopt",
            "no_sigdump",
        ],
    )
}

/// `openssl x509 -text` without what differs between any two runs (serial, dates,
/// key material, key ids), with extensions sorted: the certificate's field profile.
fn profile(dir: &Path, file: &str) -> Vec<String> {
    let text = x509_text(dir, file);
    let mut head = Vec::new();
    let mut exts: Vec<Vec<String>> = Vec::new();
    let mut in_ext = false;
    let mut skip_next = false;
    for line in text.lines() {
        let t = line.trim();
        if skip_next {
            skip_next = false;
            continue;
        }
        if t.is_empty()
            || is_hex_dump(t)
            || t.starts_with("Not Before")
            || t.starts_with("Not After")
            || t.starts_with("Modulus")
            || t.starts_with("pub:")
        {
            continue;
        }
        if t.starts_with("Serial Number") {
            skip_next = !t.contains(':') || t.ends_with(':');
            continue;
        }
        if t.starts_with("X509v3 extensions") {
            in_ext = true;
            continue;
        }
        if t.starts_with("Signature Algorithm") && in_ext {
            in_ext = false;
            head.push(t.to_string());
            continue;
        }
        if in_ext {
            if t.starts_with("X509v3 ") {
                exts.push(vec![t.to_string()]);
            } else if let Some(last) = exts.last_mut() {
                let key_id = last[0].contains("Key Identifier");
                last.push(if key_id {
                    "<key id>".into()
                } else {
                    t.to_string()
                });
            }
        } else {
            head.push(t.to_string());
        }
    }
    exts.sort();
    head.extend(exts.into_iter().flatten());
    head
}

/// A line of `aa:bb:cc` bytes: a modulus, a signature or a key id.
fn is_hex_dump(s: &str) -> bool {
    s.contains(':')
        && s.split(':')
            .all(|p| p.len() <= 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: impl AsRef<Path>) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn generate(dir: &Path, args: &[&str]) {
    meshtrust()
        .args(["certs", "cacerts", "--dir"])
        .arg(dir)
        .args(args)
        .assert()
        .success();
}

#[test]
fn cacerts_writes_the_makefiles_four_files_with_private_keys_0600() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    assert_eq!(
        files_in(tmp.path()),
        ["cluster1", "root-cert.pem", "root-key.pem"]
    );
    let c = tmp.path().join("cluster1");
    assert_eq!(
        files_in(&c),
        [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem"
        ]
    );
    assert_eq!(mode(c.join("ca-key.pem")), 0o600);
    assert_eq!(mode(tmp.path().join("root-key.pem")), 0o600);
    assert_eq!(mode(c.join("ca-cert.pem")), 0o644);
    assert_eq!(
        read(c.join("root-cert.pem")),
        read(tmp.path().join("root-cert.pem"))
    );
    assert_eq!(
        read(c.join("cert-chain.pem")),
        [
            read(c.join("ca-cert.pem")),
            read(tmp.path().join("root-cert.pem"))
        ]
        .concat(),
        "cert-chain.pem is the intermediate then the root"
    );
    let key = String::from_utf8(read(c.join("ca-key.pem"))).unwrap();
    assert!(
        key.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----")),
        "PKCS#8 PEM, as OpenSSL 3's genrsa"
    );
}

#[test]
fn openssl_verifies_the_intermediate_and_rejects_it_under_a_foreign_root() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "rsa2048", "--root-key", "rsa2048"],
    );
    let d = tmp.path();
    let ok = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "root-cert.pem",
            "-untrusted",
            "cluster1/ca-cert.pem",
            "cluster1/ca-cert.pem",
        ],
    );
    assert_eq!(ok.trim(), "cluster1/ca-cert.pem: OK");

    let other = tempfile::tempdir().unwrap();
    generate(
        other.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    let foreign = other.path().join("root-cert.pem");
    let err = openssl_fails(
        d,
        &[
            "verify",
            "-CAfile",
            foreign.to_str().unwrap(),
            "cluster1/ca-cert.pem",
        ],
    );
    assert!(
        err.contains("unable to get local issuer certificate"),
        "{err}"
    );
}

#[test]
fn every_key_matches_its_certificate_by_openssls_reckoning() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p384", "--root-key", "rsa2048"],
    );
    let d = tmp.path();
    for (cert, key) in [
        ("root-cert.pem", "root-key.pem"),
        ("cluster1/ca-cert.pem", "cluster1/ca-key.pem"),
    ] {
        let from_cert = openssl(d, &["x509", "-in", cert, "-noout", "-pubkey"]);
        let from_key = openssl(d, &["pkey", "-in", key, "-pubout"]);
        assert_eq!(from_cert, from_key, "{key} is the key of {cert}");
    }
    // Negative twin: the root's key is not the intermediate's.
    let root_pub = openssl(d, &["pkey", "-in", "root-key.pem", "-pubout"]);
    let ca_pub = openssl(
        d,
        &["x509", "-in", "cluster1/ca-cert.pem", "-noout", "-pubkey"],
    );
    assert_ne!(root_pub, ca_pub);
}

#[test]
fn root_and_intermediate_have_the_makefiles_field_profile() {
    let ours = tempfile::tempdir().unwrap();
    generate(ours.path(), &["cluster1"]);
    let make = tempfile::tempdir().unwrap();
    makefile_bundle(make.path(), "cluster1");

    for file in ["root-cert.pem", "cluster1/ca-cert.pem"] {
        let expected = profile(make.path(), file);
        let got = profile(ours.path(), file);
        assert_eq!(
            got, expected,
            "field profile of {file} differs from the Makefile's"
        );
    }
    let text = x509_text(ours.path(), "cluster1/ca-cert.pem");
    assert!(
        text.contains("Subject: O = Istio, CN = Intermediate CA, L = cluster1"),
        "{text}"
    );
    assert!(text.contains("Issuer: O = Istio, CN = Root CA"), "{text}");
    assert!(text.contains("Public-Key: (4096 bit)"), "{text}");
    // The intermediate's authority key id is the root's subject key id.
    let ski = |t: &str| {
        let i = t.find("Subject Key Identifier").unwrap();
        t[i..].lines().nth(1).unwrap().trim().to_string()
    };
    let aki = |t: &str| {
        let i = t.find("Authority Key Identifier").unwrap();
        t[i..]
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .trim_start_matches("keyid:")
            .to_string()
    };
    let root_text = x509_text(ours.path(), "root-cert.pem");
    assert_eq!(aki(&text), ski(&root_text));
    assert!(
        !root_text.contains("Authority Key Identifier"),
        "the Makefile's root has no AKI"
    );
    // Made together with the same days, the intermediate ends with its root, never after.
    assert_eq!(
        end_date(ours.path(), "cluster1/ca-cert.pem"),
        end_date(ours.path(), "root-cert.pem")
    );
    // 3650 days of validity, as ROOTCA_DAYS / INTERMEDIATE_DAYS.
    let end = openssl(
        ours.path(),
        &[
            "x509",
            "-in",
            "cluster1/ca-cert.pem",
            "-noout",
            "-checkend",
            &(3649 * 86400).to_string(),
        ],
    );
    assert!(end.contains("will not expire"), "{end}");
    let end = openssl_fails(
        ours.path(),
        &[
            "x509",
            "-in",
            "cluster1/ca-cert.pem",
            "-noout",
            "-checkend",
            &(3651 * 86400).to_string(),
        ],
    );
    assert!(end.contains("will expire"), "{end}");
}

#[test]
fn the_profile_comparison_notices_a_pathlen_difference_alone() {
    // The twin of the parity test: the comparison must be able to fail on one field. One CSR,
    // one root, the Makefile's intermediate extensions, signed three times: twice with
    // pathlen:0 (same profile: serial, dates and key ids do not count), once with pathlen:1.
    let ours = tempfile::tempdir().unwrap();
    let dir = ours.path();
    generate(
        dir,
        &["cluster1", "--key", "rsa2048", "--root-key", "rsa2048"],
    );
    openssl(
        dir,
        &[
            "x509",
            "-x509toreq",
            "-in",
            "cluster1/ca-cert.pem",
            "-signkey",
            "cluster1/ca-key.pem",
            "-out",
            "ca.csr",
        ],
    );
    let sign = |pathlen: u8, out: &str| {
        let conf = format!("pathlen{pathlen}.conf");
        std::fs::write(
            dir.join(&conf),
            format!(
                "[ ext ]\nsubjectKeyIdentifier = hash\nbasicConstraints = critical, CA:true, pathlen:{pathlen}\n\
                 keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\n\
                 subjectAltName = DNS:istiod.istio-system.svc\n"
            ),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-sha256",
                "-days",
                "3650",
                "-in",
                "ca.csr",
                "-CA",
                "root-cert.pem",
                "-CAkey",
                "root-key.pem",
                "-CAcreateserial",
                "-extfile",
                &conf,
                "-extensions",
                "ext",
                "-out",
                out,
            ],
        );
        profile(dir, out)
    };
    let zero = sign(0, "zero.pem");
    assert!(
        zero.iter().any(|l| l.contains("pathlen:0")),
        "the profile shows the pathlen: {zero:#?}"
    );
    assert_eq!(
        zero,
        sign(0, "zero-again.pem"),
        "same extensions, same profile"
    );
    assert_ne!(
        zero,
        sign(1, "one.pem"),
        "pathlen:0 and pathlen:1 must differ"
    );
}

#[test]
fn makefile_overrides_come_from_flags_and_from_the_makefiles_env_names() {
    let tmp = tempfile::tempdir().unwrap();
    meshtrust()
        .args([
            "certs",
            "cacerts",
            "east",
            "--key",
            "p256",
            "--root-key",
            "p256",
            "--root-cn",
            "Mesh Root",
            "--intermediate-days",
            "30",
        ])
        .env("INTERMEDIATE_ORG", "Acme")
        .env("ROOTCA_ORG", "Acme Root")
        .env("INTERMEDIATE_SAN_DNS", "istiod.mesh.svc")
        .arg("--dir")
        .arg(tmp.path())
        .assert()
        .success();
    let text = x509_text(tmp.path(), "east/ca-cert.pem");
    assert!(
        text.contains("Subject: O = Acme, CN = Intermediate CA, L = east"),
        "{text}"
    );
    assert!(
        text.contains("Issuer: O = Acme Root, CN = Mesh Root"),
        "{text}"
    );
    assert!(text.contains("DNS:istiod.mesh.svc"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    let end = openssl_fails(
        tmp.path(),
        &[
            "x509",
            "-in",
            "east/ca-cert.pem",
            "-noout",
            "-checkend",
            &(31 * 86400).to_string(),
        ],
    );
    assert!(end.contains("will expire"), "{end}");
}

#[test]
fn two_clusters_share_a_byte_identical_root_and_differ_in_everything_else() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &[
            "cluster1",
            "cluster2",
            "--key",
            "p256",
            "--root-key",
            "p256",
        ],
    );
    let d = tmp.path();
    let root = read(d.join("root-cert.pem"));
    assert_eq!(read(d.join("cluster1/root-cert.pem")), root);
    assert_eq!(read(d.join("cluster2/root-cert.pem")), root);
    assert_ne!(
        read(d.join("cluster1/ca-key.pem")),
        read(d.join("cluster2/ca-key.pem"))
    );
    let serial = |f: &str| openssl(d, &["x509", "-in", f, "-noout", "-serial"]);
    assert_ne!(
        serial("cluster1/ca-cert.pem"),
        serial("cluster2/ca-cert.pem")
    );
    assert!(x509_text(d, "cluster2/ca-cert.pem").contains("L = cluster2"));
    for c in ["cluster1", "cluster2"] {
        let ca = format!("{c}/ca-cert.pem");
        openssl(d, &["verify", "-CAfile", "root-cert.pem", &ca]);
    }
}

#[test]
fn a_later_cacerts_reuses_the_existing_root_as_make_does() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    let root = read(tmp.path().join("root-cert.pem"));
    meshtrust()
        .args(["certs", "cacerts", "cluster2", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("using existing root"));
    assert_eq!(read(tmp.path().join("root-cert.pem")), root);
    assert_eq!(read(tmp.path().join("cluster2/root-cert.pem")), root);
    // root-ca on an existing root keeps it too; --force replaces it.
    meshtrust()
        .args(["certs", "root-ca", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .success();
    assert_eq!(read(tmp.path().join("root-cert.pem")), root);
    meshtrust()
        .args(["certs", "root-ca", "--key", "p256", "--force", "--dir"])
        .arg(tmp.path())
        .assert()
        .success();
    assert_ne!(read(tmp.path().join("root-cert.pem")), root);
}

#[test]
fn an_existing_cluster_directory_is_an_error_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    let before = read(tmp.path().join("cluster1/ca-cert.pem"));
    meshtrust()
        .args(["certs", "cacerts", "cluster1", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cluster1` already exists (hint: pass `--force` to regenerate it)",
        ));
    assert_eq!(read(tmp.path().join("cluster1/ca-cert.pem")), before);
    generate(tmp.path(), &["cluster1", "--key", "p256", "--force"]);
    assert_ne!(read(tmp.path().join("cluster1/ca-cert.pem")), before);
    assert_eq!(
        files_in(tmp.path()),
        ["cluster1", "root-cert.pem", "root-key.pem"],
        "no staging directory left behind"
    );
}

#[test]
fn a_bad_key_type_is_rejected_with_the_valid_choices() {
    meshtrust()
        .args(["certs", "root-ca", "--key", "rsa1024"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown key type `rsa1024` (expected one of: rsa4096, rsa3072, rsa2048, p256, p384)",
        ));
}

#[test]
fn an_unwritable_directory_fails_before_any_key_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root ignores permissions; a file where a directory should be fails for everyone.
    let blocked = tmp.path().join("file");
    std::fs::write(&blocked, "not a directory").unwrap();
    meshtrust()
        .args(["certs", "cacerts", "cluster1", "--key", "p256", "--dir"])
        .arg(blocked.join("sub"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("cannot create directory")
                .and(predicate::str::contains("file/sub")),
        );
    assert_eq!(
        std::fs::read_to_string(&blocked).unwrap(),
        "not a directory"
    );
}

#[test]
fn a_corrupt_root_key_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    std::fs::write(
        tmp.path().join("root-key.pem"),
        concat!(
            "-----BEGIN ",
            "PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        ),
    )
    .unwrap();
    meshtrust()
        .args(["certs", "cacerts", "cluster2", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "root-key.pem` is not a usable private key",
        ));
    assert!(!tmp.path().join("cluster2").exists());
}

#[test]
fn a_root_certificate_that_does_not_match_its_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    // Put cluster1's key where the root's key belongs.
    std::fs::copy(
        tmp.path().join("cluster1/ca-key.pem"),
        tmp.path().join("root-key.pem"),
    )
    .unwrap();
    meshtrust()
        .args(["certs", "cacerts", "cluster2", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("root-cert.pem` does not match its key")
                .and(predicate::str::contains("root-key.pem")),
        );
    assert!(!tmp.path().join("cluster2").exists());
}

#[test]
fn a_lone_root_key_is_not_silently_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    std::fs::remove_file(tmp.path().join("root-cert.pem")).unwrap();
    let key = read(tmp.path().join("root-key.pem"));
    meshtrust()
        .args(["certs", "root-ca", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("root-key.pem` exists but")
                .and(predicate::str::contains("root-cert.pem` does not")),
        );
    assert_eq!(read(tmp.path().join("root-key.pem")), key);
}

#[test]
fn an_unsafe_cluster_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    meshtrust()
        .args(["certs", "cacerts", "../escape", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`../escape` is not a valid cluster name",
        ));
    assert!(files_in(tmp.path()).is_empty());
}

#[test]
fn the_secret_equals_kubectl_create_secret_generic() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    let c = tmp.path().join("cluster1");
    let ours = meshtrust()
        .args(["certs", "secret", "cluster1", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let Ok(kubectl) = Command::new("kubectl")
        .args([
            "create",
            "secret",
            "generic",
            "cacerts",
            "-n",
            "istio-system",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .args(
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem",
            ]
            .map(|f| format!("--from-file={}", c.join(f).display())),
        )
        .output()
    else {
        panic!(
            "kubectl is needed for this comparison (apt-get install kubectl, or the binary from dl.k8s.io)"
        );
    };
    assert!(
        kubectl.status.success(),
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    let theirs = String::from_utf8(kubectl.stdout)
        .unwrap()
        .replace("  creationTimestamp: null\n", "");
    assert_eq!(String::from_utf8(ours.stdout).unwrap(), theirs);

    // Written to a file, it is 0600: it holds the CA key.
    let out = tmp.path().join("secret.yaml");
    meshtrust()
        .args(["certs", "secret", "cluster1", "-o"])
        .arg(&out)
        .arg("--dir")
        .arg(tmp.path())
        .assert()
        .success();
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn the_secret_of_an_incomplete_directory_names_the_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    std::fs::remove_file(tmp.path().join("cluster1/cert-chain.pem")).unwrap();
    meshtrust()
        .args(["certs", "secret", "cluster1", "--dir"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("has no `cert-chain.pem`"));
}

#[test]
fn a_regenerated_root_names_the_clusters_that_still_hold_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &[
            "cluster1",
            "cluster2",
            "--key",
            "p256",
            "--root-key",
            "p256",
        ],
    );
    let dir = tmp.path().display().to_string();
    meshtrust()
        .args(["certs", "root-ca", "--key", "p256", "--force", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "warning: `{dir}/cluster1`, `{dir}/cluster2` hold another root than `{dir}/root-cert.pem`: clusters made under it cannot talk to them (hint: `meshtrust certs cacerts cluster1 cluster2 --force --dir {dir}` regenerates them under it)"
        )));
    // The next cluster made under the new root is warned about the same two.
    meshtrust()
        .args(["certs", "cacerts", "cluster3", "--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "`{dir}/cluster1`, `{dir}/cluster2` hold another root"
        )));
    // Twin: once they are regenerated (as the hint says), nothing is said.
    meshtrust()
        .args(["certs", "cacerts", "cluster1", "cluster2", "--force"])
        .args(["--key", "p256", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning").not());
    meshtrust()
        .args(["certs", "root-ca", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning").not());
}

fn end_date(dir: &Path, file: &str) -> String {
    openssl(dir, &["x509", "-in", file, "-noout", "-enddate"])
        .trim()
        .trim_start_matches("notAfter=")
        .to_owned()
}

#[test]
fn an_intermediate_asked_to_outlive_its_root_ends_with_it_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    meshtrust()
        .args([
            "certs",
            "cacerts",
            "cluster1",
            "--key",
            "p256",
            "--root-key",
            "p256",
        ])
        .args(["--root-days", "10", "--intermediate-days", "30", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "note: the intermediate of `cluster1` ends with its root on ",
        ))
        .stderr(predicate::str::contains(
            ", not in 30 days as asked: an intermediate cannot outlive its root",
        ));
    assert_eq!(
        end_date(tmp.path(), "cluster1/ca-cert.pem"),
        end_date(tmp.path(), "root-cert.pem")
    );
    // Twin: an intermediate within the root's life keeps its days, without a note.
    meshtrust()
        .args(["certs", "cacerts", "cluster2", "--key", "p256"])
        .args(["--intermediate-days", "5", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("note:").not());
    assert_ne!(
        end_date(tmp.path(), "cluster2/ca-cert.pem"),
        end_date(tmp.path(), "root-cert.pem")
    );
    openssl_fails(
        tmp.path(),
        &[
            "x509",
            "-in",
            "cluster2/ca-cert.pem",
            "-noout",
            "-checkend",
            &(6 * 86400).to_string(),
        ],
    );
}

#[test]
fn root_flags_an_existing_root_makes_moot_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    let root = tmp.path().join("root-cert.pem").display().to_string();
    meshtrust()
        .args(["certs", "cacerts", "cluster2", "--key", "p256"])
        .args(["--root-key", "p384", "--root-days", "7", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "warning: `--root-key`, `--root-days` are ignored: the root `{root}` already exists (hint: `--force-root` regenerates it)"
        )));
    meshtrust()
        .args(["certs", "root-ca", "--key", "p384", "--dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "warning: `--key` is ignored: the root `{root}` already exists (hint: `--force` regenerates it)"
        )));
    // Twin: the same flags where they are used, or defaults, draw no warning.
    let fresh = tempfile::tempdir().unwrap();
    meshtrust()
        .args(["certs", "cacerts", "cluster1", "--key", "p256"])
        .args(["--root-key", "p256", "--root-days", "7", "--dir"])
        .arg(fresh.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning").not());
    meshtrust()
        .args(["certs", "cacerts", "cluster2", "--key", "p256", "--dir"])
        .arg(fresh.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning").not());
}

#[test]
fn directories_meshtrust_makes_for_keys_are_0700_and_a_users_directory_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("new/certs");
    generate(&out, &["cluster1", "--key", "p256", "--root-key", "p256"]);
    assert_eq!(mode(&out), 0o700, "the output directory holds root-key.pem");
    assert_eq!(mode(tmp.path().join("new")), 0o700);
    assert_eq!(mode(out.join("cluster1")), 0o700, "it holds ca-key.pem");
    // Twin: a directory the user made is not changed.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o750)).unwrap();
    generate(&mine, &["cluster1", "--key", "p256", "--root-key", "p256"]);
    assert_eq!(mode(&mine), 0o750);
    assert_eq!(mode(mine.join("cluster1")), 0o700);
}

/// Runs `meshtrust ARGS` with stdout on a terminal (util-linux `script`), in `cwd`.
fn on_a_terminal(cwd: &Path, args: &[&str]) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin("meshtrust");
    let line = std::iter::once(bin.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(cwd)
        .env_remove("MESHTRUST_CERTS_DIR")
        .output()
        .expect("`script` (util-linux) runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
    )
}

#[test]
fn the_secrets_terminal_refusal_suggests_the_command_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        &tmp.path().join("certs"),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    let (code, text) = on_a_terminal(
        tmp.path(),
        &["certs", "secret", "cluster1", "--dir", "certs"],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(
            "(hint: pipe it, `meshtrust certs secret cluster1 --dir certs | kubectl apply -f -`, or pass `--output FILE`)"
        ),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    // Twin: without --dir, the hint has none either.
    let (code, text) = on_a_terminal(&tmp.path().join("certs"), &["certs", "secret", "cluster1"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("`meshtrust certs secret cluster1 | kubectl apply -f -`"),
        "{text}"
    );
}

#[test]
fn the_secret_written_to_the_terminal_by_path_is_refused_and_to_a_symlink_goes_to_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        &tmp.path().join("certs"),
        &["cluster1", "--key", "p256", "--root-key", "p256"],
    );
    // `--output /dev/stdout` on a terminal: the CA key would be shown, as without --output.
    let (code, text) = on_a_terminal(
        tmp.path(),
        &[
            "certs",
            "secret",
            "cluster1",
            "--dir",
            "certs",
            "--output",
            "/dev/stdout",
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(
            "refusing to write a Secret holding the CA key to the terminal `/dev/stdout`"
        ),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    // The twin: a symlink to a file: the file gets it (0600), the link stays.
    let target = tmp.path().join("secret-target.yaml");
    let link = tmp.path().join("secret.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::fs::write(&target, "old").unwrap();
    Command::cargo_bin("meshtrust")
        .unwrap()
        .current_dir(tmp.path())
        .args(["certs", "secret", "cluster1", "--dir", "certs", "--output"])
        .arg(&link)
        .assert()
        .success();
    use std::os::unix::fs::PermissionsExt as _;
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("kind: Secret")
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
