//! What the server thought of us: STRICT refuses a probe without a mesh certificate, accepts
//! one with a certificate from the same root, and refuses one from another root.

use std::time::Duration;

use meshtrust_probe::{Capture, ClientAuthOutcome, ClientIdentity, ProbeOptions, probe};

use crate::support::openssl::{SServer, ServerOptions, Tls};
use crate::support::pki::{KeyType, Pki};
use crate::support::probe_bin::run_probe;

fn refused(alert: &str) -> ClientAuthOutcome {
    ClientAuthOutcome::Refused {
        alert: alert.into(),
    }
}

fn sleep_identity(pki: &Pki) -> ClientIdentity {
    ClientIdentity::from_files(&pki.path("sleep-chain.pem"), &pki.path("sleep.key")).unwrap()
}

fn probe_with(
    server: &SServer,
    tls: Tls,
    identity: Option<ClientIdentity>,
    request: Option<&[u8]>,
) -> Capture {
    let options = ProbeOptions {
        versions: tls.probe_versions(),
        client_identity: identity,
        request: request.map(<[u8]>::to_vec),
        timeout: Duration::from_secs(2),
        ..ProbeOptions::new(server.addr())
    };
    probe(&options).unwrap_or_else(|e| panic!("{tls:?}: {e}\n{}", server.output()))
}

#[test]
fn strict_server_demands_a_certificate_and_refuses_a_probe_without_one() {
    let pki = Pki::new(KeyType::Rsa2048);
    let server = SServer::start(&pki, &ServerOptions::strict());
    // TLS 1.2 refuses inside the handshake; TLS 1.3 only on the first read after it.
    for (tls, alert) in [
        (Tls::V12, "handshake failure"),
        (Tls::V13, "certificate required"),
    ] {
        let capture = probe_with(&server, tls, None, None);
        assert!(capture.client_cert_requested, "{tls:?}");
        assert_eq!(capture.client_auth, refused(alert), "{tls:?}");
        assert_eq!(
            capture.chain.len(),
            4,
            "{tls:?}: a refusal still captures the chain"
        );
    }
}

#[test]
fn strict_server_refuses_even_when_the_probe_sends_a_request_first() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(
        &pki,
        &ServerOptions {
            www: true,
            ..ServerOptions::strict()
        },
    );
    let capture = probe_with(&server, Tls::V13, None, Some(b"GET / HTTP/1.0\r\n\r\n"));
    assert_eq!(capture.client_auth, refused("certificate required"));
    assert_eq!(capture.response, None);
}

#[test]
fn strict_server_accepts_a_client_certificate_from_the_same_root_and_answers() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(
        &pki,
        &ServerOptions {
            www: true,
            ..ServerOptions::strict()
        },
    );
    for tls in Tls::BOTH {
        let capture = probe_with(
            &server,
            tls,
            Some(sleep_identity(&pki)),
            Some(b"GET / HTTP/1.0\r\n\r\n"),
        );
        assert_eq!(
            capture.client_auth,
            ClientAuthOutcome::Accepted,
            "{tls:?}\n{}",
            server.output()
        );
        let response =
            String::from_utf8_lossy(capture.response.as_deref().unwrap_or_default()).into_owned();
        assert!(
            response.starts_with("HTTP/1.0 200 ok"),
            "{tls:?}: {response:?}"
        );
    }
}

#[test]
fn a_server_that_keeps_the_connection_open_after_our_certificate_accepted_it() {
    let pki = Pki::new(KeyType::Rsa2048);
    let server = SServer::start(&pki, &ServerOptions::strict());
    for tls in Tls::BOTH {
        let capture = probe_with(&server, tls, Some(sleep_identity(&pki)), None);
        assert_eq!(capture.client_auth, ClientAuthOutcome::Accepted, "{tls:?}");
        assert_eq!(capture.error_after_chain, None, "{tls:?}");
    }
}

