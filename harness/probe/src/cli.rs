//! The probe's command line, shared by `meshtrust-probe` and `meshtrust probe` (which flattens
//! `ProbeArgs`). It parses, calls `probe`, and prints: PEM or JSON on stdout, notes on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Capture, ClientAuthOutcome, ClientIdentity, ProbeError, ProbeOptions, TlsVersions};

/// The one duration grammar of every meshtrust flag, for `meshtrust`'s own flags too.
pub use crate::duration::{
    GRAMMAR as DURATION_GRAMMAR, Human, parse as parse_duration, parse_positive,
};

/// Exit codes, as in the rest of meshtrust (1, a conformance failure, is never the probe's).
pub mod exit {
    /// A chain was captured, whatever the server thought of us afterwards.
    pub const CAPTURED: u8 = 0;
    /// Bad input, an unreachable or non-TLS peer, or a timeout.
    pub const NOT_CAPTURED: u8 = 2;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The chain as concatenated PEM, leaf first.
    Pem,
    /// The chain as PEM strings plus the handshake and client-auth findings.
    Json,
}

/// Capture the certificate chain a TLS server presents, without trusting it.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The server: `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`.
    #[arg(value_name = "HOST:PORT")]
    pub addr: String,

    /// Server name to send (default: HOST if it is a name, none for an IP).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,

    /// ALPN protocol to offer; repeat for several (Istio's own probe offers `istio`).
    #[arg(long = "alpn", value_name = "PROTOCOL")]
    pub alpn: Vec<String>,

    /// Client certificate chain (PEM, leaf first) to present if the server asks.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key for `--cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Budget for connect, handshake and first read together: above zero, at most `1h`
    /// (`500ms`, `1.5s`, `5s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "5s", allow_hyphen_values = true, value_parser = crate::duration::parse_timeout)]
    pub timeout: Duration,

    /// Offer TLS 1.2 only.
    #[arg(long, conflicts_with = "tls13")]
    pub tls12: bool,

    /// Offer TLS 1.3 only.
    #[arg(long)]
    pub tls13: bool,

    #[arg(long, value_enum, default_value_t = Format::Pem)]
    pub format: Format,

    /// After the handshake, send `GET PATH HTTP/1.1` and keep the start of the response.
    #[arg(long, value_name = "PATH")]
    pub http_get: Option<String>,
}

impl ProbeArgs {
    pub fn to_options(&self) -> Result<ProbeOptions, ProbeError> {
        let mut opts = ProbeOptions::new(&self.addr);
        opts.sni.clone_from(&self.sni);
        opts.alpn.clone_from(&self.alpn);
        opts.timeout = self.timeout;
        opts.versions = match (self.tls12, self.tls13) {
            (true, false) => TlsVersions::Tls12Only,
            (false, true) => TlsVersions::Tls13Only,
            _ => TlsVersions::Tls12AndTls13,
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            opts.client_identity = Some(ClientIdentity::from_files(cert, key)?);
        }
        if let Some(path) = &self.http_get {
            let host = self.sni.clone().unwrap_or_else(|| host_of(&self.addr));
            opts.request = Some(http_get(path, &host)?);
        }
        Ok(opts)
    }
}

fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

fn http_get(path: &str, host: &str) -> Result<Vec<u8>, ProbeError> {
    let bad = |reason| ProbeError::BadRequestPath {
        path: path.to_owned(),
        reason,
    };
    if !path.starts_with('/') {
        return Err(bad("it must start with `/`"));
    }
    if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(bad("it must not contain spaces or control characters"));
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: meshtrust-probe\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
}

