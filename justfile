# meshtrust recipes. `just --list` shows them.

# The README's test command: every scenario on the local target, no Docker.
test:
    cargo test --workspace

# The same scenarios on kind clusters with real Istio (needs docker, kind, istioctl; fails
# naming whichever is missing). One test at a time: the tests share the docker engine and the
# `kind` network. MESHTRUST_KEEP=1 keeps the clusters; MESHTRUST_ISTIOCTL_A/_B pick istioctl.
e2e *ARGS: probe-static
    MESHTRUST_PROBE=target/x86_64-unknown-linux-gnu/release/meshtrust-probe cargo test --workspace --features e2e {{ARGS}} -- --test-threads=1

# What a kind run would do, without doing it.
e2e-plan:
    cargo test --features e2e --lib kube::plan

# Istio's own CA code as an oracle: one `istio-oracle` per Istio release, built from the Go
# module proxy into target/oracle/ (see oracle/README.md). The first build takes minutes.
oracle:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p target/oracle
    for m in oracle/istio-*/; do
        release=$(basename "$m"); release=${release#istio-}
        echo "building istio-oracle-$release"
        (cd "$m" && go build -trimpath -o "../../target/oracle/istio-oracle-$release" .)
    done

# The real kind and istioctl, built from the Go module proxy into target/e2e-tools/: kind at
# the pinned release (oracle/e2e-tools/kind), istioctl from the Istio commit the oracle pins
# (oracle/e2e-tools/istioctl-1.31). The first build takes minutes (istioctl is most of Istio).
e2e-tools:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p target/e2e-tools
    for m in oracle/e2e-tools/*/; do
        tool=$(basename "$m")
        echo "building $tool"
        pkg=$(sed -n 's/^tool //p' "$m/go.mod")
        version=$(sed -n 's#^// istioctl-version: ##p' "$m/go.mod")
        (cd "$m" && go build -trimpath -ldflags "-X istio.io/istio/pkg/version.buildVersion=$version" \
            -o "../../../target/e2e-tools/$tool" "$pkg")
    done

# The e2e-tools tier: every command line of the kind plan against the real tools, the
# install rendered offline by `istioctl manifest generate`, and every scenario on real
# istiod, etcd and kube-apiserver as processes (no docker, no cluster).
e2e-tools-test: e2e-tools
    cargo test --features e2e-tools --test scenarios -- e2e_tools:: control_plane:: istiod_target::

# Every scenario on real istiod as local processes (`--target istiod`), no Docker.
run-istiod *ARGS: e2e-tools
    cargo run --release --features istiod -- run --target istiod {{ARGS}}

# The oracle tier: meshtrust's model of istiod against Istio's code (needs `just oracle`).
oracle-test: oracle
    cargo test --features oracle --test scenarios oracle::

# Mutation testing (cargo install cargo-mutants) of every module that decides a verdict or a
# finding, each with the tests that pin it: the model of istiod (unit tests), the chain
# verdicts and `check`'s rules with the peer verification step (their scenario files).
# Every mutant must be caught, or listed as equivalent with a reason in .cargo/mutants.toml.
# Reports: mutants.out/<set>/mutants.out/ (outcomes.json, missed.txt, caught.txt, ...).
# Every set runs even when one misses a mutant; the recipe fails if any did.
mutants:
    #!/usr/bin/env bash
    set -uo pipefail
    status=0
    for set in istio verdict check; do
        {{just_executable()}} mutants-$set || status=1
    done
    exit $status

mutants-istio *ARGS:
    mkdir -p mutants.out/istio
    cargo mutants --no-shuffle -j1 --file 'harness/istio/*.rs' --output mutants.out/istio --cargo-test-arg=--lib {{ARGS}}

mutants-verdict *ARGS:
    mkdir -p mutants.out/verdict
    cargo mutants --no-shuffle -j1 --file harness/chain/verdict.rs --output mutants.out/verdict --cargo-test-arg=--test=scenarios {{ARGS}} -- -- chain_verify:: chain_messages:: json_schemas::verify

mutants-check *ARGS:
    mkdir -p mutants.out/check
    cargo mutants --no-shuffle -j1 --file 'harness/check/*.rs' --output mutants.out/check --cargo-test-arg=--test=scenarios {{ARGS}} -- -- check:: json_schemas::check

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --workspace --all-targets --features e2e -- -D warnings
    cargo clippy --workspace --all-targets --features e2e-tools -- -D warnings
    cargo clippy --workspace --all-targets --features oracle -- -D warnings
    test -z "$(gofmt -l oracle)"
    for m in oracle/istio-*/; do (cd "$m" && go vet . meshtrust.dev/oracle/glue); done

bench:
    cargo bench

# Generate a shared root and one intermediate per cluster: `just certs cluster1 cluster2`.
certs +CLUSTERS="cluster1":
    cargo run --release -- certs cacerts {{CLUSTERS}} --dir certs

# The main job: run the conformance scenarios (local target by default).
run *ARGS:
    cargo run --release -- run {{ARGS}}

# The in-pod probe, statically linked (no musl target needed). Seeding aws-lc's RNG
# from getrandom instead of CPU jitter saves ~25 ms per run (measured; see the probe's README).
probe-static:
    AWS_LC_SYS_NO_JITTER_ENTROPY=1 RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p meshtrust-probe --target x86_64-unknown-linux-gnu
    @echo target/x86_64-unknown-linux-gnu/release/meshtrust-probe
