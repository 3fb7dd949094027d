//! `meshtrust certs ...`: Istio's `tools/certs` Makefile targets.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Subcommand};
use meshtrust::exit::Exit;
use meshtrust::pki::{self, IntermediateSpec, KeyAlg, RootSpec, layout::RootOrigin};

use crate::output::{self, dir_flag, shell_word};

#[derive(Subcommand)]
pub enum Certs {
    /// Generate root-cert.pem and root-key.pem (`make root-ca`). An existing root is kept.
    RootCa {
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        root: RootArgs,
        /// Key type of the root.
        #[arg(long, default_value = "rsa4096", value_parser = output::key_alg())]
        key: KeyAlg,
    },
    /// Generate <CLUSTER>/{ca-cert,ca-key,cert-chain,root-cert}.pem for each cluster (`make <cluster>-cacerts`).
    ///
    /// All clusters share the root in DIR, which is generated first if missing.
    Cacerts {
        /// Cluster names, e.g. cluster1 cluster2. Each becomes a directory and the intermediate's L=.
        #[arg(required = true, value_name = "CLUSTER")]
        clusters: Vec<String>,
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        root: RootArgs,
        #[command(flatten)]
        intermediate: IntermediateArgs,
        /// Key type of the intermediates.
        #[arg(long, default_value = "rsa4096", value_parser = output::key_alg())]
        key: KeyAlg,
        /// Key type of the root, when it has to be generated.
        #[arg(long, default_value = "rsa4096", value_parser = output::key_alg())]
        root_key: KeyAlg,
        /// Also regenerate the root (implies --force for the clusters).
        #[arg(long)]
        force_root: bool,
    },
    /// Print the `cacerts` Secret manifest for a cluster (as `kubectl create secret generic cacerts -n istio-system --from-file=...`).
    ///
    /// The Secret holds the CA key: it is written to a pipe or to --output (mode 0600), never to a terminal.
    Secret {
        /// The cluster whose directory (DIR/CLUSTER) holds the four cacerts files.
        #[arg(value_name = "CLUSTER")]
        cluster: String,
        /// Directory holding the cluster directories.
        #[arg(long, default_value = ".", env = "MESHTRUST_CERTS_DIR")]
        dir: PathBuf,
        /// Write the manifest to this file (mode 0600) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct Out {
    /// Directory to write into (created if missing).
    #[arg(long, default_value = ".", env = "MESHTRUST_CERTS_DIR")]
    dir: PathBuf,
    /// Regenerate files that already exist.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct RootArgs {
    /// Root subject O=.
    #[arg(long, env = "ROOTCA_ORG", default_value = "Istio")]
    root_org: String,
    /// Root subject CN=.
    #[arg(long, env = "ROOTCA_CN", default_value = "Root CA")]
    root_cn: String,
    /// Root validity in days, from 1 to 36500.
    #[arg(long, env = "ROOTCA_DAYS", value_name = "DAYS", default_value_t = 3650, value_parser = output::parse_days, allow_negative_numbers = true)]
    root_days: u32,
}

#[derive(Args)]
pub struct IntermediateArgs {
    /// Intermediate subject O=.
    #[arg(long, env = "INTERMEDIATE_ORG", default_value = "Istio")]
    intermediate_org: String,
    /// Intermediate subject CN=.
    #[arg(long, env = "INTERMEDIATE_CN", default_value = "Intermediate CA")]
    intermediate_cn: String,
    /// Intermediate validity in days, from 1 to 36500; it ends with the root's at the latest.
    #[arg(long, env = "INTERMEDIATE_DAYS", value_name = "DAYS", default_value_t = 3650, value_parser = output::parse_days, allow_negative_numbers = true)]
    intermediate_days: u32,
    /// DNS name in the intermediate's subjectAltName.
    #[arg(
        long,
        env = "INTERMEDIATE_SAN_DNS",
        default_value = "istiod.istio-system.svc"
    )]
    intermediate_san_dns: String,
}

impl RootArgs {
    fn spec(&self, key: KeyAlg) -> RootSpec {
        RootSpec {
            org: self.root_org.clone(),
            cn: self.root_cn.clone(),
            days: self.root_days,
            key,
        }
    }
}

