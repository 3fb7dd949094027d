//! openssl as the reference peer: `s_server` serving Istio's chain, `s_client -showcerts` as
//! the capture the probe must equal.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::pki::Pki;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    V12,
    V13,
}

impl Tls {
    pub const BOTH: [Tls; 2] = [Tls::V12, Tls::V13];

    pub fn openssl_flag(self) -> &'static str {
        match self {
            Tls::V12 => "-tls1_2",
            Tls::V13 => "-tls1_3",
        }
    }

    pub fn probe_versions(self) -> meshtrust_probe::TlsVersions {
        match self {
            Tls::V12 => meshtrust_probe::TlsVersions::Tls12Only,
            Tls::V13 => meshtrust_probe::TlsVersions::Tls13Only,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tls::V12 => "TLSv1.2",
            Tls::V13 => "TLSv1.3",
        }
    }
}

/// How the server treats clients.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `-Verify 1 -CAfile root.pem -verify_return_error`: demand a client certificate from our
    /// root, as Istio STRICT does (without `-verify_return_error` s_server only logs a bad one).
    pub demand_client_cert: bool,
    pub alpn: Option<&'static str>,
    /// `-www`: answer an HTTP GET with a status page, so a round trip completes at once.
    pub www: bool,
}

impl ServerOptions {
    pub fn strict() -> Self {
        Self {
            demand_client_cert: true,
            ..Self::default()
        }
    }
}

/// A running `openssl s_server`, killed on drop.
pub struct SServer {
    child: Child,
    // Held open: s_server shuts down when its stdin reaches end of file.
    _stdin: ChildStdin,
    pub port: u16,
    output: Arc<Mutex<String>>,
}

impl SServer {
    pub fn start(pki: &Pki, options: &ServerOptions) -> Self {
        let mut last = String::new();
        // A free port can be taken between our check and s_server's bind; try again.
        for _ in 0..5 {
            match Self::try_start(pki, options) {
                Ok(server) => return server,
                Err(output) => last = output,
            }
        }
        panic!("openssl s_server did not start listening:\n{last}");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What s_server printed so far, for failure messages.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn try_start(pki: &Pki, options: &ServerOptions) -> Result<Self, String> {
        let port = free_port();
        let mut command = Command::new("openssl");
        command
            .current_dir(pki.dir.path())
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args(["-cert", "workload.pem", "-key", "workload.key"])
            .args(["-cert_chain", "served-chain.pem"]);
        if options.demand_client_cert {
            command.args([
                "-Verify",
                "1",
                "-CAfile",
                "root.pem",
                "-verify_return_error",
            ]);
        }
        if let Some(alpn) = options.alpn {
            command.args(["-alpn", alpn]);
        }
        if options.www {
            command.arg("-www");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("these tests need `openssl` on PATH (Debian package `openssl`)");
        let output = Arc::new(Mutex::new(String::new()));
        let (listening_tx, listening) = mpsc::channel();
        drain(
            child.stdout.take().unwrap(),
            output.clone(),
            Some(listening_tx),
        );
        drain(child.stderr.take().unwrap(), output.clone(), None);
        let stdin = child.stdin.take().unwrap();
        let mut server = Self {
            child,
            _stdin: stdin,
            port,
            output,
        };
        match listening.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => Ok(server),
            Err(_) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                Err(server.output())
            }
        }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a pipe into `output` (so the pipe never fills) and reports s_server's `ACCEPT` line,
/// printed once it listens.
fn drain(
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    listening: Option<mpsc::Sender<()>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if line == "ACCEPT"
                && let Some(tx) = &listening
            {
                let _ = tx.send(());
            }
            let mut output = output.lock().unwrap();
            output.push_str(&line);
            output.push('\n');
        }
    });
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("cannot bind a local port")
        .port()
}

/// The chain `openssl s_client -showcerts` prints, parsed from its PEM blocks. It presents the
/// sleep client certificate so the handshake completes even against a demanding server
/// (s_client prints the chain only after a complete handshake).
pub fn s_client_showcerts(pki: &Pki, port: u16, tls: Tls) -> Vec<CertificateDer<'static>> {
    let out = Command::new("openssl")
        .current_dir(pki.dir.path())
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-showcerts",
        ])
        .args([
            tls.openssl_flag(),
            "-cert",
            "sleep-chain.pem",
            "-key",
            "sleep.key",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("these tests need `openssl` on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let chain = CertificateDer::pem_slice_iter(&out.stdout)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("s_client printed bad pem ({e}):\n{stdout}"));
    assert!(
        !chain.is_empty(),
        "s_client printed no certificate ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    chain
}