#[test]
fn strict_server_refuses_a_client_certificate_from_another_root() {
    let pki = Pki::new(KeyType::P256);
    let foreign = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    for tls in Tls::BOTH {
        let capture = probe_with(&server, tls, Some(sleep_identity(&foreign)), None);
        assert_eq!(capture.client_auth, refused("unknown ca"), "{tls:?}");
    }
}

#[test]
fn a_server_without_verify_does_not_request_a_client_certificate() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(
        &pki,
        &ServerOptions {
            www: true,
            ..ServerOptions::default()
        },
    );
    for tls in Tls::BOTH {
        let capture = probe_with(&server, tls, None, Some(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!capture.client_cert_requested, "{tls:?}");
        assert_eq!(
            capture.client_auth,
            ClientAuthOutcome::NotRequested,
            "{tls:?}"
        );
        assert_eq!(capture.chain.len(), 4, "{tls:?}");
    }
}

#[test]
fn binary_with_cert_and_key_completes_mtls_and_shows_the_response() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(
        &pki,
        &ServerOptions {
            www: true,
            ..ServerOptions::strict()
        },
    );
    let run = run_probe([
        server.addr(),
        "--cert".into(),
        pki.path("sleep-chain.pem").display().to_string(),
        "--key".into(),
        pki.path("sleep.key").display().to_string(),
        "--http-get".into(),
        "/".into(),
        "--format".into(),
        "json".into(),
    ]);
    run.expect_code(0);
    let capture: Capture = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(capture.client_auth, ClientAuthOutcome::Accepted, "{run}");
    assert!(
        run.stderr
            .contains("the server accepted our client certificate"),
        "{run}"
    );
}

/// Probes `server` with the default 5 s timeout and returns the capture and how long it took.
fn timed_probe(
    server: &SServer,
    tls: Tls,
    identity: Option<ClientIdentity>,
) -> (Capture, Duration) {
    let options = ProbeOptions {
        versions: tls.probe_versions(),
        client_identity: identity,
        ..ProbeOptions::new(server.addr())
    };
    assert_eq!(
        options.timeout,
        Duration::from_secs(5),
        "the default timeout changed"
    );
    let started = std::time::Instant::now();
    let capture = probe(&options).unwrap_or_else(|e| panic!("{tls:?}: {e}\n{}", server.output()));
    (capture, started.elapsed())
}

#[test]
fn a_server_that_does_not_speak_first_is_probed_as_soon_as_the_handshake_completes() {
    // `s_server -www` waits for a request; the chain is ours once the handshake is done.
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(
        &pki,
        &ServerOptions {
            www: true,
            ..ServerOptions::default()
        },
    );
    for tls in [Tls::V12, Tls::V13] {
        let (capture, took) = timed_probe(&server, tls, None);
        assert_eq!(capture.chain.len(), 4, "{tls:?}");
        assert_eq!(
            capture.client_auth,
            ClientAuthOutcome::NotRequested,
            "{tls:?}"
        );
        assert!(took < Duration::from_secs(1), "{tls:?}: took {took:?}");
    }
}

#[test]
fn a_strict_server_that_accepts_us_costs_at_most_the_verdict_window() {
    // TLS 1.3: the verdict on our certificate would come after our Finished; a server that
    // accepts says nothing, so the probe waits the short verdict window, not its timeout.
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    for tls in [Tls::V12, Tls::V13] {
        let (capture, took) = timed_probe(&server, tls, Some(sleep_identity(&pki)));
        assert_eq!(capture.client_auth, ClientAuthOutcome::Accepted, "{tls:?}");
        assert!(took < Duration::from_secs(2), "{tls:?}: took {took:?}");
    }
    // ... and the window is long enough to hear a refusal (the negative twin).
    let (capture, took) = timed_probe(&server, Tls::V13, None);
    assert_eq!(capture.client_auth, refused("certificate required"));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
