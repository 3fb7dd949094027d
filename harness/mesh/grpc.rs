//! Istio's CA API (`istio/api` `security/v1alpha1/ca.proto`) over gRPC and TLS.
//!
//! The messages and the service are written by hand (no protoc on these
//! machines); field numbers are those of ISTIO-FACTS §5. TLS is terminated with
//! tokio-rustls in front of tonic, whose own TLS features would pull in ring.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rcgen::KeyPair;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::{Code, Status};

use super::authority::{Authority, CallError};
use super::ca::IssueError;
use super::tls;

pub const SERVICE: &str = "istio.v1.auth.IstioCertificateService";
pub const CREATE_CERTIFICATE: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";
/// The name istiod's serving certificate carries, and that agents connect to.
pub const ISTIOD_DNS: &str = "istiod.istio-system.svc";

/// `istio.v1.auth.IstioCertificateRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    /// PEM-encoded PKCS#10 request.
    #[prost(string, tag = "1")]
    pub csr: String,
    /// Requested lifetime in seconds; 0 asks for istiod's default.
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
    #[prost(message, optional, tag = "4")]
    pub metadata: Option<prost_types::Struct>,
}

/// `istio.v1.auth.IstioCertificateResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    /// PEM, leaf first, root last.
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}

impl From<CallError> for Status {
    fn from(e: CallError) -> Self {
        let code = match &e {
            CallError::Unauthenticated => Code::Unauthenticated,
            CallError::Issue(IssueError::BadCsr(_) | IssueError::TtlTooLong { .. }) => {
                Code::InvalidArgument
            }
            CallError::Issue(IssueError::Sign(_) | IssueError::SignerExpired(_)) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

/// The `IstioCertificateService` as a tower service that tonic's router can mount.
#[derive(Clone, Debug)]
pub struct CertificateService {
    authority: Arc<Authority>,
}

impl CertificateService {
    pub fn new(authority: Arc<Authority>) -> Self {
        CertificateService { authority }
    }
}

impl tonic::server::NamedService for CertificateService {
    const NAME: &'static str = SERVICE;
}

struct CreateCertificate(Arc<Authority>);

impl tonic::server::UnaryService<IstioCertificateRequest> for CreateCertificate {
    type Response = IstioCertificateResponse;
    type Future = BoxFuture<tonic::Response<IstioCertificateResponse>, Status>;

    fn call(&mut self, request: tonic::Request<IstioCertificateRequest>) -> Self::Future {
        let authority = self.0.clone();
        Box::pin(async move {
            let authorization = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let message = request.into_inner();
            // Signing is CPU-bound (RSA): keep it off the I/O threads.
            let chain = tokio::task::spawn_blocking(move || {
                authority.create_certificate(
                    authorization.as_deref(),
                    &message.csr,
                    message.validity_duration,
                )
            })
            .await
            .map_err(|e| Status::internal(format!("signing task failed: {e}")))??;
            Ok(tonic::Response::new(IstioCertificateResponse {
                cert_chain: chain,
            }))
        })
    }
}

impl<B> tower::Service<http::Request<B>> for CertificateService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == CREATE_CERTIFICATE {
            let method = CreateCertificate(self.authority.clone());
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                    IstioCertificateResponse,
                    IstioCertificateRequest,
                >::default());
                Ok(grpc.unary(method, req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("").into_http()) })
        }
    }
}

