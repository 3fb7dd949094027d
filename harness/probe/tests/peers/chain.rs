//! The captured chain is exactly what the server sent, as `openssl s_client -showcerts` sees it.

use meshtrust_probe::{Capture, ProbeOptions, probe};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::support::openssl::{SServer, ServerOptions, Tls, s_client_showcerts};
use crate::support::pki::{KeyType, Pki};
use crate::support::probe_bin::run_probe;

fn capture(server: &SServer, tls: Tls) -> Capture {
    let options = ProbeOptions {
        versions: tls.probe_versions(),
        ..ProbeOptions::new(server.addr())
    };
    probe(&options).unwrap_or_else(|e| panic!("{tls:?}: {e}\n{}", server.output()))
}

#[test]
fn chain_is_der_identical_to_openssl_showcerts_for_every_key_type_and_tls_version() {
    for key_type in KeyType::ALL {
        let pki = Pki::new(key_type);
        let server = SServer::start(&pki, &ServerOptions::strict());
        for tls in Tls::BOTH {
            let captured = capture(&server, tls);
            let reference = s_client_showcerts(&pki, server.port, tls);
            assert_eq!(captured.tls_version, tls.name());
            assert_eq!(
                reference.len(),
                4,
                "{key_type:?} {tls:?}: s_client saw {} certs",
                reference.len()
            );
            assert_eq!(
                captured.chain, reference,
                "{key_type:?} {tls:?}: chain differs from s_client's"
            );
        }
    }
}

#[test]
fn chain_is_leaf_intermediate_root_root_byte_for_byte_as_istiod_serves_it() {
    let pki = Pki::new(KeyType::Rsa2048);
    let server = SServer::start(&pki, &ServerOptions::strict());
    for tls in Tls::BOTH {
        assert_eq!(capture(&server, tls).chain, pki.served_chain(), "{tls:?}");
    }
}

#[test]
fn binary_prints_the_chain_as_pem_on_stdout_and_the_refusal_on_stderr() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let run = run_probe([server.addr(), "--tls13".into()]);
    run.expect_code(0).expect_stderr(&format!(
        "captured 4 certificates from `{}` (TLSv1.3, TLS13_AES_256_GCM_SHA384)\n\
         the server demanded a client certificate and refused us: alert `certificate required`\n",
        server.addr()
    ));
    let printed = CertificateDer::pem_slice_iter(run.stdout.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(printed, pki.served_chain(), "{run}");
}

#[test]
fn binary_json_reports_chain_version_and_refusal() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let run = run_probe([
        server.addr(),
        "--tls12".into(),
        "--format".into(),
        "json".into(),
    ]);
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["tls_version"], "TLSv1.2", "{run}");
    assert_eq!(json["client_cert_requested"], true, "{run}");
    assert_eq!(
        json["client_auth"],
        serde_json::json!({"outcome": "refused", "alert": "handshake failure"}),
        "{run}"
    );
    let capture: Capture = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(capture.chain, pki.served_chain());
}

#[test]
fn a_host_name_is_resolved_and_sent_as_sni() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    let capture = probe(&ProbeOptions::new(format!("localhost:{}", server.port))).unwrap();
    assert_eq!(capture.sni.as_deref(), Some("localhost"));
    assert_eq!(capture.chain.len(), 4);
}

#[test]
fn an_ip_address_sends_no_sni_unless_asked() {
    let pki = Pki::new(KeyType::P256);
    let server = SServer::start(&pki, &ServerOptions::strict());
    assert_eq!(capture(&server, Tls::V13).sni, None);
    let named = ProbeOptions {
        sni: Some("httpbin.foo.svc.cluster.local".into()),
        ..ProbeOptions::new(server.addr())
    };
    assert_eq!(
        probe(&named).unwrap().sni.as_deref(),
        Some("httpbin.foo.svc.cluster.local")
    );
}
