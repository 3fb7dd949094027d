//! `meshtrust verify`: the doc's verification steps (compare certificates 2 and
//! 3 with the plugged files, `openssl verify` the leaf) plus every other check.

use std::path::PathBuf;

use clap::Args;

use crate::output;
use meshtrust::chain::{self, Expectations, SpiffeId, render};
use meshtrust::exit::Exit;
use meshtrust::pki::Bundle;
use meshtrust::report;

#[derive(Args)]
pub struct Verify {
    /// The plugged cacerts directory the chain must come from (e.g. certs/cluster1).
    #[arg(long, value_name = "DIR")]
    cacerts: PathBuf,
    /// The mesh's other clusters' cacerts directories, so that their certificates are named if served.
    #[arg(long = "other-cacerts", value_name = "DIR")]
    others: Vec<PathBuf>,
    /// The served chain: PEM (as `openssl s_client -showcerts` or `meshtrust probe` print it) or DER; `-` reads stdin.
    #[arg(value_name = "CHAIN_FILE")]
    chain: PathBuf,
    /// The workload identity the leaf must carry.
    #[arg(long, value_name = "SPIFFE_ID", value_parser = parse_id)]
    expect_id: Option<SpiffeId>,
    /// The TTL the workload asked for, above zero, e.g. `24h` (istiod backdates NotBefore by 2m on top).
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl, allow_hyphen_values = true)]
    expect_ttl: Option<time::Duration>,
    /// The mesh's trust domain [default: that of --expect-id, else cluster.local].
    #[arg(long, value_name = "DOMAIN")]
    trust_domain: Option<String>,
    /// Fail on every note: any difference from the leaf istiod issues (`leaf-profile`: an SKI,
    /// a subject, KU criticality, the AKI) and from the chain it serves (`chain-length`), not
    /// only on what breaks mTLS: proves istiod issued and served it.
    #[arg(long)]
    istiod_profile: bool,
    /// How to print the verdict.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    format: VerifyFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum VerifyFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
    /// The trust graph of the chain and its bundles, as a Mermaid flowchart.
    Mermaid,
    /// The trust graph of the chain and its bundles, as Graphviz DOT (`| dot -Tsvg`).
    Dot,
}

fn parse_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::parse(s).map_err(|e| e.to_string())
}

fn parse_ttl(s: &str) -> Result<time::Duration, String> {
    let ttl = crate::output::parse_positive_duration(s)?;
    time::Duration::try_from(ttl).map_err(|_| format!("`{s}` is out of range"))
}

pub fn run(args: Verify) -> anyhow::Result<Exit> {
    let bundle = Bundle::read(&args.cacerts)?;
    let others = args
        .others
        .iter()
        .map(|dir| Bundle::read(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let served = chain::read_chain(&args.chain)?;
    let expect = Expectations {
        trust_domain: args.trust_domain,
        expect_id: args.expect_id,
        expect_ttl: args.expect_ttl,
        istiod_profile: args.istiod_profile,
        ..Expectations::now()
    };
    let verdict = chain::verify_chain(&served, &bundle, &others, &expect)?;
    match args.format {
        VerifyFormat::Text => {
            meshtrust::console::out(&output::paint(&render::text(&verdict)));
        }
        VerifyFormat::Json => {
            meshtrust::console::out(&format!("{}\n", render::json(&verdict)));
        }
        VerifyFormat::Mermaid => {
            meshtrust::console::out(
                &graph(&args.cacerts, &args.others, &args.chain, &bundle, &verdict).to_mermaid(),
            );
        }
        VerifyFormat::Dot => {
            meshtrust::console::out(
                &graph(&args.cacerts, &args.others, &args.chain, &bundle, &verdict).to_dot(),
            );
        }
    }
    Ok(if verdict.conformant() {
        Exit::Conformant
    } else {
        Exit::NotConformant
    })
}

/// The trust graph of one verify: the bundles, the trust the bundle's peers hold (its
/// `root-cert.pem`), the served chain under the file's name, and the verdict's failures.
fn graph(
    cacerts: &std::path::Path,
    others: &[PathBuf],
    chain_file: &std::path::Path,
    bundle: &Bundle,
    verdict: &chain::Verdict,
) -> report::TrustGraph {
    // Named by their directory and its parent, as a run names them: from the real path,
    // so that `--cacerts .` or `../cluster1` read as `certs/cluster1`.
    let bundles: Vec<report::BundleArtifact> = std::iter::once(cacerts)
        .chain(others.iter().map(PathBuf::as_path))
        .map(|dir| {
            report::BundleArtifact::read(
                &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned()),
            )
        })
        .collect();
    let trust_bundles: Vec<report::TrustBundleArtifact> = bundles[0]
        .files
        .iter()
        .filter(|f| f.name == "root-cert.pem" || f.name == "ca.crt")
        .take(1)
        .map(|f| report::TrustBundleArtifact {
            cluster: bundle.name.clone(),
            pem: f.pem.clone(),
        })
        .collect();
    let label = chain_file.display().to_string();
    let chains = [report::ChainArtifact {
        label: label.clone(),
        pem: verdict
            .related
            .certs
            .iter()
            .map(|c| meshtrust::pki::to_pem(&c.info.der))
            .collect(),
    }];
    let observations = [report::Observation::new(
        label,
        report::Observed::Verdict {
            certificates: verdict.length,
            bundle: verdict.bundle.clone(),
            conformant: verdict.conformant,
            failed: verdict.failures().map(|c| c.id.name().to_owned()).collect(),
        },
    )];
    report::TrustGraph::build(&report::GraphInput {
        bundles: &bundles,
        trust_bundles: &trust_bundles,
        chains: &chains,
        observations: &observations,
    })
}
