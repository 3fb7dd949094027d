//! The embedded CA under load: 500 concurrent `CreateCertificate` calls over
//! gRPC+TLS (one HTTP/2 connection per 50 callers, as sidecars share none), all
//! of which must succeed. Prints throughput and latency percentiles.
//!
//! The CA signs with an RSA 4096 intermediate, as the Makefile makes; callers use
//! P-256 keys generated before the clock starts, so only the CA is measured.

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

    let mut work = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let identity = Identity::new("load", format!("sa-{i}"));
        let token = cluster.mint_token(identity.clone()).unwrap();
        let key = KeyAlg::P256.generate().unwrap();
        let csr = grpc::agent_csr(&key, &identity.spiffe_id("cluster.local")).unwrap();
        work.push((token, csr));
    }
    let mut clients = Vec::new();
    for _ in 0..CALLS.div_ceil(CALLERS_PER_CONNECTION) {
        clients.push(
            CaClient::connect(addr, &roots)
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
            Ok(n) => failures.push(format!("a chain of {n} certificates")),
            Err(status) => failures.push(status.to_string()),
        }
    }
    let wall = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "ca_load: {CALLS} concurrent CSRs over gRPC+TLS, RSA 4096 signer: {} ok, {} failed",
        CALLS - failures.len(),
        failures.len()
    );
    println!(
        "  wall {:.3} s, throughput {:.0} certificates/s",
        wall.as_secs_f64(),
        CALLS as f64 / wall.as_secs_f64()
    );
    println!(
        "  latency p50 {} p99 {} max {}",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    );
    if !failures.is_empty() {
        eprintln!("first failure: {}", failures[0]);
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
