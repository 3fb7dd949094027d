// The oracle's glue: Istio's own packages behind a small JSON CLI. It is built
// only through one of the per-release main modules (../istio-1.30, ../istio-1.31),
// whose go.mod picks the Istio commit; the requirement below is the lowest pin.
module meshtrust.dev/oracle/glue

go 1.25.9

require istio.io/istio v0.0.0-20260826214018-9739e10eb9d7
