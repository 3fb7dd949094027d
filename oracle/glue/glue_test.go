package glue

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string, parent *testCA) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{Organization: []string{"Istio"}, CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * 365 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func write(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFollowsIstiodsStartUp(t *testing.T) {
	root := newCA(t, "Root CA", nil)
	inter := newCA(t, "Intermediate CA", &root)
	other := newCA(t, "Intermediate CA", &root)
	chain := append(append([]byte{}, inter.pem...), root.pem...)
	cases := []struct {
		name   string
		files  map[string][]byte
		loads  bool
		mode   string
		layout string
		err    string
	}{
		{"complete istiod layout", map[string][]byte{
			"ca-cert.pem": inter.pem, "ca-key.pem": keyPEM(t, inter.key), "cert-chain.pem": chain, "root-cert.pem": root.pem,
		}, true, ModePlugged, LayoutIstiod, ""},
		{"nothing plugged", map[string][]byte{}, true, ModeSelfSigned, LayoutIstiod, ""},
		{"only the root", map[string][]byte{"root-cert.pem": root.pem}, false, "", LayoutIstiod,
			"failed to create an istiod CA: incomplete signing CA bundle detected"},
		{"key of another certificate", map[string][]byte{
			"ca-cert.pem": inter.pem, "ca-key.pem": keyPEM(t, other.key), "cert-chain.pem": chain, "root-cert.pem": root.pem,
		}, false, "", LayoutIstiod, "the cert does not match the key"},
		{"kubernetes.io/tls layout", map[string][]byte{
			"tls.crt": inter.pem, "tls.key": keyPEM(t, inter.key), "ca.crt": root.pem,
		}, true, ModePlugged, LayoutTLS, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, got := Load(write(t, c.files))
			if res.Loads != c.loads || res.Mode != c.mode || res.Layout != c.layout {
				t.Fatalf("got %+v", res)
			}
			if !strings.Contains(res.Error, c.err) || (c.err == "") != (res.Error == "") {
				t.Fatalf("error %q, want %q", res.Error, c.err)
			}
			if (got != nil) != (c.mode == ModePlugged) {
				t.Fatalf("CA returned: %v, mode %q", got != nil, c.mode)
			}
		})
	}
}

func TestSignAnswersAsIstiodsCAServer(t *testing.T) {
	root := newCA(t, "Root CA", nil)
	inter := newCA(t, "Intermediate CA", &root)
	dir := write(t, map[string][]byte{
		"ca-cert.pem": inter.pem, "ca-key.pem": keyPEM(t, inter.key),
		"cert-chain.pem": append(append([]byte{}, inter.pem...), root.pem...), "root-cert.pem": root.pem,
	})
	_, c := Load(dir)
	if c == nil {
		t.Fatal("the bundle did not load")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	res := Sign(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), "spiffe://cluster.local/ns/foo/sa/httpbin", 0)
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	// leaf, intermediate, root (cert-chain.pem), root (root-cert.pem): istio/istio#39001.
	if len(res.Elements) != 4 || res.Elements[3] != string(root.pem) || res.TrustBundlePEM != string(root.pem) {
		t.Fatalf("elements %d, last is root: %v", len(res.Elements), res.Elements[len(res.Elements)-1] == string(root.pem))
	}
	if strings.Count(res.ServedPEM, "BEGIN CERTIFICATE") != 4 {
		t.Fatalf("served chain:\n%s", res.ServedPEM)
	}
	// A caller without the test token is refused as istiod refuses it.
	bad := Sign(c, []byte("not a csr"), "spiffe://cluster.local/ns/foo/sa/httpbin", 0)
	if !strings.Contains(bad.Error, "CSR signing error") {
		t.Fatalf("bad CSR: %q", bad.Error)
	}
}

func TestSubsetRelationComparesCertificateSets(t *testing.T) {
	a := newCA(t, "A", nil)
	b := newCA(t, "B", nil)
	both := append(append([]byte{}, a.pem...), b.pem...)
	crlf := []byte(strings.ReplaceAll(string(a.pem), "\n", "\r\n"))
	cases := []struct {
		name    string
		x, y    []byte
		related bool
	}{
		{"same", a.pem, a.pem, true},
		{"added root", a.pem, both, true},
		{"removed root", both, b.pem, true},
		{"different roots", a.pem, b.pem, false},
		{"same certificate, other bytes", a.pem, crlf, true},
		{"empty", a.pem, nil, false},
	}
	for _, c := range cases {
		if got := subsetRelation(c.x, c.y); got != c.related {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}
