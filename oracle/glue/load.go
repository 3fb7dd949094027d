package glue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/security/pkg/pki/ca"
	"istio.io/istio/security/pkg/pki/util"
)

// istiod's defaults for the CA it builds from plugged files (pilot/pkg/bootstrap,
// DEFAULT_WORKLOAD_CERT_TTL, MAX_WORKLOAD_CERT_TTL, CITADEL_SELF_SIGNED_CA_RSA_KEY_SIZE).
const (
	DefaultWorkloadCertTTL = 24 * time.Hour
	MaxWorkloadCertTTL     = 90 * 24 * time.Hour
	CARSAKeySize           = 2048
)

// Layout names the file layout istiod chose.
const (
	LayoutIstiod = "istiod"
	LayoutTLS    = "kubernetes.io/tls"
)

// Mode names the CA istiod runs.
const (
	ModePlugged    = "plugged"
	ModeSelfSigned = "self-signed"
)

// LoadResult is what istiod's start-up does with a cacerts directory.
type LoadResult struct {
	// Loads is false when istiod refuses to start.
	Loads bool `json:"loads"`
	// Mode is "plugged" or "self-signed" (nothing plugged); empty when refused.
	Mode string `json:"mode,omitempty"`
	// Layout is "istiod" or "kubernetes.io/tls".
	Layout string `json:"layout"`
	// Error is istiod's error, verbatim, when it refuses.
	Error string `json:"error,omitempty"`
	// Log holds the lines istiod logs on the way, in order.
	Log []string `json:"log"`
	// DefaultTTLSeconds is the workload TTL istiod uses when a CSR asks for none.
	DefaultTTLSeconds int64 `json:"default_ttl_seconds,omitempty"`
	// CRLFile is the CRL file istiod took, if any.
	CRLFile string `json:"crl_file,omitempty"`
}

// fileBundle is istiod's choice of files for dir: tls.crt selects the
// kubernetes.io/tls layout; otherwise the istiod layout, with ca-crl.pem when it
// exists and PILOT_ENABLE_CA_CRL is on.
func fileBundle(dir string) (ca.SigningCAFileBundle, string, []string, error) {
	var log []string
	tlsCert := filepath.Join(dir, ca.TLSSecretCACertFile)
	if _, err := os.Stat(tlsCert); err == nil {
		root := filepath.Join(dir, ca.TLSSecretRootCertFile)
		log = append(log, "Using kubernetes.io/tls secret type for signing ca files")
		return ca.SigningCAFileBundle{
			RootCertFile:    root,
			CertChainFiles:  []string{tlsCert, root},
			SigningCertFile: tlsCert,
			SigningKeyFile:  filepath.Join(dir, ca.TLSSecretCAPrivateKeyFile),
		}, LayoutTLS, log, nil
	} else if !os.IsNotExist(err) {
		return ca.SigningCAFileBundle{}, "", log, fmt.Errorf("unable to determine signing file format %v", err)
	}
	log = append(log, "Using istiod file format for signing ca files")
	b := ca.SigningCAFileBundle{
		RootCertFile:    filepath.Join(dir, ca.RootCertFile),
		CertChainFiles:  []string{filepath.Join(dir, ca.CertChainFile)},
		SigningCertFile: filepath.Join(dir, ca.CACertFile),
		SigningKeyFile:  filepath.Join(dir, ca.CAPrivateKeyFile),
	}
	if features.EnableCACRL {
		crl := filepath.Join(dir, ca.CACRLFile)
		if _, err := os.Stat(crl); err == nil {
			log = append(log, "Detected CRL file")
			b.CRLFile = crl
		}
	}
	return b, LayoutIstiod, log, nil
}

func exists(name string) (bool, error) {
	if _, err := os.Stat(name); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("error checking file %s: %v", name, err)
	}
	return true, nil
}

// completeness reports whether every file istiod needs exists, and whether any does.
func completeness(b ca.SigningCAFileBundle) (complete, any bool, err error) {
	chain := false
	for _, f := range b.CertChainFiles {
		ok, err := exists(f)
		if err != nil {
			return false, false, err
		}
		chain = chain || ok
	}
	all := []bool{chain}
	for _, f := range []string{b.SigningKeyFile, b.SigningCertFile, b.RootCertFile} {
		ok, err := exists(f)
		if err != nil {
			return false, false, err
		}
		all = append(all, ok)
	}
	complete, any = true, false
	for _, ok := range all {
		complete = complete && ok
		any = any || ok
	}
	return complete, any, nil
}

// Load runs istiod's CA start-up on dir, at the current time: the choice of
// files, the completeness rule, ca.NewPluggedCertIstioCAOptions and
// ca.NewIstioCA. It returns the CA when istiod would run in plug-in mode.
func Load(dir string) (LoadResult, *ca.IstioCA) {
	b, layout, log, err := fileBundle(dir)
	res := LoadResult{Layout: layout, Log: log}
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	complete, any, err := completeness(b)
	if err != nil {
		res.Error = fmt.Sprintf("failed to create an istiod CA: %v", err)
		return res, nil
	}
	if !complete && any {
		res.Error = "failed to create an istiod CA: incomplete signing CA bundle detected"
		return res, nil
	}
	if !complete {
		res.Loads, res.Mode = true, ModeSelfSigned
		res.Log = append(res.Log, "Use self-signed certificate as the CA certificate")
		res.DefaultTTLSeconds = int64(DefaultWorkloadCertTTL / time.Second)
		return res, nil
	}
	res.Log = append(res.Log, "Use local CA certificate")
	opts, err := ca.NewPluggedCertIstioCAOptions(b, DefaultWorkloadCertTTL, MaxWorkloadCertTTL, CARSAKeySize)
	if err != nil {
		res.Error = fmt.Sprintf("failed to create an istiod CA: %v", err)
		return res, nil
	}
	if b.CRLFile != "" {
		if _, err := os.ReadFile(b.CRLFile); err != nil {
			res.Error = err.Error()
			return res, nil
		}
		res.CRLFile = filepath.Base(b.CRLFile)
	}
	istioCA, err := ca.NewIstioCA(opts)
	if err != nil {
		res.Error = fmt.Sprintf("failed to create an istiod CA: %v", err)
		return res, nil
	}
	res.Loads, res.Mode = true, ModePlugged
	res.DefaultTTLSeconds = int64(defaultTTL(istioCA, time.Now()) / time.Second)
	return res, istioCA
}

// defaultTTL is the workload TTL the CA applies to a CSR that asks for none:
// DefaultWorkloadCertTTL capped at the time left on the first certificate of the
// chain (NewIstioCA refused an expired one already).
func defaultTTL(c *ca.IstioCA, now time.Time) time.Duration {
	chain := c.GetCAKeyCertBundle().GetCertChainPem()
	if len(chain) == 0 {
		return DefaultWorkloadCertTTL
	}
	left, err := util.TimeBeforeCertExpires(chain, now)
	if err != nil || left > DefaultWorkloadCertTTL {
		return DefaultWorkloadCertTTL
	}
	return left
}
