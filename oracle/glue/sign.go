package glue

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	pb "istio.io/api/security/v1alpha1"
	"istio.io/istio/pkg/security"
	"istio.io/istio/pkg/spiffe"
	"istio.io/istio/security/pkg/nodeagent/cache"
	"istio.io/istio/security/pkg/pki/ca"
	caserver "istio.io/istio/security/pkg/server/ca"
)

// TokenPrefix is the bearer-token scheme of the oracle's authenticator, the same
// as the embedded CA's test scheme: `authorization: Bearer <TokenPrefix><SPIFFE id>`
// authenticates as that SPIFFE id.
const TokenPrefix = "meshtrust-test-token:"

// tokenAuthenticator maps a bearer token to the identity it names.
type tokenAuthenticator struct{}

func (tokenAuthenticator) AuthenticatorType() string { return "MeshtrustTestToken" }

func (tokenAuthenticator) Authenticate(ctx security.AuthContext) (*security.Caller, error) {
	md, ok := metadata.FromIncomingContext(ctx.GrpcContext)
	if !ok {
		return nil, errors.New("no metadata")
	}
	for _, v := range md.Get("authorization") {
		token, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		if id, ok := strings.CutPrefix(token, TokenPrefix); ok && id != "" {
			return &security.Caller{AuthSource: security.AuthSourceIDToken, Identities: []string{id}}, nil
		}
	}
	return nil, errors.New("no valid bearer token")
}

// NewServer is Istio's CA gRPC service over c, authenticating with the test token scheme.
func NewServer(c *ca.IstioCA) (*caserver.Server, error) {
	return caserver.New(c, time.Hour, []security.Authenticator{tokenAuthenticator{}}, nil)
}

// SignResult is what CreateCertificate returns and what the agent then holds.
type SignResult struct {
	// Elements are the response's cert_chain for the given CSR, verbatim (PEM strings).
	Elements []string `json:"elements"`
	// ServedPEM is the chain Istio's agent (security/pkg/nodeagent/cache) hands
	// to Envoy after its own CSR for the same identity: what a sidecar serves.
	ServedPEM string `json:"served_pem"`
	// TrustBundlePEM is the agent's trust bundle (ROOTCA) from the same response.
	TrustBundlePEM string `json:"trust_bundle_pem"`
	// Error is the CA server's or the agent's error, verbatim.
	Error string `json:"error,omitempty"`
}

// inProcessClient is the agent's CA client talking to Istio's CA server without
// a network: CSRSign is CreateCertificate with the test token for id.
type inProcessClient struct {
	srv *caserver.Server
	id  string
}

func (c inProcessClient) CSRSign(csrPEM []byte, ttlSeconds int64) ([]string, error) {
	// Istio authenticates only callers on a TLS connection (pkg/security
	// authentication.go); an in-process call carries the peer a TLS stream would.
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv6loopback},
		AuthInfo: credentials.TLSInfo{},
	})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+TokenPrefix+c.id))
	resp, err := c.srv.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: string(csrPEM), ValidityDuration: ttlSeconds})
	if err != nil {
		return nil, err
	}
	// The Citadel client refuses a response without a root (providers/citadel).
	if len(resp.CertChain) <= 1 {
		return nil, errors.New("invalid empty CertChain")
	}
	return resp.CertChain, nil
}

// GetRootCertBundle: like the Citadel client, none; the agent takes the last element.
func (inProcessClient) GetRootCertBundle() ([]string, error) { return nil, nil }
func (inProcessClient) Close()                               {}

// Sign calls Istio's CreateCertificate on c for csrPEM as identity id, asking
// for ttl (0: the CA's default), then runs Istio's agent secret cache for the
// same identity and records the chain it would hand to Envoy.
func Sign(c *ca.IstioCA, csrPEM []byte, id string, ttl time.Duration) SignResult {
	srv, err := NewServer(c)
	if err != nil {
		return SignResult{Error: err.Error()}
	}
	client := inProcessClient{srv: srv, id: id}
	elements, err := client.CSRSign(csrPEM, int64(ttl/time.Second))
	if err != nil {
		return SignResult{Error: err.Error()}
	}
	res := SignResult{Elements: elements}
	sid, err := spiffe.ParseIdentity(id)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	agent, err := cache.NewSecretManagerClient(client, &security.Options{
		TrustDomain:        sid.TrustDomain,
		WorkloadNamespace:  sid.Namespace,
		ServiceAccount:     sid.ServiceAccount,
		WorkloadRSAKeySize: 2048,
		SecretTTL:          DefaultWorkloadCertTTL,
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer agent.Close()
	item, err := agent.GenerateSecret(security.WorkloadKeyCertResourceName)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.ServedPEM, res.TrustBundlePEM = string(item.CertificateChain), string(item.RootCert)
	return res
}
