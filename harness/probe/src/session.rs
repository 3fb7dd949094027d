//! One probe: connect, handshake while recording, one round trip, then judge what happened.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{AlertDescription, ClientConfig, ClientConnection, ProtocolVersion, StreamOwned};
use rustls_pki_types::ServerName;

use crate::deadline::DeadlineStream;
use crate::identity::RecordingClientAuth;
use crate::target::Target;
use crate::verifier::RecordingVerifier;
use crate::{Capture, ClientAuthOutcome, Phase, ProbeError, ProbeOptions, TlsVersions};

/// Big enough for the start of an HTTP response; the probe reports, it does not download.
const RESPONSE_BYTES: usize = 16 * 1024;

/// Connects to `opts.addr`, records the certificate chain the server proves in its handshake,
/// and does one round trip to learn whether the server then refuses us.
pub fn probe(opts: &ProbeOptions) -> Result<Capture, ProbeError> {
    let deadline = Instant::now() + opts.timeout;
    let target = Target::parse(&opts.addr)?;
    let server_name = target.server_name(opts.sni.as_deref())?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let verifier = RecordingVerifier::new(&provider);
    let client_auth = RecordingClientAuth::new(opts.client_identity.as_ref());
    let config = client_config(opts, provider, verifier.clone(), client_auth.clone())?;

    let tcp = connect(&target, &opts.addr, deadline, opts.timeout)?;
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| opts.addr.clone(), |a| a.to_string());
    let sni = match &server_name {
        ServerName::DnsName(name) => Some(name.as_ref().to_owned()),
        _ => None,
    };
    let connection = ClientConnection::new(Arc::new(config), server_name).map_err(|e| {
        ProbeError::Handshake {
            addr: opts.addr.clone(),
            source: io::Error::other(e),
        }
    })?;
    let mut tls = StreamOwned::new(connection, DeadlineStream::new(tcp, deadline));

    let handshake = handshake(&mut tls);
    let Some(chain) = verifier.proven_chain() else {
        return Err(early_failure(
            opts,
            handshake.err(),
            tls.get_ref().first_bytes(),
        ));
    };
    let ending = match handshake {
        Ok(()) => round_trip(&mut tls, opts.request.as_deref(), client_auth.requested()),
        Err(error) => Ending::from_handshake_error(error),
    };
    let requested = client_auth.requested();
    let (outcome, response, error_after_chain) = judge(requested, client_auth.presented(), ending);
    Ok(Capture {
        peer,
        sni,
        chain,
        tls_version: version_name(tls.conn.protocol_version()),
        cipher_suite: tls
            .conn
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite())),
        alpn: tls
            .conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        client_cert_requested: requested,
        client_auth: outcome,
        response,
        error_after_chain,
    })
}

