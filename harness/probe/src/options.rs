//! What to probe and how.

use std::time::Duration;

use crate::ClientIdentity;

/// Long enough for a cross-zone handshake with RSA 4096 in the chain, short enough that a
/// scenario waiting on a dead port fails quickly.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS versions to offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVersions {
    #[default]
    Tls12AndTls13,
    Tls12Only,
    Tls13Only,
}

#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `HOST:PORT`: an IP address (`[v6]:port` for IPv6) or a name resolved by the system.
    pub addr: String,
    /// The SNI to send. Default: the host if it is a name; nothing for an IP address.
    pub sni: Option<String>,
    /// ALPN protocols to offer, in order (Istio's own probe offers `istio`).
    pub alpn: Vec<String>,
    /// Presented if the server asks; without it a STRICT server refuses us after the handshake.
    pub client_identity: Option<ClientIdentity>,
    /// One budget for connect, handshake and the first read together.
    pub timeout: Duration,
    pub versions: TlsVersions,
    /// Written after the handshake (e.g. an HTTP request) before the first read.
    pub request: Option<Vec<u8>>,
}

impl ProbeOptions {
    /// Defaults for everything but the address.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            sni: None,
            alpn: Vec::new(),
            client_identity: None,
            timeout: DEFAULT_TIMEOUT,
            versions: TlsVersions::default(),
            request: None,
        }
    }
}
