//! Every way of not capturing a chain ends with one clear `error:` line, exit 2, empty stdout.

use std::time::Duration;

use crate::support::listeners::{PlaintextHttp, Silent, closed_port};
use crate::support::pki::{KeyType, Pki};
use crate::support::probe_bin::{Run, run_probe};

fn fails(args: &[&str]) -> Run {
    let run = run_probe(args.iter().copied());
    run.expect_code(2);
    assert_eq!(run.stdout, "", "stdout must carry only a chain:\n{run}");
    run
}

#[test]
fn a_plaintext_http_port_is_reported_as_not_tls() {
    let server = PlaintextHttp::start();
    let addr = format!("127.0.0.1:{}", server.port);
    fails(&[&addr]).expect_stderr(&format!(
        "error: `{addr}` does not speak tls: it answered `HTTP/1.1 400 Bad Request` \
         (hint: is this a plaintext port?)\n"
    ));
}

#[test]
fn a_server_that_never_answers_times_out_in_the_handshake_within_the_timeout() {
    let server = Silent::start();
    let addr = format!("127.0.0.1:{}", server.port);
    let run = fails(&[&addr, "--timeout", "1s"]);
    run.expect_stderr(&format!(
        "error: timed out after `1s` in the tls handshake with `{addr}` (hint: raise `--timeout`)\n"
    ));
    assert!(
        run.elapsed >= Duration::from_millis(900) && run.elapsed < Duration::from_secs(3),
        "the timeout was not kept:\n{run}"
    );
}

#[test]
fn a_closed_port_is_reported_as_connection_refused() {
    let addr = format!("127.0.0.1:{}", closed_port());
    fails(&[&addr]).expect_stderr(&format!(
        "error: connection refused by `{addr}` (hint: is anything listening on that port?)\n"
    ));
}

#[test]
fn an_address_without_a_port_or_with_a_bad_port_is_bad_input() {
    const HINT: &str =
        "(hint: give HOST:PORT, e.g. `httpbin.foo:8000`, `10.1.2.3:8443` or `[::1]:443`)";
    fails(&["httpbin.foo"]).expect_stderr(&format!(
        "error: bad address `httpbin.foo`: missing port {HINT}\n"
    ));
    fails(&["127.0.0.1:99999"]).expect_stderr(&format!(
        "error: bad address `127.0.0.1:99999`: the port must be a number from 1 to 65535 {HINT}\n"
    ));
}

#[test]
fn a_missing_cert_file_is_named() {
    let pki = Pki::new(KeyType::P256);
    let missing = pki.path("no-such-cert.pem").display().to_string();
    let key = pki.path("sleep.key").display().to_string();
    fails(&["127.0.0.1:1", "--cert", &missing, "--key", &key]).expect_stderr(&format!(
        "error: cannot read client certificate `{missing}`: No such file or directory (os error 2)\n"
    ));
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_named() {
    let pki = Pki::new(KeyType::P256);
    let cert = pki.path("sleep-chain.pem").display().to_string();
    let other_key = pki.path("workload.key").display().to_string();
    fails(&["127.0.0.1:1", "--cert", &cert, "--key", &other_key]).expect_stderr(&format!(
        "error: bad client key `{other_key}`: it does not match the certificate `{cert}`\n"
    ));
}

#[test]
fn a_cert_file_without_certificates_is_named() {
    let pki = Pki::new(KeyType::P256);
    let key = pki.path("sleep.key").display().to_string();
    fails(&["127.0.0.1:1", "--cert", &key, "--key", &key]).expect_stderr(&format!(
        "error: bad client certificate `{key}`: no `CERTIFICATE` pem block\n"
    ));
}

#[test]
fn a_cert_without_a_key_is_a_usage_error() {
    let run = fails(&["127.0.0.1:1", "--cert", "client.pem"]);
    assert!(
        run.stderr
            .starts_with("error: the following required arguments were not provided:"),
        "{run}"
    );
}
