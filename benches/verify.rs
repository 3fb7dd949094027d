//! `meshtrust verify` against the doc's pipeline on the same files.
//!
//! Run: `cargo bench --bench verify`. Prints the median of 30 runs of: the library call
//! (read bundle + chain, relate, every check), the `meshtrust verify` process, and the
//! istio.io doc's shell pipeline (split the chain with awk, `openssl x509 -text` of
//! cert 2 and 3 and of the plugged files, two `diff`s, `openssl verify`), with ratios.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshtrust::chain::{self, Expectations};
use meshtrust::pki::{self, Bundle, IntermediateSpec, KeyAlg, RootSpec};
use rcgen::{
    CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
};

const RUNS: usize = 30;

const DOC_PIPELINE: &str = r#"
set -e
cd "$WORK"
awk '/-----BEGIN CERTIFICATE-----/{n++} n{print > ("cert" n ".pem")}' chain.pem
openssl x509 -in cert3.pem -text -noout > served-root.txt
openssl x509 -in "$CACERTS/root-cert.pem" -text -noout > plugged-root.txt
diff -s served-root.txt plugged-root.txt > /dev/null
openssl x509 -in cert2.pem -text -noout > served-ca.txt
openssl x509 -in "$CACERTS/ca-cert.pem" -text -noout > plugged-ca.txt
diff -s served-ca.txt plugged-ca.txt > /dev/null
cat "$CACERTS/ca-cert.pem" "$CACERTS/root-cert.pem" > ca-and-root.pem
openssl verify -CAfile ca-and-root.pem cert1.pem > /dev/null
"#;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The Makefile's real profile: RSA 4096 CAs, an RSA 2048 workload key.
    let made = pki::make::cacerts(
        dir.path(),
        &RootSpec::default(),
        &[IntermediateSpec::new("cluster1")],
        false,
        false,
    )
    .expect("cacerts");
    let cacerts = made.clusters[0].1.clone();
    let chain_pem = write_chain(&cacerts);
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::copy(&chain_pem, work.path().join("chain.pem")).expect("copy chain");

    let library = median(|| {
        let bundle = Bundle::read(&cacerts).expect("bundle");
        let served = chain::read_chain(&chain_pem).expect("chain");
        let v = chain::verify_chain(&served, &bundle, &[], &Expectations::now()).expect("verdict");
        assert!(v.conformant(), "{}", chain::render::text(&v));
    });
    let process = median(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .arg("verify")
            .arg("--cacerts")
            .arg(&cacerts)
            .arg(&chain_pem)
            .output()
            .expect("meshtrust runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    });
    let doc = median(|| {
        let out = Command::new("sh")
            .args(["-c", DOC_PIPELINE])
            .env("WORK", work.path())
            .env("CACERTS", &cacerts)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });

    println!("median of {RUNS} runs (RSA 4096 CAs, RSA 2048 leaf, 4-certificate chain)");
    println!("  library verify_chain          {:>9.3} ms", ms(library));
    println!("  meshtrust verify (process)    {:>9.3} ms", ms(process));
    println!("  doc pipeline (sh + openssl)   {:>9.3} ms", ms(doc));
    println!(
        "  ratio process / doc           {:>9.3}",
        ms(process) / ms(doc)
    );
    println!(
        "  ratio library / doc           {:>9.3}",
        ms(library) / ms(doc)
    );
}

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm the page cache and the binary
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An istiod-like leaf below the cluster's intermediate, served as istiod serves it.
fn write_chain(cacerts: &Path) -> std::path::PathBuf {
    let ca = pki::Ca::load(&cacerts.join("ca-cert.pem"), &cacerts.join("ca-key.pem")).expect("CA");
    let key = KeyAlg::Rsa2048.generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(
        "spiffe://cluster.local/ns/foo/sa/httpbin"
            .try_into()
            .expect("URI"),
    )];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(2);
    params.not_after = now + time::Duration::hours(24);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.is_ca = IsCa::NoCa;
    let mut bc = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
    bc.set_criticality(true);
    params.custom_extensions = vec![bc];
    let leaf = params
        .signed_by(&key, &ca.issuer().expect("issuer"))
        .expect("leaf");
    let bundle = Bundle::read(cacerts).expect("bundle");
    let signing = bundle.signing().expect("signing");
    let mut pem = leaf.pem();
    for c in signing.cert_chain.iter().chain(&signing.roots) {
        pem.push_str(&pki::to_pem(c));
    }
    let path = cacerts.parent().expect("parent").join("chain.pem");
    std::fs::write(&path, pem).expect("write chain");
    path
}
