package glue

import (
	"bytes"
	"encoding/pem"
	"os"

	"istio.io/istio/pilot/pkg/features"
)

// Reload outcomes.
const (
	ReloadApplied = "applied"
	ReloadIgnored = "ignored"
	ReloadFailed  = "failed"
)

// ReloadResult is what istiod does when the mounted files change from dir to newDir.
type ReloadResult struct {
	// Outcome is "applied", "ignored" or "failed".
	Outcome string `json:"outcome"`
	// Log holds istiod's lines for the event, in order; the last one tells the outcome.
	Log []string `json:"log"`
	// Error is the update's error, verbatim, when it failed.
	Error string `json:"error,omitempty"`
	// MultiRoot is ISTIO_MULTIROOT_MESH as istiod read it.
	MultiRoot bool `json:"multi_root"`
}

// Reload loads dir as istiod's start-up does, then replays istiod's cacerts file
// event (pilot/pkg/bootstrap istio_ca.go, handleEvent) with the files of newDir:
// the new root bundle is compared by bytes with the loaded one; a different one is
// taken only with ISTIO_MULTIROOT_MESH and a subset relation between the two
// certificate sets; then Istio's KeyCertBundle.UpdateVerifiedKeyCertBundleFromFile.
// The event handler itself is unexported, so its decisions are restated here; the
// update and its errors are Istio's.
func Reload(dir, newDir string) (LoadResult, ReloadResult) {
	loaded, c := Load(dir)
	res := ReloadResult{MultiRoot: features.MultiRootMesh}
	if c == nil || loaded.Mode != ModePlugged {
		res.Outcome, res.Error = ReloadFailed, "the first bundle does not load in plug-in mode"
		return loaded, res
	}
	res.Log = append(res.Log, "Update Istiod cacerts")
	b, _, _, err := fileBundle(newDir)
	if err != nil {
		res.Outcome, res.Error = ReloadFailed, err.Error()
		res.Log = append(res.Log, "unable to determine signing file format "+err.Error())
		return loaded, res
	}
	newRoot, err := os.ReadFile(b.RootCertFile)
	if err != nil {
		res.Outcome, res.Error = ReloadFailed, err.Error()
		res.Log = append(res.Log, "failed reading root-cert.pem: "+err.Error())
		return loaded, res
	}
	bundle := c.GetCAKeyCertBundle()
	if current := bundle.GetRootCertPem(); !bytes.Equal(current, newRoot) {
		if !features.MultiRootMesh {
			res.Outcome = ReloadIgnored
			res.Log = append(res.Log, "Multi root is disabled, updating new ROOT-CA not supported")
			return loaded, res
		}
		if !subsetRelation(current, newRoot) {
			res.Outcome = ReloadIgnored
			res.Log = append(res.Log, "Updating new ROOT-CA not supported")
			return loaded, res
		}
		res.Log = append(res.Log, "Updating new ROOT-CA")
	}
	if err := bundle.UpdateVerifiedKeyCertBundleFromFile(b.SigningCertFile, b.SigningKeyFile,
		b.CertChainFiles, b.RootCertFile, b.CRLFile); err != nil {
		res.Outcome, res.Error = ReloadFailed, err.Error()
		res.Log = append(res.Log, "Failed to update new Plug-in CA certs: "+err.Error())
		return loaded, res
	}
	res.Outcome = ReloadApplied
	res.Log = append(res.Log, "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly")
	return loaded, res
}

// subsetRelation: one bundle's set of CERTIFICATE blocks (DER) contains the
// other's, both non-empty (1.30+; byte containment of the PEM before).
func subsetRelation(a, b []byte) bool {
	sa, sb := derSet(a), derSet(b)
	if len(sa) == 0 || len(sb) == 0 {
		return false
	}
	return contains(sa, sb) || contains(sb, sa)
}

func derSet(p []byte) map[string]bool {
	set := map[string]bool{}
	for {
		var block *pem.Block
		block, p = pem.Decode(p)
		if block == nil {
			return set
		}
		if block.Type == "CERTIFICATE" {
			set[string(block.Bytes)] = true
		}
	}
}

func contains(super, sub map[string]bool) bool {
	for k := range sub {
		if !super[k] {
			return false
		}
	}
	return true
}
