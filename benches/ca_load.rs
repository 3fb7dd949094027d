//! The embedded CA and Istio's own CA server, side by side under the same load: 500
//! concurrent `CreateCertificate` calls over gRPC+TLS (one HTTP/2 connection per 50
//! callers), all of which must succeed. Prints throughput and latency percentiles for
//! both and their ratio, measured in one run (these machines are noisy).
//!
//! Both sign with the same RSA 4096 intermediate, as the Makefile makes; callers use
//! P-256 keys generated before the clock starts, so only the CA is measured. Istio's
//! server is `istio-oracle serve` (`just oracle`); without it the bench says so and
//! measures the embedded CA alone.

use std::time::{Duration, Instant};

use meshtrust::mesh::LocalTarget;
use meshtrust::mesh::ca::Identity;
use meshtrust::mesh::grpc::{self, CaClient};
use meshtrust::pki::{self, IntermediateSpec, KeyAlg, RootSpec};
use meshtrust::scenario::{InstallOptions, Target};

const CALLS: usize = 500;
const CALLERS_PER_CONNECTION: usize = 50;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let made = pki::make::cacerts(
        dir.path(),
        &RootSpec::default(),
        &[IntermediateSpec::new("cluster1")],
        false,
        false,
    )
    .expect("root and intermediate");
    let mut target = LocalTarget::new();
    target
        .plug_in("cluster1", Some(&made.clusters[0].1))
        .await
        .unwrap();
    target
        .install("cluster1", &InstallOptions::default())
        .await
        .unwrap();
    let cluster = target.cluster("cluster1").unwrap();
    let (addr, roots) = (cluster.ca_addr().unwrap(), cluster.roots().unwrap());

    let mut embedded_work = Vec::with_capacity(CALLS);
    let mut oracle_work = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let identity = Identity::new("load", format!("sa-{i}"));
        let spiffe_id = identity.spiffe_id("cluster.local");
        let token = cluster.mint_token(identity.clone()).unwrap();
        let key = KeyAlg::P256.generate().unwrap();
        let csr = grpc::agent_csr(&key, &spiffe_id).unwrap();
        oracle_work.push((format!("{ORACLE_TOKEN_PREFIX}{spiffe_id}"), csr.clone()));
        embedded_work.push((token, csr));
    }

    let oracle_bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(ORACLE);
    let oracle = if oracle_bin.is_file() {
        Some(OracleServer::start(&oracle_bin, &made.clusters[0].1))
    } else {
        println!(
            "ca_load: `{}` is missing (`just oracle`): measuring the embedded CA alone",
            oracle_bin.display()
        );
        None
    };

    let mut failed = false;
    let embedded = run("embedded CA", addr, &roots, embedded_work).await;
    failed |= embedded.failures > 0;
    if let Some(server) = &oracle {
        let istio = run(
            "Istio's CA (istio-oracle serve)",
            server.addr,
            &roots,
            oracle_work,
        )
        .await;
        failed |= istio.failures > 0;
        println!(
            "  ratio embedded/Istio: throughput {:.2}x, p99 latency {:.2}x",
            embedded.throughput / istio.throughput,
            embedded.p99.as_secs_f64() / istio.p99.as_secs_f64()
        );
    }
    if failed {
        std::process::exit(1);
    }
}

/// Istio's CA for the oracle's token scheme (oracle/glue sign.go `TokenPrefix`).
const ORACLE_TOKEN_PREFIX: &str = "meshtrust-test-token:";
/// The newest oracle build.
const ORACLE: &str = "target/oracle/istio-oracle-1.31";

struct OracleServer {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl OracleServer {
    fn start(bin: &std::path::Path, cacerts: &std::path::Path) -> OracleServer {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(bin)
            .args([
                "serve".as_ref(),
                cacerts.as_os_str(),
                "--addr".as_ref(),
                "127.0.0.1:0".as_ref(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("istio-oracle starts");
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut json = String::new();
        // `serve` prints one JSON object ({"addr": "..."}) once it accepts.
        while !json.trim_end().ends_with('}') {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "istio-oracle serve exited: {json}"
            );
            json.push_str(&line);
        }
        let v: serde_json::Value = serde_json::from_str(&json).expect("serve's JSON");
        let addr = v["addr"]
            .as_str()
            .expect("an address")
            .parse()
            .expect("a socket address");
        OracleServer { child, addr }
    }
}

impl Drop for OracleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Stats {
    throughput: f64,
    p99: Duration,
    failures: usize,
}

async fn run(
    name: &str,
    addr: std::net::SocketAddr,
    roots: &[rustls_pki_types::CertificateDer<'static>],
    work: Vec<(String, String)>,
) -> Stats {
    let mut clients = Vec::new();
    for _ in 0..CALLS.div_ceil(CALLERS_PER_CONNECTION) {
        clients.push(
            CaClient::connect(addr, roots)
                .await
                .expect("a connection to the CA"),
        );
    }
    let start = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .enumerate()
        .map(|(i, (token, csr))| {
            let mut client = clients[i / CALLERS_PER_CONNECTION].clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let chain = client.create_certificate(&csr, 0, Some(&token)).await;
                (t.elapsed(), chain.map(|c| c.len()))
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(CALLS);
    let mut failures = Vec::new();
    for task in tasks {
        let (latency, result) = task.await.expect("the task does not panic");
        latencies.push(latency);
        match result {
            Ok(4) => {}
            Ok(n) => failures.push(format!("a chain of {n} elements")),
            Err(status) => failures.push(status.to_string()),
        }
    }
    let wall = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let throughput = CALLS as f64 / wall.as_secs_f64();
    println!(
        "ca_load [{name}]: {CALLS} concurrent CSRs over gRPC+TLS, RSA 4096 signer: {} ok, {} failed",
        CALLS - failures.len(),
        failures.len()
    );
    println!(
        "  wall {:.3} s, throughput {throughput:.0} certificates/s, latency p50 {} p99 {} max {}",
        wall.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    );
    if let Some(first) = failures.first() {
        eprintln!("  first failure: {first}");
    }
    Stats {
        throughput,
        p99: pct(0.99),
        failures: failures.len(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
