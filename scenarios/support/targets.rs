//! Targets for the scenario tests: the one under test, and sabotaged ones that
//! misbehave in a named way, so that every scenario is seen failing too.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use meshtrust::mesh::LocalTarget;
use meshtrust::pki::KeyAlg;
use meshtrust::scenario::{
    self, CapturedChain, InstallOptions, InstallOutcome, Mode, Outcome, RunOptions, RunOutput,
    Scenario, Target, TargetError, Transport, UpgradeOptions, WorkloadRef,
};
use rustls_pki_types::CertificateDer;

/// Runs one scenario on the local target with the real profile (RSA 4096 CAs,
/// RSA 2048 workloads), as `meshtrust run` does.
pub fn run_local(scenario: Scenario) -> RunOutput {
    run_on(LocalTarget::new, scenario, KeyAlg::Rsa4096)
}

pub fn run_on<T: Target>(make: impl Fn() -> T, scenario: Scenario, key: KeyAlg) -> RunOutput {
    run_in(make, scenario, key, None)
}

/// As [`run_on`], with the run's certificates in `workdir`.
pub fn run_in<T: Target>(
    make: impl Fn() -> T,
    scenario: Scenario,
    key: KeyAlg,
    workdir: Option<PathBuf>,
) -> RunOutput {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = RunOptions {
        scenarios: vec![scenario],
        key,
        workdir,
        ..RunOptions::default()
    };
    rt.block_on(scenario::run(make, &opts, &|_, _| {}))
        .expect("the run's certificates are made")
}

/// Shows the whole story when a scenario did not do what the test expects.
pub fn story(out: &RunOutput) -> String {
    out.report
        .scenarios
        .iter()
        .map(|s| {
            format!(
                "{}: passed={}\nreasons:\n  {}\nobservations:\n  {}",
                s.name,
                s.passed,
                s.reasons.join("\n  "),
                s.observations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )
        })
        .collect()
}

/// A way for a target to get the doc's procedure wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// `plug_in(cluster, None)` plugs the mesh's cluster1 bundle anyway.
    PlugsInWhenAskedNotTo,
    /// `plug_in` never creates the secret: istiod self-signs.
    NeverPlugsIn,
    /// Every cluster gets the given cluster's bundle from the shared-root mesh (no foreign roots).
    SharesOneRoot,
    /// cluster2 gets its bundle from under another root (`RunCerts`' foreign mesh): the
    /// clusters' roots differ whatever the scenario plugs.
    SplitsTheRoot,
    /// PeerAuthentication STRICT is not applied (the namespace stays PERMISSIVE).
    IgnoresStrict,
    /// Reloads are dropped on the floor.
    IgnoresReload,
    /// The upgrade re-plugs cluster2's bundle (same root, another intermediate) before istiod
    /// restarts: an upgrade procedure that recreated `cacerts` from the wrong directory.
    UpgradeReplugsAnotherBundle,
    /// The broken bundles are replaced by the good cluster1 bundle.
    FixesBadBundles,
    /// istiod exits at start for a reason that is not the bundle's (a crash, a bad flag).
    CrashesAtStart,
    /// The canary revision is installed without access to `cacerts` (it self-signs).
    CanaryWithoutCacerts,
    /// Moving a namespace to another revision does nothing (a tag move that restarts nothing).
    IgnoresRevisionMove,
}

pub struct Sabotaged<T: Target = LocalTarget> {
    inner: T,
    how: Sabotage,
    /// The run's certificates directory (`RunCerts` layout).
    run_dir: PathBuf,
}

impl Sabotaged {
    pub fn new(how: Sabotage, run_dir: &Path) -> Self {
        Sabotaged::around(LocalTarget::with_workload_key(KeyAlg::P256), how, run_dir)
    }
}

impl<T: Target> Sabotaged<T> {
    /// `inner` (any target), sabotaged `how`.
    pub fn around(inner: T, how: Sabotage, run_dir: &Path) -> Self {
        Sabotaged {
            inner,
            how,
            run_dir: run_dir.to_owned(),
        }
    }

    /// The shared-root mesh's bundle for `cluster` (cluster1 for the `bad-*` clusters).
    fn good_bundle(&self, cluster: &str) -> PathBuf {
        let name = if cluster.starts_with("cluster") {
            cluster
        } else {
            "cluster1"
        };
        self.run_dir.join("mesh").join(name)
    }
}

/// Runs `scenario` on the target `make` makes, sabotaged `how` (P-256 CAs).
#[allow(dead_code)] // only the e2e-tools tier sabotages another target
pub fn run_sabotaged_on<T: Target>(
    make: impl Fn() -> T,
    scenario: Scenario,
    how: Sabotage,
) -> RunOutput {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_owned();
    run_in(
        move || Sabotaged::around(make(), how, &run_dir),
        scenario,
        KeyAlg::P256,
        Some(dir.path().to_owned()),
    )
}

