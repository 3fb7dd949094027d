//! The plug-in CA doc on real Istio: one kind cluster, cacerts plugged in, Istio installed,
//! httpbin and sleep under STRICT mTLS; the chain httpbin presents is captured in sleep's pod.
//! Needs docker, kind, istioctl and the static probe (`just probe-static`); fails, naming what
//! is missing, where they are not.

use meshtrust::kube::istio::CaMode;
use meshtrust::kube::workloads::MtlsMode;
use meshtrust::kube::{KindRun, KindTarget, ToolSearch};
use meshtrust::pki::{IntermediateSpec, KeyAlg, RootSpec, make};

use super::kube_preflight::{istioctl_phases, require_tools};

fn certs(dir: &std::path::Path, clusters: &[&str]) {
    let root = RootSpec {
        key: KeyAlg::P256,
        ..RootSpec::default()
    };
    let specs: Vec<IntermediateSpec> = clusters
        .iter()
        .map(|c| {
            let mut s = IntermediateSpec::new(*c);
            s.key = KeyAlg::P256;
            s
        })
        .collect();
    make::cacerts(dir, &root, &specs, false, false).expect("certificates");
}

fn run_config(certs_dir: &std::path::Path) -> KindRun {
    let mut run = KindRun::single("meshtrust-e2e");
    run.certs_dir = certs_dir.to_owned();
    run.kind_config = concat!(env!("CARGO_MANIFEST_DIR"), "/kind-config.yaml").into();
    run.artifacts = concat!(env!("CARGO_MANIFEST_DIR"), "/target/meshtrust/artifacts").into();
    run.probe_binary = std::env::var_os("MESHTRUST_PROBE")
        .map(Into::into)
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/x86_64-unknown-linux-gnu/release/meshtrust-probe"
            )
            .into()
        });
    run.keep = meshtrust::kube::kind::keep_from_env();
    run
}

#[test]
fn the_plugged_intermediate_and_root_are_what_httpbin_presents() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    certs(tmp.path(), &["cluster1"]);
    let run = run_config(tmp.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut target = KindTarget::start(run, &ToolSearch::from_env(istioctl_phases()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let outcome = async {
            target.plug_in("cluster1").await?;
            let mode = target.install("cluster1", 0).await?;
            assert_eq!(
                mode,
                Some(CaMode::PluggedIn),
                "istiod did not log `Use local CA certificate`"
            );
            target.deploy("cluster1").await?;
            target
                .set_peer_authentication("cluster1", MtlsMode::Strict)
                .await?;
            let captured = target.capture_chain("cluster1").await?;
            let der = captured.chain_der()?;
            let plugged = |f: &str| {
                let text = std::fs::read_to_string(tmp.path().join("cluster1").join(f)).unwrap();
                pem::parse(text).unwrap().into_contents()
            };
            // ISTIO-FACTS §3: leaf, intermediate, root, root with the Makefile layout.
            assert_eq!(der.len(), 4, "chain length");
            assert_eq!(
                der[1],
                plugged("ca-cert.pem"),
                "certificate 2 is the plugged intermediate"
            );
            assert_eq!(
                der[2],
                plugged("root-cert.pem"),
                "certificate 3 is the plugged root"
            );
            let root_cm = target.root_configmap("cluster1").await?;
            assert_eq!(
                root_cm.as_deref(),
                Some(
                    std::fs::read_to_string(tmp.path().join("cluster1/root-cert.pem"))
                        .unwrap()
                        .as_str()
                )
            );
            Ok::<_, meshtrust::kube::KubeError>(())
        }
        .await;
        if let Err(e) = &outcome {
            target.failed();
            eprintln!("{e}");
        }
        let cleanup = target.teardown().await;
        outcome.unwrap_or_else(|e| panic!("{e}\ncleanup: {cleanup:?}"));
    });
}
