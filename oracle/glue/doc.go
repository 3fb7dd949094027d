// Package glue runs Istio's own CA code on a cacerts directory and reports,
// as JSON, what istiod would do with it: load or refuse it (Load), what the CA
// API returns for a CSR and which chain the sidecar then serves (Sign), what a
// hot reload does (Reload), and Istio's CA gRPC server on loopback (Serve).
//
// Everything past the choice of files is Istio's code, called through its
// exported API (security/pkg/pki/ca, security/pkg/pki/util,
// security/pkg/server/ca, security/pkg/nodeagent/cache). The choice of files
// (which layout, whether the bundle is complete) lives in unexported functions
// of istio.io/istio/pilot/pkg/bootstrap (istio_ca.go: detectSigningCABundleAndCRL,
// checkCABundleCompleteness), so this package restates those few stat calls;
// the error texts it returns are istiod's, wrapped the way istiod wraps them.
package glue