/// Runs `scenario` on a target sabotaged `how` (P-256 CAs: the key size is not under test).
pub fn run_sabotaged(scenario: Scenario, how: Sabotage) -> RunOutput {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_owned();
    run_in(
        move || Sabotaged::new(how, &run_dir),
        scenario,
        KeyAlg::P256,
        Some(dir.path().to_owned()),
    )
}

#[async_trait]
impl<T: Target> Target for Sabotaged<T> {
    fn name(&self) -> &'static str {
        "sabotaged"
    }

    fn istio_version(&self) -> meshtrust::scenario::IstioVersion {
        self.inner.istio_version()
    }

    async fn keep_evidence(&mut self, scenario: &str) {
        self.inner.keep_evidence(scenario).await
    }

    fn milestones(&self) -> Vec<meshtrust::scenario::Milestone> {
        self.inner.milestones()
    }

    async fn plug_in(&mut self, cluster: &str, bundle: Option<&Path>) -> Result<(), TargetError> {
        let replaced = match (self.how, bundle) {
            (Sabotage::NeverPlugsIn, _) => None,
            (Sabotage::PlugsInWhenAskedNotTo, None) => Some(self.good_bundle("cluster1")),
            (Sabotage::SharesOneRoot | Sabotage::FixesBadBundles, Some(_)) => {
                Some(self.good_bundle(cluster))
            }
            (Sabotage::SplitsTheRoot, Some(_)) if cluster == "cluster2" => {
                Some(self.run_dir.join("foreign").join(cluster))
            }
            (_, b) => b.map(Path::to_owned),
        };
        self.inner.plug_in(cluster, replaced.as_deref()).await
    }

    async fn install(
        &mut self,
        cluster: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        let outcome = self.inner.install(cluster, options).await?;
        if self.how == Sabotage::CrashesAtStart {
            let reason = "flag provided but not defined: -meshConfigg".to_owned();
            return Ok(InstallOutcome::Refused {
                log: vec![reason.clone()],
                reason,
            });
        }
        Ok(outcome)
    }

    async fn deploy(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: scenario::App,
    ) -> Result<(), TargetError> {
        self.inner.deploy(cluster, namespace, app).await
    }

    async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        namespace: &str,
        mode: Mode,
    ) -> Result<(), TargetError> {
        if self.how == Sabotage::IgnoresStrict && mode == Mode::Strict {
            return Ok(());
        }
        self.inner
            .set_peer_authentication(cluster, namespace, mode)
            .await
    }

    async fn capture_chain(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
    ) -> Result<CapturedChain, TargetError> {
        self.inner.capture_chain(from, to).await
    }

    async fn request(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        transport: Transport,
        path: &str,
    ) -> Result<Outcome, TargetError> {
        self.inner.request(from, to, transport, path).await
    }

    async fn issue_workload_certificate(
        &self,
        cluster: &str,
        namespace: &str,
        sa: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        self.inner
            .issue_workload_certificate(cluster, namespace, sa)
            .await
    }

    async fn root_configmap(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        self.inner.root_configmap(cluster, namespace).await
    }

    async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<(), TargetError> {
        if self.how == Sabotage::IgnoresReload {
            return Ok(());
        }
        self.inner.reload_cacerts(cluster, dir).await
    }

    async fn upgrade(
        &mut self,
        cluster: &str,
        options: &UpgradeOptions,
    ) -> Result<InstallOutcome, TargetError> {
        if self.how == Sabotage::UpgradeReplugsAnotherBundle {
            let other = self.good_bundle("cluster2");
            self.inner.plug_in(cluster, Some(&other)).await?;
        }
        self.inner.upgrade(cluster, options).await
    }

    async fn install_revision(
        &mut self,
        cluster: &str,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        if self.how != Sabotage::CanaryWithoutCacerts {
            return self
                .inner
                .install_revision(cluster, revision, options)
                .await;
        }
        // The new control plane mounts no secret: it starts with no bundle at all.
        self.inner.plug_in(cluster, None).await?;
        let outcome = self
            .inner
            .install_revision(cluster, revision, options)
            .await;
        let good = self.good_bundle(cluster);
        self.inner.plug_in(cluster, Some(&good)).await?;
        outcome
    }

    async fn set_namespace_revision(
        &mut self,
        cluster: &str,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        if self.how == Sabotage::IgnoresRevisionMove {
            return Ok(());
        }
        self.inner
            .set_namespace_revision(cluster, namespace, revision)
            .await
    }

    async fn restart(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: scenario::App,
    ) -> Result<(), TargetError> {
        self.inner.restart(cluster, namespace, app).await
    }

    async fn uninstall_revision(
        &mut self,
        cluster: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        self.inner.uninstall_revision(cluster, revision).await
    }

    async fn teardown(&mut self) -> Result<(), TargetError> {
        self.inner.teardown().await
    }
}
