//! `cargo bench --bench certs`: root + 2 clusters, meshtrust vs the Makefile's openssl recipe.
//!
//! Prints medians over RUNS runs (env `MESHTRUST_BENCH_RUNS`, default 15). RSA 4096
//! key generation time varies a lot from key to key (prime search), hence medians.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshtrust::pki::{self, IntermediateSpec, KeyAlg, RootSpec};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn meshtrust_bundle(key: KeyAlg) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let root = RootSpec {
        key,
        ..RootSpec::default()
    };
    let clusters: Vec<_> = ["cluster1", "cluster2"]
        .map(|c| IntermediateSpec {
            key,
            ..IntermediateSpec::new(c)
        })
        .into();
    let start = Instant::now();
    pki::make::cacerts(tmp.path(), &root, &clusters, false, false).unwrap();
    start.elapsed()
}

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// The Makefile's recipe, step for step (`make root-ca cluster1-cacerts cluster2-cacerts`).
fn makefile_bundle() -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("root-ca.conf"), "[ req ]\nprompt = no\ndefault_md = sha256\nx509_extensions = req_ext\ndistinguished_name = req_dn\n[ req_ext ]\nsubjectKeyIdentifier = hash\nbasicConstraints = critical, CA:true\nkeyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\n[ req_dn ]\nO = Istio\nCN = Root CA\n").unwrap();
    for c in ["cluster1", "cluster2"] {
        std::fs::create_dir(d.join(c)).unwrap();
        std::fs::write(d.join(c).join("intermediate.conf"), format!("[ req ]\nprompt = no\ndefault_md = sha256\nreq_extensions = req_ext\ndistinguished_name = req_dn\n[ req_ext ]\nsubjectKeyIdentifier = hash\nbasicConstraints = critical, CA:true, pathlen:0\nkeyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\nsubjectAltName=@san\n[ san ]\nDNS.1 = istiod.istio-system.svc\n[ req_dn ]\nO = Istio\nCN = Intermediate CA\nL = {c}\n")).unwrap();
    }
    let start = Instant::now();
    sh(d, "openssl genrsa -out root-key.pem 4096 2>/dev/null
        openssl req -sha256 -new -key root-key.pem -config root-ca.conf -out root-cert.csr
        openssl x509 -req -sha256 -days 3650 -signkey root-key.pem -extensions req_ext -extfile root-ca.conf -in root-cert.csr -out root-cert.pem 2>/dev/null
        for c in cluster1 cluster2; do
          openssl genrsa -out $c/ca-key.pem 4096 2>/dev/null
          openssl req -new -config $c/intermediate.conf -key $c/ca-key.pem -out $c/cluster-ca.csr
          openssl x509 -req -days 3650 -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -extensions req_ext -extfile $c/intermediate.conf -in $c/cluster-ca.csr -out $c/ca-cert.pem 2>/dev/null
          cat $c/ca-cert.pem root-cert.pem > $c/cert-chain.pem
          cp root-cert.pem $c
        done");
    start.elapsed()
}

fn main() {
    // `cargo test --benches` runs this once with --bench absent: keep that quick.
    let runs: usize = std::env::var("MESHTRUST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let runs = if std::env::args().any(|a| a == "--bench") {
        runs
    } else {
        1
    };
    let p256 = median((0..runs).map(|_| meshtrust_bundle(KeyAlg::P256)).collect());
    let rsa = median(
        (0..runs)
            .map(|_| meshtrust_bundle(KeyAlg::Rsa4096))
            .collect(),
    );
    let make = median((0..runs).map(|_| makefile_bundle()).collect());
    println!("root + 2 clusters, median of {runs} runs");
    println!("  meshtrust p256     {:>9.1} ms", p256.as_secs_f64() * 1e3);
    println!("  meshtrust rsa4096  {:>9.1} ms", rsa.as_secs_f64() * 1e3);
    println!(
        "  openssl Makefile   {:>9.1} ms  (rsa4096)",
        make.as_secs_f64() * 1e3
    );
    println!(
        "  ratio rsa4096      {:>9.2}x of the Makefile",
        rsa.as_secs_f64() / make.as_secs_f64()
    );
}
