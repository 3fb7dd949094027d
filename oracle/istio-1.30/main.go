// Command istio-oracle runs Istio 1.30's own CA code on cacerts directories
// (see package glue); this module only pins the Istio commit.
package main

import (
	"os"

	"meshtrust.dev/oracle/glue"
)

func main() {
	glue.IstioRelease = "1.30 (release-1.30 at 9739e10eb9d7)"
	os.Exit(glue.Main(os.Args[1:], os.Stdout, os.Stderr))
}
