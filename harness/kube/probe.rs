//! The in-pod probe: the static `meshtrust-probe` binary streamed into the sleep pod's
//! `istio-proxy` container over exec stdin and run there as UID 1337, whose traffic the
//! client-side capture lets through (ISTIO-FACTS §6), against httpbin's pod IP. For a distroless
//! proxy (no shell to receive the file) the probe comes as an image instead, run as an
//! ephemeral container with the same UID in the same pod network.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, LogParams, Patch, PatchParams};
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::error::KubeError;
use super::wait::{self, Check, Patience};

/// The sidecar container.
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// An emptyDir in the proxy container: its root filesystem is read-only and `/tmp` is not
/// writable (ISTIO-FACTS §6).
pub const PROBE_DIR: &str = "/etc/istio/proxy";
pub const PROBE_PATH: &str = "/etc/istio/proxy/meshtrust-probe";
/// The UID of istio-proxy, whose traffic is exempt from the outbound capture.
pub const PROXY_UID: i64 = 1337;
/// The probe's own budget for connect + handshake + first read (its `--timeout`).
pub const PROBE_TIMEOUT: &str = "5s";
/// The exec deadline: the probe's budget plus the API round trips around it.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Streaming ~5 MB through the API server's exec websocket.
const COPY_TIMEOUT: Duration = Duration::from_secs(60);

/// The command that receives the binary on stdin. `head -c N`, not `cat`: `cat` needs stdin's
/// EOF, which exec carries only with the v5 streaming protocol (Kubernetes >= 1.30); on older
/// API servers closing stdin closes the whole stream and the exit status is lost.
pub fn receive_argv(len: usize) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("head -c {len} > {PROBE_PATH} && chmod +x {PROBE_PATH}"),
    ]
}

/// The probe's command line against `addr` (`IP:PORT`): JSON out, ALPN `istio` as Istio's own
/// test client offers.
pub fn probe_args(addr: &str) -> Vec<String> {
    vec![
        addr.into(),
        "--format".into(),
        "json".into(),
        "--alpn".into(),
        "istio".into(),
        "--timeout".into(),
        PROBE_TIMEOUT.into(),
    ]
}

pub fn probe_argv(addr: &str) -> Vec<String> {
    let mut argv = vec![PROBE_PATH.to_owned()];
    argv.extend(probe_args(addr));
    argv
}

/// What the probe prints with `--format json` (the fields the kind target uses; the probe's
/// own `Capture` type has more).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProbeOutput {
    pub peer: String,
    /// PEM, leaf first, as presented.
    pub chain: Vec<String>,
    pub tls_version: String,
    pub alpn: Option<String>,
    #[serde(default)]
    pub client_cert_requested: bool,
    pub client_auth: serde_json::Value,
    #[serde(default)]
    pub error_after_chain: Option<String>,
}

impl ProbeOutput {
    pub fn parse(pod: &str, stdout: &str) -> Result<ProbeOutput, KubeError> {
        serde_json::from_str(stdout).map_err(|e| KubeError::Probe {
            pod: pod.to_owned(),
            reason: format!(
                "its output is not the probe's JSON ({e}): `{}`",
                stdout.trim()
            ),
        })
    }

    /// The chain as DER, in the order presented.
    pub fn chain_der(&self) -> Result<Vec<Vec<u8>>, KubeError> {
        self.chain
            .iter()
            .map(|p| {
                pem::parse(p)
                    .map(|b| b.into_contents())
                    .map_err(|e| KubeError::Probe {
                        pod: self.peer.clone(),
                        reason: format!("a certificate in its output is not PEM: {e}"),
                    })
            })
            .collect()
    }
}

/// What an exec returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// The exit code, from the API's status (0 on Success).
    pub code: i32,
}

/// The exit code in an exec's final Status: `Success`, or `Failure` with an `ExitCode` cause;
/// a Failure without one (the command could not start) is -1.
pub fn exit_code(status: Option<&Status>) -> i32 {
    let Some(status) = status else { return -1 };
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref()?.parse().ok())
        })
        .unwrap_or(-1)
}

