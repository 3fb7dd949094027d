//! ALPN: Istio's own probe offers `istio`; the capture reports what was negotiated.

use meshtrust_probe::{ProbeOptions, probe};

use crate::support::openssl::{SServer, ServerOptions, Tls};
use crate::support::pki::{KeyType, Pki};

#[test]
fn negotiated_alpn_istio_is_reported_on_both_versions() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(
        &pki,
        &ServerOptions {
            alpn: Some("istio"),
            ..ServerOptions::strict()
        },
    );
    for tls in Tls::BOTH {
        let options = ProbeOptions {
            alpn: vec!["istio".into()],
            versions: tls.probe_versions(),
            ..ProbeOptions::new(server.addr())
        };
        let capture = probe(&options).unwrap();
        assert_eq!(capture.alpn.as_deref(), Some("istio"), "{tls:?}");
    }
}

#[test]
fn no_alpn_is_reported_when_the_server_negotiates_none() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let options = ProbeOptions {
        alpn: vec!["istio".into()],
        ..ProbeOptions::new(server.addr())
    };
    assert_eq!(probe(&options).unwrap().alpn, None);
}
