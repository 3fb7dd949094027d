//! A workload with its sidecar: an agent that gets a certificate from the CA over
//! gRPC (its key never leaves it), an inbound listener that speaks mTLS with
//! istiod's served chain (and plaintext only under PERMISSIVE), the app behind it
//! (httpbin's small API, or sleep, which serves nothing), and the outbound side
//! that makes requests and probes for other workloads.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::KeyPair;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::ca::Identity;
use super::grpc::{self, CaClient};
use super::policy::Policies;
use super::tls::{self, MeshServerVerifier};
use crate::istio::served;
use crate::pki::{KeyAlg, PkiError};
use crate::scenario::target::{
    App, CapturedChain, Handshake, Mode, Outcome, Transport, WorkloadRef,
};

/// How long a probe waits after its handshake for the server to reject its certificate.
/// In TLS 1.3 the server judges the client's certificate after the client considers the
/// handshake done, so a rejection arrives as an alert on the first read.
/// A bound on any single request, so a wedged peer fails a test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The agent's requested TTL (`SECRET_TTL`).
const AGENT_TTL_SECONDS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("cannot generate the key of `{workload}`: {cause}")]
    Key {
        workload: WorkloadRef,
        cause: PkiError,
    },
    #[error("`{workload}` cannot reach the CA: {cause}")]
    Connect {
        workload: WorkloadRef,
        cause: tonic::transport::Error,
    },
    #[error("the CA refused `{workload}`'s CSR: {status}")]
    Refused {
        workload: WorkloadRef,
        status: tonic::Status,
    },
    #[error("`{workload}` got an unusable certificate: {reason}")]
    BadCertificate {
        workload: WorkloadRef,
        reason: String,
    },
    #[error("`{workload}` cannot listen: {cause}")]
    Listen {
        workload: WorkloadRef,
        cause: io::Error,
    },
}

/// What a workload needs from its cluster to start.
pub struct Mesh {
    pub ca_addr: SocketAddr,
    /// The roots of `istio-ca-root-cert`: the agent's trust for istiod and the sidecar's for peers.
    pub roots: Vec<CertificateDer<'static>>,
    pub trust_domain: String,
    pub policies: Arc<Policies>,
}