/// Runs `argv` in `container` of `pod`, feeding `stdin` if given, within `timeout`.
pub async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    argv: Vec<String>,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ExecOutput, KubeError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    let shown = argv.join(" ");
    let run = async {
        let mut process = pods
            .exec(pod, argv, &params)
            .await
            .map_err(KubeError::api(format!(
                "exec `{shown}` in `{pod}`/{container}"
            )))?;
        let status = process.take_status();
        let mut writer = process.stdin();
        let mut out = process.stdout();
        let mut err = process.stderr();
        let feed = async {
            if let (Some(w), Some(bytes)) = (writer.as_mut(), stdin) {
                w.write_all(bytes).await?;
                w.shutdown().await?;
            }
            drop(writer.take());
            Ok::<(), std::io::Error>(())
        };
        let read = |pipe: Option<tokio::io::ReadHalf<tokio::io::SimplexStream>>| async move {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut buf).await?;
            }
            Ok::<String, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
        };
        let (fed, stdout, stderr) = tokio::join!(feed, read(out.take()), read(err.take()));
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        let io = |e: std::io::Error| KubeError::Probe {
            pod: pod.to_owned(),
            reason: format!("exec `{shown}`: {e}"),
        };
        fed.map_err(io)?;
        Ok(ExecOutput {
            stdout: stdout.map_err(io)?,
            stderr: stderr.map_err(io)?,
            code: exit_code(status.as_ref()),
        })
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| KubeError::Probe {
            pod: pod.to_owned(),
            reason: format!(
                "exec `{shown}` in {container} did not finish within {}s",
                timeout.as_secs()
            ),
        })?
}

/// Reads the static probe binary and checks it is one (an ELF file; `just probe-static`).
pub fn read_probe_binary(path: &Path) -> Result<Vec<u8>, KubeError> {
    let bytes = std::fs::read(path).map_err(|e| KubeError::ProbeBinary {
        path: path.to_owned(),
        // The default is relative: say where it was looked for.
        reason: match std::env::current_dir() {
            Ok(cwd) if path.is_relative() => format!("{e}, looked for from `{}`", cwd.display()),
            _ => e.to_string(),
        },
    })?;
    if !bytes.starts_with(b"\x7fELF") {
        return Err(KubeError::ProbeBinary {
            path: path.to_owned(),
            reason: "it is not an ELF executable".into(),
        });
    }
    if let Some(loader) = dynamic_loader(&bytes) {
        return Err(KubeError::ProbeBinary {
            path: path.to_owned(),
            reason: format!(
                "it is dynamically linked (it needs `{loader}`), and the probe runs FROM scratch or in the proxy container, which has no such loader"
            ),
        });
    }
    Ok(bytes)
}

/// The program interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`) a dynamically
/// linked ELF executable names, or `None` for a static one (or one this cannot parse).
fn dynamic_loader(elf: &[u8]) -> Option<String> {
    use object::read::elf::{ElfFile64, ProgramHeader as _};
    let file = ElfFile64::<object::Endianness>::parse(elf).ok()?;
    let endian = file.endian();
    file.elf_program_headers()
        .iter()
        .find(|h| h.p_type(endian) == object::elf::PT_INTERP)
        .and_then(|h| h.data(endian, elf).ok())
        .map(|d| String::from_utf8_lossy(d).trim_end_matches('\0').to_owned())
}

/// Whether the proxy container has a shell (the default Ubuntu-based proxyv2) or not (the
/// `-distroless` variant, where exec of `sh` fails to start).
pub async fn proxy_has_shell(pods: &Api<Pod>, pod: &str) -> Result<bool, KubeError> {
    let out = exec(
        pods,
        pod,
        PROXY_CONTAINER,
        vec!["sh".into(), "-c".into(), "true".into()],
        None,
        EXEC_TIMEOUT,
    )
    .await?;
    Ok(out.code == 0)
}

/// Copies the probe into the proxy container and runs it against `addr`; returns its output.
pub async fn capture_via_exec(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    probe: &[u8],
    addr: &str,
) -> Result<ProbeOutput, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let copied = exec(
        &pods,
        pod,
        PROXY_CONTAINER,
        receive_argv(probe.len()),
        Some(probe),
        COPY_TIMEOUT,
    )
    .await?;
    if copied.code != 0 {
        return Err(KubeError::Probe {
            pod: pod.to_owned(),
            reason: format!(
                "copying the probe to {PROBE_PATH} exited with {}: {}",
                copied.code,
                copied.stderr.trim()
            ),
        });
    }
    let ran = exec(
        &pods,
        pod,
        PROXY_CONTAINER,
        probe_argv(addr),
        None,
        EXEC_TIMEOUT,
    )
    .await?;
    // Exit 2 is "no chain captured" (refused, not TLS, timed out); its stderr says which.
    if ran.code != 0 {
        return Err(KubeError::Probe {
            pod: pod.to_owned(),
            reason: format!(
                "`{}` exited with {}: {}",
                probe_argv(addr).join(" "),
                ran.code,
                ran.stderr.trim()
            ),
        });
    }
    ProbeOutput::parse(pod, &ran.stdout)
}

