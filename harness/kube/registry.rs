//! The local OCI registry that serves the probe image to distroless proxies: CNCF Distribution
//! started with testcontainers on the `kind` docker network, wired into every node through
//! containerd's `certs.d` (kind's documented local-registry pattern, enabled by the
//! `config_path` patch in `kind-config.yaml`). `kind load docker-image` is the fallback.

use std::path::Path;

use testcontainers_modules::cncf_distribution::CncfDistribution;
use testcontainers_modules::testcontainers::core::{ContainerPort, IntoContainerPort as _};
use testcontainers_modules::testcontainers::runners::AsyncRunner as _;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt as _};

use super::error::KubeError;
use super::process::Cmd;

/// The registry container's name: nodes reach it by this name on the `kind` network.
pub const REGISTRY_NAME: &str = "meshtrust-registry";
/// The port the host pushes to; `localhost:5001` is also the name pods pull from, mapped to the
/// container by each node's `hosts.toml` (kind's docs use the same port).
pub const REGISTRY_HOST_PORT: u16 = 5001;
/// kind puts its nodes on this docker network.
pub const KIND_NETWORK: &str = "kind";
pub const PROBE_IMAGE: &str = "meshtrust-probe";

/// The image reference pods use: `localhost:5001/meshtrust-probe:<tag>`.
pub fn probe_image(tag: &str) -> String {
    format!("localhost:{REGISTRY_HOST_PORT}/{PROBE_IMAGE}:{tag}")
}

/// `/etc/containerd/certs.d/localhost:5001`, in each node.
pub fn certs_d_dir() -> String {
    format!("/etc/containerd/certs.d/localhost:{REGISTRY_HOST_PORT}")
}

/// containerd's host config: pulls of `localhost:5001/...` go to the registry container.
pub fn hosts_toml() -> String {
    format!("[host.\"http://{REGISTRY_NAME}:5000\"]\n")
}

/// The two commands that wire one node to the registry (kind's local-registry script).
pub fn wire_node_cmds(docker: &Path, node: &str) -> [Cmd; 2] {
    let dir = certs_d_dir();
    [
        Cmd::new(docker).args(["exec", node, "mkdir", "-p", &dir]),
        Cmd::new(docker)
            .args([
                "exec",
                "-i",
                node,
                "cp",
                "/dev/stdin",
                &format!("{dir}/hosts.toml"),
            ])
            .stdin(hosts_toml().into_bytes()),
    ]
}

/// Build and push the probe image from `context` (a directory with the Dockerfile and the
/// binary).
pub fn build_and_push_cmds(docker: &Path, context: &Path, image: &str) -> [Cmd; 2] {
    [
        Cmd::new(docker)
            .args(["build", "-t", image])
            .arg(context.display().to_string())
            .timeout(std::time::Duration::from_secs(120)),
        Cmd::new(docker)
            .args(["push", image])
            .timeout(std::time::Duration::from_secs(120)),
    ]
}

/// Writes the build context: the Dockerfile and the binary.
pub fn write_context(dir: &Path, probe: &[u8]) -> Result<(), KubeError> {
    use std::os::unix::fs::PermissionsExt as _;
    let dockerfile = dir.join("Dockerfile");
    std::fs::write(&dockerfile, super::probe::dockerfile())
        .map_err(KubeError::io("write", &dockerfile))?;
    let bin = dir.join(PROBE_IMAGE);
    std::fs::write(&bin, probe).map_err(KubeError::io("write", &bin))?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
        .map_err(KubeError::io("chmod", &bin))
}

/// The running registry; removed when dropped (testcontainers' own cleanup).
pub struct Registry {
    pub container: ContainerAsync<CncfDistribution>,
}

/// Starts the registry on the `kind` network, published on `localhost:5001`. The network exists
/// once the first kind cluster does.
pub async fn start() -> Result<Registry, KubeError> {
    let port: ContainerPort = 5000_u16.tcp();
    let container = CncfDistribution::default()
        .with_container_name(REGISTRY_NAME)
        .with_network(KIND_NETWORK)
        .with_mapped_port(REGISTRY_HOST_PORT, port)
        .start()
        .await
        .map_err(|e| KubeError::Workload {
            what: format!("the local registry `{REGISTRY_NAME}`"),
            namespace: "(docker)".into(),
            reason: format!(
                "{e} (hint: is port {REGISTRY_HOST_PORT} free and the `{KIND_NETWORK}` docker network there?)"
            ),
        })?;
    Ok(Registry { container })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_pointed_at_the_registry_container_by_name() {
        assert_eq!(hosts_toml(), "[host.\"http://meshtrust-registry:5000\"]\n");
        let [mkdir, cp] = wire_node_cmds(Path::new("docker"), "mt-cluster1-control-plane");
        assert_eq!(
            mkdir.to_string(),
            "docker exec mt-cluster1-control-plane mkdir -p /etc/containerd/certs.d/localhost:5001"
        );
        assert_eq!(
            cp.to_string(),
            "docker exec -i mt-cluster1-control-plane cp /dev/stdin /etc/containerd/certs.d/localhost:5001/hosts.toml <stdin>"
        );
        assert_eq!(cp.stdin.as_deref(), Some(hosts_toml().as_bytes()));
    }

    #[test]
    fn the_build_context_holds_the_dockerfile_and_an_executable_binary() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), b"\x7fELF...").unwrap();
        assert!(
            std::fs::read_to_string(dir.path().join("Dockerfile"))
                .unwrap()
                .starts_with("FROM scratch\n")
        );
        let mode = std::fs::metadata(dir.path().join("meshtrust-probe"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let [build, push] = build_and_push_cmds(
            Path::new("docker"),
            Path::new("/w/probe-image"),
            &probe_image("dev"),
        );
        assert_eq!(
            build.to_string(),
            "docker build -t localhost:5001/meshtrust-probe:dev /w/probe-image"
        );
        assert_eq!(
            push.to_string(),
            "docker push localhost:5001/meshtrust-probe:dev"
        );
    }
}