/// A running workload. Its listener stops when it is dropped.
pub struct Workload {
    id: WorkloadRef,
    app: App,
    spiffe_id: String,
    key: Arc<KeyPair>,
    chain: Vec<CertificateDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
    addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("id", &self.id)
            .field("spiffe_id", &self.spiffe_id)
            .field("addr", &self.addr)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Asks the CA for a certificate for a new key: the agent's bootstrap.
pub async fn request_certificate(
    workload: &WorkloadRef,
    key: &KeyPair,
    spiffe_id: &str,
    token: &str,
    ca_addr: SocketAddr,
    roots: &[CertificateDer<'static>],
) -> Result<Vec<CertificateDer<'static>>, WorkloadError> {
    let csr = grpc::agent_csr(key, spiffe_id).map_err(|e| WorkloadError::BadCertificate {
        workload: workload.clone(),
        reason: format!("cannot make a CSR: {e}"),
    })?;
    let mut client =
        CaClient::connect(ca_addr, roots)
            .await
            .map_err(|source| WorkloadError::Connect {
                workload: workload.clone(),
                cause: source,
            })?;
    let pems = client
        .create_certificate(&csr, AGENT_TTL_SECONDS, Some(token))
        .await
        .map_err(|status| WorkloadError::Refused {
            workload: workload.clone(),
            status,
        })?;
    // As Istio's agent: every element concatenated is the chain Envoy serves.
    let elements: Vec<Vec<u8>> = pems.into_iter().map(String::into_bytes).collect();
    let chain = served::served_certificates(&served::agent_chain(&elements));
    if elements.len() <= 1 || chain.is_empty() {
        return Err(WorkloadError::BadCertificate {
            workload: workload.clone(),
            reason: format!(
                "invalid empty CertChain: the CA returned {} element(s) and {} certificate(s)",
                elements.len(),
                chain.len()
            ),
        });
    }
    Ok(chain)
}

impl Workload {
    /// Starts `app` as `id` (its service account is its name): key, CSR, certificate, listener.
    pub async fn start(
        id: WorkloadRef,
        app: App,
        key_alg: KeyAlg,
        token: &str,
        mesh: Mesh,
    ) -> Result<Workload, WorkloadError> {
        let identity = Identity::new(&id.namespace, &id.name);
        let spiffe_id = identity.spiffe_id(&mesh.trust_domain);
        let key = tokio::task::spawn_blocking(move || key_alg.generate())
            .await
            .expect("key generation does not panic")
            .map_err(|source| WorkloadError::Key {
                workload: id.clone(),
                cause: source,
            })?;
        let chain =
            request_certificate(&id, &key, &spiffe_id, token, mesh.ca_addr, &mesh.roots).await?;
        let config =
            tls::server_config(chain.clone(), &key, Some(&mesh.roots), &[]).map_err(|e| {
                WorkloadError::BadCertificate {
                    workload: id.clone(),
                    reason: e.to_string(),
                }
            })?;
        let listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| WorkloadError::Listen {
                    workload: id.clone(),
                    cause: source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| WorkloadError::Listen {
                workload: id.clone(),
                cause: source,
            })?;
        let (shutdown, stopped) = oneshot::channel();
        let inbound = Inbound {
            app,
            namespace: id.namespace.clone(),
            spiffe_id: spiffe_id.clone(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            policies: mesh.policies,
        };
        tokio::spawn(inbound.serve(listener, stopped));
        Ok(Workload {
            id,
            app,
            spiffe_id,
            key: Arc::new(key),
            chain,
            roots: mesh.roots,
            addr,
            _shutdown: shutdown,
        })
    }

    pub fn id(&self) -> &WorkloadRef {
        &self.id
    }

    pub fn app(&self) -> App {
        self.app
    }

    pub fn spiffe_id(&self) -> &str {
        &self.spiffe_id
    }

    /// The chain this workload's sidecar serves (as istiod returned it).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A GET of `path` to the workload at `to` whose identity should be `to_id`.
    pub async fn request(
        &self,
        to: SocketAddr,
        to_id: &str,
        host: &str,
        transport: Transport,
        path: &str,
    ) -> Outcome {
        let attempt = async {
            let tcp = TcpStream::connect(to)
                .await
                .map_err(|e| format!("connect to {to}: {e}"))?;
            match transport {
                Transport::Plaintext => http_get(tcp, host, path).await,
                Transport::Mtls => {
                    let verifier = MeshServerVerifier::new(self.roots.clone(), to_id.to_owned());
                    let config = tls::client_config(
                        Arc::new(verifier),
                        Some((self.chain.clone(), &self.key)),
                        &[],
                    )
                    .map_err(|e| format!("client TLS configuration: {e}"))?;
                    let tls = TlsConnector::from(Arc::new(config))
                        .connect(server_name(host), tcp)
                        .await
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                    http_get(tls, host, path).await
                }
            }
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(reason)) => Outcome::Refused { reason },
            Err(_) => Outcome::Refused {
                reason: format!("no response within {REQUEST_TIMEOUT:?}"),
            },
        }
    }

    /// A probe beside this workload (with its identity, ALPN `istio`, trusting nothing)
    /// connects to `to` and records the chain it is shown.
    pub async fn probe(&self, to: SocketAddr, host: &str) -> Probed {
        // The same probe as the in-pod one on kind (`meshtrust-probe`): it records the
        // chain without trusting it, presents this workload's certificate as the sidecar
        // would, and sends a request so that the server's verdict on us is seen.
        let identity = {
            let chain: String = self.chain.iter().map(crate::pki::to_pem).collect();
            meshtrust_probe::ClientIdentity::from_pem(
                chain.as_bytes(),
                self.key.serialize_pem().as_bytes(),
            )
        };
        let identity = match identity {
            Ok(i) => i,
            Err(e) => return Probed::failed(format!("the workload's own identity: {e}")),
        };
        let mut opts = meshtrust_probe::ProbeOptions::new(to.to_string());
        opts.sni = Some(host.to_owned());
        opts.alpn = vec!["istio".into()];
        opts.client_identity = Some(identity);
        opts.timeout = REQUEST_TIMEOUT;
        opts.request = Some(
            format!("GET /status/200 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .into_bytes(),
        );
        let captured = tokio::task::spawn_blocking(move || meshtrust_probe::probe(&opts)).await;
        match captured {
            Ok(Ok(c)) => Probed {
                handshake: match &c.client_auth {
                    meshtrust_probe::ClientAuthOutcome::Refused { alert } => {
                        Handshake::Failed(format!("the server rejected the handshake: {alert}"))
                    }
                    _ => Handshake::Completed,
                },
                protocol: Some(c.tls_version),
                alpn: c.alpn.map(String::into_bytes),
                chain: c.chain,
            },
            Ok(Err(e)) => Probed::failed(e.to_string()),
            Err(e) => Probed::failed(format!("the probe panicked: {e}")),
        }
    }
}

impl Workload {
    /// `<name>.<namespace>.svc.cluster.local`: the Host header and SNI a sidecar uses for it.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.id.name, self.id.namespace)
    }

