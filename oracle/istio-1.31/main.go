// Command istio-oracle runs Istio 1.31's own CA code on cacerts directories
// (see package glue); this module only pins the Istio commit.
package main

import (
	"os"

	"meshtrust.dev/oracle/glue"
)

func main() {
	glue.IstioRelease = "1.31 (release-1.31 at eed52ebb66ad)"
	os.Exit(glue.Main(os.Args[1:], os.Stdout, os.Stderr))
}
