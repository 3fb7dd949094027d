//! Every way a probe can fail to capture a chain. A server that shows its chain and then refuses
//! us is not here: that is a finding, reported in the `Capture`.

use std::io;
use std::time::Duration;

use crate::duration::Human;

/// The step a probe was in when it ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Handshake,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connecting to",
            Phase::Handshake => "in the tls handshake with",
        })
    }
}

/// Why no certificate chain was captured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error(
        "bad address `{addr}`: {reason} (hint: give HOST:PORT, e.g. `httpbin.foo:8000`, \
         `10.1.2.3:8443` or `[::1]:443`)"
    )]
    BadAddress { addr: String, reason: &'static str },

    #[error("bad server name `{name}` (hint: pass a dns name with `--sni`)")]
    BadServerName { name: String },

    #[error("bad http path `{path}`: {reason} (hint: e.g. `--http-get /headers`)")]
    BadRequestPath { path: String, reason: &'static str },

    #[error("cannot resolve `{host}`")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },

    #[error("connection refused by `{addr}` (hint: is anything listening on that port?)")]
    ConnectionRefused { addr: String },

    #[error("cannot connect to `{addr}`")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },

    #[error("timed out after `{}` {phase} `{addr}` (hint: raise `--timeout`)", Human(*after))]
    Timeout {
        addr: String,
        phase: Phase,
        after: Duration,
    },

    #[error(
        "`{addr}` does not speak tls: it answered `{first_bytes}` (hint: is this a plaintext port?)"
    )]
    NotTls { addr: String, first_bytes: String },

    #[error("tls handshake with `{addr}` failed before the server proved a certificate")]
    Handshake {
        addr: String,
        #[source]
        source: io::Error,
    },

    #[error("cannot read client {what} `{path}`")]
    ReadClientIdentity {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("bad client {what} `{path}`: {reason}")]
    BadClientIdentity {
        what: &'static str,
        path: String,
        reason: String,
    },
}