    /// The chain `server` presents to a probe beside this workload, as the target interface
    /// reports it.
    pub async fn capture_from(&self, server: &Workload) -> CapturedChain {
        let probed = self.probe(server.addr(), &server.host()).await;
        CapturedChain {
            chain: probed.chain,
            server: server.id.clone(),
            client: self.id.clone(),
            protocol: probed.protocol,
            alpn: probed.alpn,
            handshake: probed.handshake,
        }
    }

    /// A GET of `path` to `server`, through this workload's sidecar or around it.
    pub async fn request_to(&self, server: &Workload, transport: Transport, path: &str) -> Outcome {
        self.request(
            server.addr(),
            server.spiffe_id(),
            &server.host(),
            transport,
            path,
        )
        .await
    }
}

/// What a probe saw.
#[derive(Debug, Clone)]
pub struct Probed {
    pub chain: Vec<CertificateDer<'static>>,
    pub protocol: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub handshake: Handshake,
}

impl Probed {
    fn failed(reason: String) -> Self {
        Probed {
            chain: Vec::new(),
            protocol: None,
            alpn: None,
            handshake: Handshake::Failed(reason),
        }
    }
}

fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("workload.mesh").expect("a valid name"))
}

async fn http_get<S>(io: S, host: &str, path: &str) -> Result<Outcome, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("the connection was closed: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Outcome::Response { status, body })
}

/// The sidecar's inbound listener and the app behind it.
struct Inbound {
    app: App,
    namespace: String,
    spiffe_id: String,
    acceptor: TlsAcceptor,
    policies: Arc<Policies>,
}

/// A TLS ClientHello starts with a handshake record (content type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl Inbound {
    async fn serve(self, listener: TcpListener, mut stopped: oneshot::Receiver<()>) {
        let this = Arc::new(self);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut stopped => return,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let this = this.clone();
            tokio::spawn(async move { this.connection(tcp).await });
        }
    }

    async fn connection(&self, tcp: TcpStream) {
        // Envoy's TLS inspector: sniff the first byte to tell mTLS from plaintext.
        let mut first = [0u8; 1];
        if !matches!(tcp.peek(&mut first).await, Ok(1)) {
            return;
        }
        if first[0] == TLS_HANDSHAKE_RECORD {
            let Ok(tls) = self.acceptor.accept(tcp).await else {
                return;
            };
            let client = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|leaf| Peer {
                    uri: tls::spiffe_ids(leaf).into_iter().next().unwrap_or_default(),
                    hash: hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf).as_ref()),
                });
            self.http(tls, client).await;
        } else if self.policies.mode(&self.namespace) == Mode::Permissive {
            self.http(tcp, None).await;
        }
        // STRICT and plaintext: the connection is dropped unanswered, as Envoy resets it.
    }

    async fn http<S>(&self, io: S, client: Option<Peer>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let app = self.app;
        let server_id = self.spiffe_id.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let reply = respond(app, &server_id, client.as_ref(), &req);
            async move { Ok::<_, Infallible>(reply) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .await;
    }
}

struct Peer {
    uri: String,
    hash: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn respond(
    app: App,
    server_id: &str,
    client: Option<&Peer>,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if app == App::Sleep {
        // sleep's container listens on nothing: Envoy answers for the missing upstream.
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure".into(),
        );
    }
    let path = req.uri().path();
    if let Some(code) = path.strip_prefix("/status/") {
        return match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => reply(status, String::new()),
            None => reply(StatusCode::BAD_REQUEST, "invalid status code".into()),
        };
    }
    if path == "/headers" {
        let mut headers = serde_json::Map::new();
        for (name, value) in req.headers() {
            headers.insert(
                canonical(name.as_str()),
                serde_json::Value::String(value.to_str().unwrap_or_default().to_owned()),
            );
        }
        // What Envoy adds for an mTLS peer (forward_client_cert_details: APPEND_FORWARD).
        if let Some(peer) = client {
            headers.insert(
                "X-Forwarded-Client-Cert".into(),
                serde_json::Value::String(format!(
                    "By={server_id};Hash={};Subject=\"\";URI={}",
                    peer.hash, peer.uri
                )),
            );
        }
        let body = serde_json::json!({ "headers": headers });
        return reply(StatusCode::OK, format!("{body:#}\n"));
    }
    reply(StatusCode::NOT_FOUND, "404 page not found\n".into())
}

/// `x-forwarded-client-cert` -> `X-Forwarded-Client-Cert`, as httpbin prints header names.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