fn client_config(
    opts: &ProbeOptions,
    provider: rustls::crypto::CryptoProvider,
    verifier: Arc<RecordingVerifier>,
    client_auth: Arc<RecordingClientAuth>,
) -> Result<ClientConfig, ProbeError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match opts.versions {
        TlsVersions::Tls12AndTls13 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersions::Tls12Only => &[&rustls::version::TLS12],
        TlsVersions::Tls13Only => &[&rustls::version::TLS13],
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        // Fails only when the provider has no suite for the versions; aws-lc-rs has both.
        .map_err(|e| ProbeError::Handshake {
            addr: opts.addr.clone(),
            source: io::Error::other(e),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(client_auth);
    config.alpn_protocols = opts.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // A probe is one connection: resumption would skip the Certificate message we came for.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

fn connect(
    target: &Target,
    addr: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, ProbeError> {
    let host = target.host_text();
    let candidates: Vec<SocketAddr> = (host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            host: host.clone(),
            source,
        })?
        .collect();
    let mut last_error = None;
    for candidate in &candidates {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(candidate, left) {
            Ok(stream) => {
                // The handshake is a few small flights; Nagle would hold some back for an ACK.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    let addr = addr.to_owned();
    Err(match last_error {
        None if candidates.is_empty() => ProbeError::Resolve {
            host,
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses found"),
        },
        Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            ProbeError::ConnectionRefused { addr }
        }
        Some(e) if e.kind() != io::ErrorKind::TimedOut => ProbeError::Connect { addr, source: e },
        _ => ProbeError::Timeout {
            addr,
            phase: Phase::Connect,
            after: timeout,
        },
    })
}

fn handshake(tls: &mut StreamOwned<ClientConnection, DeadlineStream>) -> io::Result<()> {
    while tls.conn.is_handshaking() {
        let (read, written) = tls.conn.complete_io(&mut tls.sock)?;
        if read == 0 && written == 0 && tls.conn.is_handshaking() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Why the handshake ended before the server proved a chain.
fn early_failure(opts: &ProbeOptions, error: Option<io::Error>, first_bytes: &[u8]) -> ProbeError {
    let addr = opts.addr.clone();
    let error = match error {
        None => io::Error::other("the server presented no certificate"),
        Some(e) => plain_eof(e),
    };
    if error.kind() == io::ErrorKind::TimedOut {
        return ProbeError::Timeout {
            addr,
            phase: Phase::Handshake,
            after: opts.timeout,
        };
    }
    if !looks_like_tls(first_bytes) {
        return ProbeError::NotTls {
            addr,
            first_bytes: printable(first_bytes),
        };
    }
    ProbeError::Handshake {
        addr,
        source: error,
    }
}

/// rustls reports a bare `UnexpectedEof` ("unexpected end of file"); say who ended it.
fn plain_eof(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )
    } else {
        error
    }
}

/// A TLS record starts with a content type (20 to 24) and major version 3.
fn looks_like_tls(first_bytes: &[u8]) -> bool {
    match first_bytes {
        [] => true, // silence is not evidence of another protocol
        [kind] => (20..=24).contains(kind),
        [kind, major, ..] => (20..=24).contains(kind) && *major == 3,
    }
}

fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// How the connection ended after the chain was proven.
#[derive(Debug)]
enum Ending {
    Response(Vec<u8>),
    /// Nothing arrived before the deadline and the connection stayed up.
    KeptOpen,
    ClosedCleanly,
    Alert(AlertDescription),
    Failed(String),
}

impl Ending {
    fn from_handshake_error(error: io::Error) -> Self {
        match Self::from_error(error) {
            Ending::KeptOpen => Ending::Failed("the handshake timed out".to_owned()),
            ending => ending,
        }
    }

    fn from_error(error: io::Error) -> Self {
        let error = plain_eof(error);
        if error.kind() == io::ErrorKind::TimedOut {
            return Ending::KeptOpen;
        }
        match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::AlertReceived(alert)) => Ending::Alert(*alert),
            _ => Ending::Failed(error.to_string()),
        }
    }
}

/// How long to wait, without a request to send, for a TLS 1.3 server's verdict on our
/// certificate. A refusal is an alert sent as soon as the server has read our Finished (one
/// round trip, milliseconds even across a cluster network); a server that accepts sends
/// nothing until it gets a request, so waiting any longer only delays the capture.
pub(crate) const VERDICT_WINDOW: Duration = Duration::from_millis(300);

/// The chain is captured once the handshake completes. What follows only tells whether the
/// server refuses us: with a request, its answer (or alert) tells; without one, TLS 1.3
/// servers send their verdict on our certificate after our Finished, so one short read
/// ([`VERDICT_WINDOW`]) tells accept from refuse. A server that asked for no certificate, or
/// a TLS 1.2 server (its verdict is part of the handshake), has nothing more to say: return.
fn round_trip(
    tls: &mut StreamOwned<ClientConnection, DeadlineStream>,
    request: Option<&[u8]>,
    client_cert_requested: bool,
) -> Ending {
    if request.is_none() {
        let tls13 = tls.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        if !client_cert_requested || !tls13 {
            tls.conn.send_close_notify();
            let _ = tls.conn.write_tls(&mut tls.sock);
            return Ending::KeptOpen;
        }
        tls.sock.shorten(Instant::now() + VERDICT_WINDOW);
    }
    if let Some(request) = request {
        // A failed write (the server already hung up) is explained by the read below, which
        // still holds the alert the server sent before closing.
        let _ = tls.write_all(request).and_then(|()| tls.flush());
    }
    let mut buf = vec![0; RESPONSE_BYTES];
    let ending = match tls.read(&mut buf) {
        Ok(0) => Ending::ClosedCleanly,
        Ok(n) => {
            buf.truncate(n);
            Ending::Response(buf)
        }
        Err(error) => Ending::from_error(error),
    };
    // Leave politely so the server logs a closed connection rather than a truncation; a server
    // that already hung up makes this fail, which changes nothing.
    tls.conn.send_close_notify();
    let _ = tls.conn.write_tls(&mut tls.sock);
    ending
}

/// Alerts a server sends when it will not take the client certificate we sent (or did not).
fn is_refusal(alert: AlertDescription) -> bool {
    use AlertDescription as A;
    matches!(
        alert,
        A::CertificateRequired
            | A::HandshakeFailure
            | A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            // A client chain whose issuer has the right name but another key (two roots
            // both called `O=Istio, CN=Root CA`) fails its signature check: OpenSSL,
            // BoringSSL and rustls all answer `decrypt error`.
            | A::DecryptError
    )
}

fn judge(
    requested: bool,
    presented: bool,
    ending: Ending,
) -> (ClientAuthOutcome, Option<Vec<u8>>, Option<String>) {
    let otherwise = if !requested {
        ClientAuthOutcome::NotRequested
    } else if presented {
        ClientAuthOutcome::Accepted
    } else {
        ClientAuthOutcome::Optional
    };
    match ending {
        Ending::Response(bytes) => (otherwise, Some(bytes), None),
        Ending::KeptOpen | Ending::ClosedCleanly => (otherwise, None, None),
        Ending::Alert(alert) if requested && is_refusal(alert) => (
            ClientAuthOutcome::Refused {
                alert: alert_name(alert),
            },
            None,
            None,
        ),
        Ending::Alert(alert) => (
            otherwise,
            None,
            Some(format!("the server sent the alert `{}`", alert_name(alert))),
        ),
        // A server that asked, got nothing, and hung up without an alert refused us all the
        // same; the alert may have been lost to a reset racing our request.
        Ending::Failed(reason) if requested && !presented => (
            ClientAuthOutcome::Refused {
                alert: format!("none ({reason})"),
            },
            None,
            None,
        ),
        Ending::Failed(reason) => (otherwise, None, Some(reason)),
    }
}

/// `CertificateRequired` -> `certificate required`, `UnknownCA` -> `unknown ca`: the RFC's
/// names with spaces, as openssl prints them.
fn alert_name(alert: AlertDescription) -> String {
    let debug = format!("{alert:?}");
    if debug.contains('(') {
        return format!("unknown alert {}", u8::from(alert));
    }
    let chars: Vec<char> = debug.chars().collect();
    let mut name = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = c.is_ascii_uppercase()
            && i > 0
            && (chars[i - 1].is_ascii_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if starts_word {
            name.push(' ');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

fn version_name(version: Option<ProtocolVersion>) -> String {
    match version {
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_decrypt_error_is_a_refusal_and_a_close_notify_is_not() {
        assert!(is_refusal(AlertDescription::DecryptError));
        assert!(is_refusal(AlertDescription::UnknownCA));
        assert!(!is_refusal(AlertDescription::CloseNotify));
    }

    use super::*;

    #[test]
    fn alerts_read_as_openssl_names_them() {
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate required"
        );
        assert_eq!(
            alert_name(AlertDescription::HandshakeFailure),
            "handshake failure"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown ca");
        assert_eq!(
            alert_name(AlertDescription::Unknown(200)),
            "unknown alert 200"
        );
    }

    #[test]
    fn a_certificate_alert_after_a_request_is_a_refusal() {
        let (outcome, _, error) = judge(
            true,
            false,
            Ending::Alert(AlertDescription::CertificateRequired),
        );
        assert_eq!(
            outcome,
            ClientAuthOutcome::Refused {
                alert: "certificate required".into()
            }
        );
        assert_eq!(error, None);
    }

    #[test]
    fn an_unrelated_alert_is_reported_but_is_not_a_refusal() {
        let (outcome, _, error) = judge(true, true, Ending::Alert(AlertDescription::DecodeError));
        assert_eq!(outcome, ClientAuthOutcome::Accepted);
        assert_eq!(
            error.as_deref(),
            Some("the server sent the alert `decode error`")
        );
    }

    #[test]
    fn a_server_that_keeps_the_connection_open_accepted_what_we_presented() {
        assert_eq!(
            judge(true, true, Ending::KeptOpen).0,
            ClientAuthOutcome::Accepted
        );
        assert_eq!(
            judge(true, false, Ending::KeptOpen).0,
            ClientAuthOutcome::Optional
        );
        assert_eq!(
            judge(false, false, Ending::KeptOpen).0,
            ClientAuthOutcome::NotRequested
        );
    }

    #[test]
    fn a_hang_up_without_an_alert_after_asking_us_for_nothing_we_had_is_a_refusal() {
        let (outcome, ..) = judge(true, false, Ending::Failed("connection reset".into()));
        assert_eq!(
            outcome,
            ClientAuthOutcome::Refused {
                alert: "none (connection reset)".into()
            }
        );
    }

    #[test]
    fn only_bytes_shaped_like_a_tls_record_count_as_tls() {
        assert!(looks_like_tls(&[22, 3, 3, 0, 42]));
        assert!(looks_like_tls(&[21, 3, 3, 0, 2]));
        assert!(!looks_like_tls(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_tls(b"SSH-2.0-OpenSSH"));
    }
}