/// A TLS connection accepted by the CA's listener; tonic needs [`Connected`](tonic::transport::server::Connected).
pub struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// istiod's CA port (15012), here on a loopback port. Stops when dropped.
#[derive(Debug)]
pub struct CaServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl CaServer {
    /// Serves `authority` over TLS with a serving certificate for [`ISTIOD_DNS`] that the
    /// CA issues itself (as istiod does), on 127.0.0.1 at an ephemeral port.
    pub async fn start(authority: Arc<Authority>) -> io::Result<CaServer> {
        let key = crate::pki::KeyAlg::P256
            .generate()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let chain = authority
            .signer()
            .issue_serving(&key, ISTIOD_DNS, time::OffsetDateTime::now_utc())
            .map_err(|e| io::Error::other(e.to_string()))?;
        let config = tls::server_config(chain, &key, None, &[b"h2"])
            .map_err(|e| io::Error::other(e.to_string()))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<io::Result<TlsConn>>(64);
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();

        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let conn_tx = conn_tx.clone();
                // Handshakes run concurrently so that one slow client does not stall the port.
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(tls) => {
                            let _ = conn_tx.send(Ok(TlsConn(tls))).await;
                        }
                        Err(e) => tracing::debug!("CA handshake failed: {e}"),
                    }
                });
            }
        });
        let service = CertificateService::new(authority);
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::ReceiverStream::new(conn_rx);
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = shutdown_rx.await;
                })
                .await;
            accept_loop.abort();
            if let Err(e) = served {
                tracing::warn!("the CA server stopped: {e}");
            }
        });
        Ok(CaServer {
            addr,
            shutdown: Some(shutdown_tx),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for CaServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A plain tonic client of the CA API over tokio-rustls, trusting `roots` for
/// [`ISTIOD_DNS`] (the agent reads them from `istio-ca-root-cert`).
#[derive(Clone, Debug)]
pub struct CaClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl CaClient {
    pub async fn connect(
        addr: SocketAddr,
        roots: &[CertificateDer<'static>],
    ) -> Result<CaClient, tonic::transport::Error> {
        let config = tls::dns_client_config(roots, &[b"h2"]).expect("a valid client config");
        let connector = TlsConnector::from(Arc::new(config));
        // The URI only names the authority; the connector below decides where and how to connect.
        let endpoint =
            tonic::transport::Endpoint::from_static("http://istiod.istio-system.svc:15012");
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                let connector = connector.clone();
                async move {
                    let tcp = TcpStream::connect(addr).await?;
                    let name = ServerName::try_from(ISTIOD_DNS).expect("a valid DNS name");
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, io::Error>(TokioIo::new(tls))
                }
            }))
            .await?;
        Ok(CaClient {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// `CreateCertificate` with `authorization: Bearer <token>` when a token is given.
    pub async fn create_certificate(
        &mut self,
        csr_pem: &str,
        validity_seconds: i64,
        token: Option<&str>,
    ) -> Result<Vec<String>, Status> {
        self.create_certificate_in(csr_pem, validity_seconds, token, None)
            .await
    }

    /// As [`create_certificate`](Self::create_certificate), with the `ClusterID` header the
    /// agent sends (istiod picks the cluster whose API validates the token by it).
    pub async fn create_certificate_in(
        &mut self,
        csr_pem: &str,
        validity_seconds: i64,
        token: Option<&str>,
        cluster_id: Option<&str>,
    ) -> Result<Vec<String>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("the CA is not reachable: {e}")))?;
        let mut request = tonic::Request::new(IstioCertificateRequest {
            csr: csr_pem.to_owned(),
            validity_duration: validity_seconds,
            metadata: None,
        });
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::invalid_argument("the token is not a valid header value"))?;
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(id) = cluster_id {
            let value = id.parse().map_err(|_| {
                Status::invalid_argument("the cluster id is not a valid header value")
            })?;
            request.metadata_mut().insert("clusterid", value);
        }
        let codec =
            tonic_prost::ProstCodec::<IstioCertificateRequest, IstioCertificateResponse>::default();
        let path = http::uri::PathAndQuery::from_static(CREATE_CERTIFICATE);
        let response = self.grpc.unary(request, path, codec).await?;
        Ok(response.into_inner().cert_chain)
    }
}

/// A workload-agent CSR: empty subject and a critical URI SAN with `spiffe_id`, as Istio's agent makes.
pub fn agent_csr(key: &KeyPair, spiffe_id: &str) -> Result<String, rcgen::Error> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::URI(spiffe_id.try_into()?)];
    params.serialize_request(key)?.pem()
}