/// The image that carries the probe for distroless proxies: nothing but the static binary,
/// running as the proxy's UID.
pub fn dockerfile() -> String {
    format!(
        "FROM scratch\nCOPY meshtrust-probe /meshtrust-probe\nUSER {PROXY_UID}:{PROXY_UID}\nENTRYPOINT [\"/meshtrust-probe\"]\n"
    )
}

/// An ephemeral container running the probe image against `addr` in the sleep pod: it shares
/// the pod's network namespace, so as UID 1337 its traffic bypasses the capture just as it does
/// from istio-proxy.
pub fn ephemeral_probe(name: &str, image: &str, addr: &str) -> EphemeralContainer {
    EphemeralContainer {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        args: Some(probe_args(addr)),
        image_pull_policy: Some("IfNotPresent".into()),
        security_context: Some(SecurityContext {
            run_as_user: Some(PROXY_UID),
            run_as_group: Some(PROXY_UID),
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        }),
        ..EphemeralContainer::default()
    }
}

/// The ephemeral container's run to completion: a few seconds once its image is on the node.
pub const EPHEMERAL_DONE: Patience =
    Patience::new(Duration::from_secs(120), Duration::from_secs(2));

/// Adds the probe as an ephemeral container, waits for it to finish, and reads its log.
pub async fn capture_via_ephemeral(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    image: &str,
    addr: &str,
    container: &str,
) -> Result<ProbeOutput, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({
        "spec": { "ephemeralContainers": [ephemeral_probe(container, image, addr)] }
    });
    pods.patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(KubeError::api(format!(
            "add ephemeral container `{container}` to `{ns}/{pod}`"
        )))?;
    let code = wait::poll(
        format!("ephemeral container `{container}` in `{ns}/{pod}` to finish"),
        EPHEMERAL_DONE.scaled(),
        || {
            let pods = pods.clone();
            let (pod, container) = (pod.to_owned(), container.to_owned());
            async move {
                let p = match pods.get(&pod).await {
                    Ok(p) => p,
                    Err(e) => return Check::NotYet(format!("api error: {e}")),
                };
                let status = p
                    .status
                    .and_then(|s| s.ephemeral_container_statuses)
                    .and_then(|all| all.into_iter().find(|c| c.name == container));
                match status.and_then(|s| s.state) {
                    Some(state) => match (state.terminated, state.waiting) {
                        (Some(t), _) => Check::Done(t.exit_code),
                        (None, Some(w)) => {
                            Check::NotYet(format!("waiting: {}", w.reason.unwrap_or_default()))
                        }
                        (None, None) => Check::NotYet("running".into()),
                    },
                    None => Check::NotYet("no status yet".into()),
                }
            }
        },
    )
    .await?;
    let log = pods
        .logs(
            pod,
            &LogParams {
                container: Some(container.to_owned()),
                ..LogParams::default()
            },
        )
        .await
        .map_err(KubeError::api(format!(
            "read the log of `{ns}/{pod}`/{container}"
        )))?;
    if code != 0 {
        return Err(KubeError::Probe {
            pod: pod.to_owned(),
            reason: format!(
                "ephemeral container `{container}` exited with {code}: {}",
                log.trim()
            ),
        });
    }
    // The container's log interleaves stderr (the summary) and stdout (the JSON): the JSON is
    // the part from the first line that opens an object.
    let json = log.find("\n{").map_or(log.as_str(), |i| &log[i + 1..]);
    ProbeOutput::parse(
        pod,
        if log.starts_with('{') {
            log.as_str()
        } else {
            json
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn the_binary_is_received_into_the_proxys_writable_emptydir() {
        assert_eq!(
            receive_argv(4_718_592),
            [
                "sh",
                "-c",
                "head -c 4718592 > /etc/istio/proxy/meshtrust-probe && chmod +x /etc/istio/proxy/meshtrust-probe"
            ]
        );
    }

    #[test]
    fn the_probe_dials_the_pod_ip_with_alpn_istio_and_prints_json() {
        assert_eq!(
            probe_argv("10.11.0.7:8000").join(" "),
            "/etc/istio/proxy/meshtrust-probe 10.11.0.7:8000 --format json --alpn istio --timeout 5s"
        );
    }

    const CAPTURE_JSON: &str = r#"{
  "peer": "10.11.0.7:8000",
  "sni": null,
  "chain": [
    "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n"
  ],
  "tls_version": "TLSv1.3",
  "cipher_suite": "TLS13_AES_128_GCM_SHA256",
  "alpn": "istio",
  "client_cert_requested": true,
  "client_auth": {"outcome": "refused", "alert": "CertificateRequired"},
  "response": null,
  "error_after_chain": null
}"#;

    #[test]
    fn the_probe_json_is_read_back_with_the_chain_in_order() {
        let out = ProbeOutput::parse("sleep-1", CAPTURE_JSON).unwrap();
        assert_eq!(out.peer, "10.11.0.7:8000");
        assert_eq!(out.alpn.as_deref(), Some("istio"));
        assert!(out.client_cert_requested);
        assert_eq!(out.client_auth["outcome"], "refused");
        assert_eq!(out.chain_der().unwrap(), [vec![1, 2, 3], vec![4, 5, 6]]);
    }

    #[test]
    fn output_that_is_not_the_probes_json_is_an_error_showing_it() {
        let err = ProbeOutput::parse("sleep-1", "sh: 1: meshtrust-probe: not found\n").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "the in-pod probe in `sleep-1` failed: its output is not the probe's JSON ("
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("`sh: 1: meshtrust-probe: not found`"),
            "{err}"
        );
    }

    #[test]
    fn the_exit_code_comes_from_the_exec_status() {
        let success = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(Some(&success)), 0);
        let failed = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("2".into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        };
        assert_eq!(exit_code(Some(&failed)), 2);
        let not_started = Status {
            status: Some("Failure".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(Some(&not_started)), -1);
        assert_eq!(exit_code(None), -1);
    }

    #[test]
    fn a_probe_binary_that_is_not_elf_is_refused_with_the_build_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meshtrust-probe");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        let err = read_probe_binary(&path).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "it is not an ELF executable (hint: build it with `just probe-static` in meshtrust's repository, then pass `--probe FILE` or set MESHTRUST_PROBE)"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_relative_probe_says_where_it_was_looked_for_and_an_absolute_one_does_not() {
        let relative = Path::new("target/no-such-dir/meshtrust-probe");
        let err = read_probe_binary(relative).unwrap_err().to_string();
        let cwd = std::env::current_dir().unwrap();
        assert!(
            err.contains(&format!("looked for from `{}`", cwd.display())),
            "{err}"
        );
        let absolute = cwd.join(relative);
        let err = read_probe_binary(&absolute).unwrap_err().to_string();
        assert!(!err.contains("looked for from"), "{err}");
        assert!(err.contains("MESHTRUST_PROBE"), "{err}");
    }

    #[test]
    fn a_dynamically_linked_probe_is_refused_naming_its_loader_and_a_static_one_is_taken() {
        // This test binary is dynamically linked; a static-pie or static executable has no
        // PT_INTERP. Both come from the toolchain here, not from fixtures.
        let me = std::env::current_exe().unwrap();
        let err = read_probe_binary(&me).unwrap_err().to_string();
        assert!(
            err.contains("it is dynamically linked (it needs `/"),
            "{err}"
        );
        assert!(err.contains("just probe-static"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s.rs");
        std::fs::write(&src, "fn main() {}").unwrap();
        let out = dir.path().join("s");
        let built = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .args(["-C", "target-feature=+crt-static", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap();
        assert!(built.success());
        assert!(read_probe_binary(&out).is_ok());
    }

    #[test]
    fn the_probe_image_is_scratch_plus_the_binary_as_uid_1337() {
        assert_eq!(
            dockerfile(),
            "FROM scratch\nCOPY meshtrust-probe /meshtrust-probe\nUSER 1337:1337\nENTRYPOINT [\"/meshtrust-probe\"]\n"
        );
        let c = ephemeral_probe(
            "meshtrust-probe-1",
            "localhost:5001/meshtrust-probe:dev",
            "10.11.0.7:8000",
        );
        let sc = c.security_context.unwrap();
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1337), Some(1337)));
        assert_eq!(c.args.unwrap()[..3], ["10.11.0.7:8000", "--format", "json"]);
    }
}
