//! [`LocalTarget`]: the scenario interface on embedded clusters. No Docker, no
//! Kubernetes: every cluster is an in-process istiod and loopback workloads.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use rustls_pki_types::CertificateDer;

use super::ca::Identity;
use super::cluster::{Cluster, workload_error};
use super::workload;
use crate::pki::KeyAlg;
use crate::scenario::target::{
    App, CapturedChain, InstallOptions, InstallOutcome, Mode, Outcome, Target, TargetError,
    Transport, UpgradeOptions, WorkloadRef,
};

/// Clusters by name, created on first mention.
#[derive(Debug)]
pub struct LocalTarget {
    clusters: BTreeMap<String, Cluster>,
    workload_key: KeyAlg,
}

impl Default for LocalTarget {
    fn default() -> Self {
        LocalTarget::new()
    }
}

impl LocalTarget {
    /// Workloads with RSA 2048 keys, the agent's default.
    pub fn new() -> Self {
        LocalTarget::with_workload_key(KeyAlg::Rsa2048)
    }

    /// Workload keys of `alg` (P-256 is `ECC_SIGNATURE_ALGORITHM=ECDSA`).
    pub fn with_workload_key(alg: KeyAlg) -> Self {
        LocalTarget {
            clusters: BTreeMap::new(),
            workload_key: alg,
        }
    }

    pub fn cluster(&self, name: &str) -> Result<&Cluster, TargetError> {
        self.clusters
            .get(name)
            .ok_or_else(|| TargetError::UnknownCluster(name.to_owned()))
    }

    /// A cluster that must exist already (`plug_in` or `install` made it).
    fn existing_mut(&mut self, name: &str) -> Result<&mut Cluster, TargetError> {
        self.clusters
            .get_mut(name)
            .ok_or_else(|| TargetError::UnknownCluster(name.to_owned()))
    }

    fn cluster_mut(&mut self, name: &str) -> &mut Cluster {
        let key = self.workload_key;
        self.clusters
            .entry(name.to_owned())
            .or_insert_with(|| Cluster::new(name, key))
    }

    fn workload(&self, id: &WorkloadRef) -> Result<&workload::Workload, TargetError> {
        self.cluster(&id.cluster)?.workload(id)
    }
}

#[async_trait]
impl Target for LocalTarget {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn plug_in(&mut self, cluster: &str, bundle: Option<&Path>) -> Result<(), TargetError> {
        self.cluster_mut(cluster).plug_in(bundle);
        Ok(())
    }

    async fn install(
        &mut self,
        cluster: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        self.cluster_mut(cluster).install(options).await
    }

    async fn deploy(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        self.existing_mut(cluster)?.deploy(namespace, app).await
    }

    async fn set_peer_authentication(
        &mut self,
        cluster: &str,
        namespace: &str,
        mode: Mode,
    ) -> Result<(), TargetError> {
        self.cluster(cluster)?
            .set_peer_authentication(namespace, mode);
        Ok(())
    }

    async fn capture_chain(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
    ) -> Result<CapturedChain, TargetError> {
        Ok(self.workload(from)?.capture_from(self.workload(to)?).await)
    }

    async fn request(
        &self,
        from: &WorkloadRef,
        to: &WorkloadRef,
        transport: Transport,
        path: &str,
    ) -> Result<Outcome, TargetError> {
        Ok(self
            .workload(from)?
            .request_to(self.workload(to)?, transport, path)
            .await)
    }

    async fn issue_workload_certificate(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TargetError> {
        let c = self.cluster(cluster)?;
        let identity = Identity::new(namespace, service_account);
        let token = c.mint_token_for(namespace, identity.clone())?;
        let mesh = c.mesh_for(namespace)?;
        let id = WorkloadRef {
            cluster: cluster.to_owned(),
            namespace: namespace.to_owned(),
            name: service_account.to_owned(),
        };
        let alg = self.workload_key;
        let key = tokio::task::spawn_blocking(move || alg.generate())
            .await
            .expect("key generation does not panic")
            .map_err(|source| TargetError::Bundle {
                dir: "<workload key>".into(),
                cause: source,
            })?;
        workload::request_certificate(
            &id,
            &key,
            &identity.spiffe_id(&mesh.trust_domain),
            &token,
            mesh.ca_addr,
            &mesh.roots,
        )
        .await
        .map_err(|e| workload_error(&id, e))
    }

    async fn root_configmap(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(self.cluster(cluster)?.root_configmap(namespace))
    }

    async fn reload_cacerts(&mut self, cluster: &str, dir: &Path) -> Result<(), TargetError> {
        self.existing_mut(cluster)?.reload_cacerts(dir).map(|_| ())
    }

    /// The embedded istiod has no versions to change: an upgrade here is what an upgrade does to
    /// the CA, which is all the scenarios observe: istiod restarts, loads the same plugged files
    /// by the rules of `options.version`, and every workload restarts and gets a new certificate.
    async fn upgrade(
        &mut self,
        cluster: &str,
        options: &UpgradeOptions,
    ) -> Result<InstallOutcome, TargetError> {
        self.existing_mut(cluster)?.upgrade(options.version).await
    }

    async fn install_revision(
        &mut self,
        cluster: &str,
        revision: &str,
        options: &InstallOptions,
    ) -> Result<InstallOutcome, TargetError> {
        self.existing_mut(cluster)?
            .install_revision(revision, options)
            .await
    }

    async fn set_namespace_revision(
        &mut self,
        cluster: &str,
        namespace: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        self.existing_mut(cluster)?
            .set_namespace_revision(namespace, revision)
    }

    /// A restart is a new workload: a new key, a certificate from its namespace's istiod.
    async fn restart(
        &mut self,
        cluster: &str,
        namespace: &str,
        app: App,
    ) -> Result<(), TargetError> {
        let c = self.existing_mut(cluster)?;
        c.workload(&WorkloadRef::new(cluster, namespace, app))?;
        c.deploy(namespace, app).await
    }

    async fn uninstall_revision(
        &mut self,
        cluster: &str,
        revision: &str,
    ) -> Result<(), TargetError> {
        self.existing_mut(cluster)?.uninstall_revision(revision)
    }

    async fn teardown(&mut self) -> Result<(), TargetError> {
        // Dropping a cluster stops its CA server and every workload listener.
        self.clusters.clear();
        Ok(())
    }
}
