//! Capture time: the probe (in process, and as a process like `kubectl exec` runs it) against
//! `openssl s_client -showcerts`, the doc's tool, on the same local STRICT-like `s_server`
//! (TLS 1.3, client certificate demanded, none given: the doc's exact situation).
//!
//! `cargo bench -p meshtrust-probe --bench capture`; needs `openssl` on PATH.

#[path = "../tests/peers/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meshtrust_probe::{ClientAuthOutcome, ProbeOptions, TlsVersions, probe};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use support::openssl::{SServer, ServerOptions};
use support::pki::{KeyType, Pki};
use support::probe_bin::{BIN, run_probe};

const RUNS: usize = 30;
const WARMUP: usize = 3;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(name: &str, mut once: impl FnMut()) -> Duration {
    for _ in 0..WARMUP {
        once();
    }
    let samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            once();
            started.elapsed()
        })
        .collect();
    let m = median(samples.clone());
    let (min, max) = (samples.iter().min().unwrap(), samples.iter().max().unwrap());
    println!("{name:<40} median {m:>10.2?}  (min {min:.2?}, max {max:.2?}, {RUNS} runs)");
    m
}

fn main() {
    let pki = Pki::new(KeyType::Rsa2048);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let addr = server.addr();

    let in_process = measure("probe (library, in process)", || {
        let options = ProbeOptions {
            versions: TlsVersions::Tls13Only,
            ..ProbeOptions::new(&addr)
        };
        let capture = probe(&options).expect("probe failed");
        assert_eq!(capture.chain.len(), 4);
        assert!(matches!(
            capture.client_auth,
            ClientAuthOutcome::Refused { .. }
        ));
    });

    let binary = measure("probe (meshtrust-probe process)", || {
        let run = run_probe([addr.as_str(), "--tls13"]);
        run.expect_code(0);
    });

    let s_client = measure("openssl s_client -showcerts", || {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-showcerts", "-tls1_3"])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run openssl");
        let certs = CertificateDer::pem_slice_iter(&out.stdout).count();
        assert_eq!(certs, 4, "s_client printed {certs} certificates");
    });

    let ratio = |probe: Duration| probe.as_secs_f64() / s_client.as_secs_f64();
    println!("ratio in process / s_client: {:.2}", ratio(in_process));
    println!("ratio process    / s_client: {:.2}", ratio(binary));
    println!("(binary: {BIN})");
}