pub fn run(cmd: Certs, matches: &ArgMatches) -> anyhow::Result<Exit> {
    let given = |flags: &[(&'static str, &'static str)]| -> Vec<&'static str> {
        let Some((_, m)) = matches.subcommand() else {
            return Vec::new();
        };
        flags
            .iter()
            .filter(|(id, _)| m.value_source(id) == Some(ValueSource::CommandLine))
            .map(|(_, flag)| *flag)
            .collect()
    };
    match cmd {
        Certs::RootCa { out, root, key } => {
            let spinner = spinner(format!("generating a {key} root in {}", out.dir.display()));
            let (made, origin) = pki::make::root_ca(&out.dir, &root.spec(key), out.force)?;
            spinner.finish_and_clear();
            let cert = out.dir.join(pki::layout::ROOT_CERT);
            match origin {
                RootOrigin::Generated => output::note!("generated {} and its key", cert.display()),
                RootOrigin::Reused => {
                    output::note!(
                        "kept the existing root {} (pass --force to regenerate it)",
                        cert.display()
                    );
                    warn_ignored(
                        &given(&[
                            ("key", "--key"),
                            ("root_days", "--root-days"),
                            ("root_org", "--root-org"),
                            ("root_cn", "--root-cn"),
                        ]),
                        &cert,
                        "`--force` regenerates it",
                    );
                }
            }
            warn_other_roots(&out.dir, &made, &[]);
            Ok(Exit::Conformant)
        }
        Certs::Cacerts {
            clusters,
            out,
            root,
            intermediate,
            key,
            root_key,
            force_root,
        } => {
            let specs: Vec<_> = clusters
                .iter()
                .map(|c| IntermediateSpec {
                    cluster: c.clone(),
                    org: intermediate.intermediate_org.clone(),
                    cn: intermediate.intermediate_cn.clone(),
                    days: intermediate.intermediate_days,
                    san_dns: intermediate.intermediate_san_dns.clone(),
                    key,
                })
                .collect();
            let spinner = spinner(format!(
                "generating {} {key} intermediate{} in {}",
                specs.len(),
                if specs.len() == 1 { "" } else { "s" },
                out.dir.display()
            ));
            let made = pki::make::cacerts(
                &out.dir,
                &root.spec(root_key),
                &specs,
                force_root,
                out.force || force_root,
            );
            spinner.finish_and_clear();
            let made = made?;
            let root_cert = out.dir.join(pki::layout::ROOT_CERT);
            match made.root_origin {
                RootOrigin::Generated => output::note!("generated root {}", root_cert.display()),
                RootOrigin::Reused => {
                    output::note!("using existing root {}", root_cert.display());
                    warn_ignored(
                        &given(&[
                            ("root_key", "--root-key"),
                            ("root_days", "--root-days"),
                            ("root_org", "--root-org"),
                            ("root_cn", "--root-cn"),
                        ]),
                        &root_cert,
                        "`--force-root` regenerates it",
                    );
                }
            }
            for (cluster, dir) in &made.clusters {
                output::note!(
                    "generated {cluster}: {}/{{ca-cert,ca-key,cert-chain,root-cert}}.pem",
                    dir.display()
                );
            }
            for clamped in &made.clamped {
                meshtrust::say!(
                    "note: the intermediate of `{}` ends with its root on {}, not in {} days as asked: an intermediate cannot outlive its root",
                    clamped.cluster,
                    clamped.until.date(),
                    clamped.asked_days
                );
            }
            warn_other_roots(&out.dir, &made.root, &clusters);
            Ok(Exit::Conformant)
        }
        Certs::Secret {
            cluster,
            dir,
            output,
        } => {
            pki::layout::validate_cluster_name(&cluster)?;
            let yaml = pki::cacerts_secret_yaml(&dir.join(&cluster))?;
            match output {
                Some(path) => {
                    // A device or pipe is written into (never replaced); a terminal is refused
                    // as stdout is.
                    if let pki::layout::ReportPath::InPlace(p) =
                        pki::layout::check_report_path(&path)?
                        && std::fs::OpenOptions::new()
                            .write(true)
                            .open(&p)
                            .is_ok_and(|f| f.is_terminal())
                    {
                        bail!(
                            "refusing to write a Secret holding the CA key to the terminal `{}` (hint: `--output FILE`, or pipe it: `meshtrust certs secret {cluster} | kubectl apply -f -`)",
                            path.display()
                        );
                    }
                    pki::layout::write_report(&path, yaml.as_bytes(), 0o600)?;
                    output::note!("wrote {} (mode 0600: it holds the CA key)", path.display());
                }
                None => {
                    if std::io::stdout().is_terminal() {
                        let dir = dir_flag(&dir);
                        bail!(
                            "refusing to print a Secret holding the CA key to a terminal (hint: pipe it, `meshtrust certs secret {cluster}{dir} | kubectl apply -f -`, or pass `--output FILE`)"
                        );
                    }
                    use std::io::Write;
                    std::io::stdout()
                        .write_all(yaml.as_bytes())
                        .context("cannot write to standard output")?;
                }
            }
            Ok(Exit::Conformant)
        }
    }
}

/// Root flags given on the command line that an existing root makes moot.
fn warn_ignored(flags: &[&str], root_cert: &Path, hint: &str) {
    if flags.is_empty() {
        return;
    }
    let names: Vec<_> = flags.iter().map(|f| format!("`{f}`")).collect();
    output::warn(format_args!(
        "{} {} ignored: the root `{}` already exists (hint: {hint})",
        names.join(", "),
        if flags.len() == 1 { "is" } else { "are" },
        root_cert.display()
    ));
}

/// Cluster directories under `dir` (other than those just made) that hold another root than
/// `dir`'s: a cluster made now cannot talk to them.
fn warn_other_roots(dir: &Path, root: &pki::Ca, just_made: &[String]) {
    let stale: Vec<PathBuf> = pki::layout::clusters_with_other_root(dir, root)
        .into_iter()
        .filter(|p| {
            !just_made
                .iter()
                .any(|c| p.file_name() == Some(std::ffi::OsStr::new(c)))
        })
        .collect();
    if stale.is_empty() {
        return;
    }
    let dirs: Vec<_> = stale.iter().map(|p| format!("`{}`", p.display())).collect();
    let names: Vec<_> = stale
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| shell_word(Path::new(n)))
        .collect();
    output::warn(format_args!(
        "{} {} another root than `{}`: clusters made under it cannot talk to {} (hint: `meshtrust certs cacerts {} --force{}` regenerates {} under it)",
        dirs.join(", "),
        if stale.len() == 1 { "holds" } else { "hold" },
        dir.join(pki::layout::ROOT_CERT).display(),
        if stale.len() == 1 { "it" } else { "them" },
        names.join(" "),
        dir_flag(dir),
        if stale.len() == 1 { "it" } else { "them" },
    ));
}

fn spinner(msg: String) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(None, output::progress_target());
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .expect("valid template"),
    );
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}