/// Runs the probe and prints; returns the process exit code.
pub fn run(args: ProbeArgs) -> u8 {
    let capture = match args.to_options().and_then(|opts| crate::probe(&opts)) {
        Ok(capture) => capture,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            return exit::NOT_CAPTURED;
        }
    };
    eprintln!("{}", summary(&capture));
    let output = match args.format {
        Format::Pem => capture.to_pem(),
        Format::Json => {
            // A Capture holds only strings, bools and enums: serialising cannot fail.
            let mut json = serde_json::to_string_pretty(&capture).unwrap_or_default();
            json.push('\n');
            json
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("error: cannot write the chain to stdout: {error}");
        return exit::NOT_CAPTURED;
    }
    exit::CAPTURED
}

/// The error and its causes on one line, so a log line tells the whole story.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        line.push_str(": ");
        line.push_str(&next.to_string());
        cause = next.source();
    }
    line
}

/// The stderr notes: what was captured and what the server thought of us.
fn summary(capture: &Capture) -> String {
    let alpn = capture
        .alpn
        .as_deref()
        .map_or_else(String::new, |p| format!(", alpn `{p}`"));
    let count = capture.chain.len();
    let mut lines = vec![format!(
        "captured {count} certificate{} from `{}` ({}, {}{alpn})",
        if count == 1 { "" } else { "s" },
        capture.peer,
        capture.tls_version,
        capture.cipher_suite
    )];
    lines.push(match &capture.client_auth {
        ClientAuthOutcome::NotRequested => "the server did not ask for a client certificate".into(),
        ClientAuthOutcome::Refused { alert } => {
            format!("the server demanded a client certificate and refused us: alert `{alert}`")
        }
        ClientAuthOutcome::Accepted => "the server accepted our client certificate".into(),
        ClientAuthOutcome::Optional => {
            "the server asked for a client certificate, got none, and carried on".into()
        }
    });
    if let Some(error) = &capture.error_after_chain {
        lines.push(format!("then: {error}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_get_names_the_host_and_asks_the_server_to_close() {
        assert_eq!(
            String::from_utf8(http_get("/headers", "httpbin.foo").unwrap()).unwrap(),
            "GET /headers HTTP/1.1\r\nHost: httpbin.foo\r\nUser-Agent: meshtrust-probe\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn an_http_path_that_would_break_the_request_line_is_bad_input() {
        assert!(http_get("headers", "h").is_err());
        assert!(http_get("/a b", "h").is_err());
        assert!(http_get("/a\r\nX: y", "h").is_err());
    }

    fn capture(certs: usize) -> Capture {
        Capture {
            peer: "127.0.0.1:443".into(),
            sni: None,
            chain: vec![rustls_pki_types::CertificateDer::from(vec![0x30, 0]); certs],
            tls_version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            alpn: None,
            client_cert_requested: false,
            client_auth: ClientAuthOutcome::NotRequested,
            response: None,
            error_after_chain: None,
        }
    }

    #[test]
    fn the_summary_counts_one_certificate_in_the_singular_and_more_in_the_plural() {
        let first = |n| summary(&capture(n)).lines().next().unwrap().to_owned();
        assert_eq!(
            first(1),
            "captured 1 certificate from `127.0.0.1:443` (TLSv1.3, TLS13_AES_128_GCM_SHA256)"
        );
        assert_eq!(
            first(2),
            "captured 2 certificates from `127.0.0.1:443` (TLSv1.3, TLS13_AES_128_GCM_SHA256)"
        );
    }

    #[test]
    fn a_negative_timeout_is_a_value_refused_with_the_valid_range() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            probe: ProbeArgs,
        }
        let err = Cli::try_parse_from(["probe", "127.0.0.1:1", "--timeout", "-5s"])
            .err()
            .expect("a negative timeout is refused");
        assert!(
            err.to_string().contains(
                "invalid value '-5s' for '--timeout <DURATION>': `-5s` is out of range: it must be above zero and at most `1h`"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_http_host_is_the_address_without_its_port() {
        assert_eq!(host_of("httpbin.foo:8000"), "httpbin.foo");
        assert_eq!(host_of("[::1]:443"), "::1");
    }
}
