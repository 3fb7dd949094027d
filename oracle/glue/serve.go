package glue

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"istio.io/istio/security/pkg/pki/ca"
)

// Serve runs Istio's CA gRPC service (IstioCertificateService) for c on addr
// (loopback only), over TLS with a serving certificate Istio's CA issues for
// host "istiod.istio-system.svc", until the listener fails. ready is called with
// the bound address once it accepts.
func Serve(c *ca.IstioCA, addr string, ready func(string)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--addr %q: the oracle serves on loopback only", addr)
	}
	certPEM, keyPEM, err := c.GenKeyCert([]string{"istiod.istio-system.svc"}, 24*time.Hour, false)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	srv, err := NewServer(c)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
	})))
	srv.Register(g)
	ready(lis.Addr().String())
	return g.Serve(lis)
}
