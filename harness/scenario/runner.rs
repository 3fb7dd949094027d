//! Runs scenarios on a target and reports. Certificates are made once per run
//! (every key in parallel); each scenario gets a fresh target and tears it down.

use std::path::{Path, PathBuf};
use std::time::Instant;

use time::format_description::well_known::Rfc3339;

use super::catalog::Scenario;
use super::certs::RunCerts;
use super::record::{Progress, Recorder};
use super::target::Target;
use crate::chain::Snapshot;
use crate::pki::{KeyAlg, PkiError};
use crate::report::{Observed, RunReport, ScenarioReport};

/// The name of a run's certificates directory in the temporary directory:
/// `meshtrust-run-<pid>.<random>`.
const RUN_DIR_PREFIX: &str = "meshtrust-run-";
/// The file that marks a run's certificates directory as kept (`--keep`).
pub const KEPT_MARKER: &str = ".meshtrust-keep";

/// A run's own directory for its certificates, keys included: `meshtrust-run-<pid>.<random>`
/// in `temp`, mode 0700, removed when dropped. First it removes the directories of earlier
/// runs whose process is gone without cleaning up (a SIGKILL, which no handler sees, left
/// their CA keys there), unless they were kept ([`keep_run_dir`]); it says which.
///
/// # Errors
/// The directory cannot be created.
pub fn run_certs_dir(temp: &Path) -> std::io::Result<tempfile::TempDir> {
    for stale in sweep_run_dirs(temp) {
        crate::say!(
            "meshtrust: removed `{}`, the certificates of a run that was killed",
            stale.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("{RUN_DIR_PREFIX}{}.", std::process::id()))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(
            crate::pki::layout::KEY_DIR_MODE,
        ))
        .tempdir_in(temp)?;
    if let Ok(mut live) = LIVE_RUN_DIRS.lock() {
        live.push(dir.path().to_owned());
    }
    Ok(dir)
}

/// The run directories of this process, for a signal handler (which exits without `Drop`).
static LIVE_RUN_DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every run directory this process made that is still there and not kept; for a
/// signal handler that is about to exit. Returns how many it removed.
pub fn remove_live_run_dirs() -> usize {
    remove_live_run_dirs_under(Path::new("/"))
}

/// [`remove_live_run_dirs`] for the directories under `root` only.
fn remove_live_run_dirs_under(root: &Path) -> usize {
    let dirs: Vec<PathBuf> = {
        let mut live = match LIVE_RUN_DIRS.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (mine, others) = std::mem::take(&mut *live)
            .into_iter()
            .partition(|d| d.starts_with(root));
        *live = others;
        mine
    };
    dirs.iter()
        .filter(|d| d.is_dir() && !d.join(KEPT_MARKER).exists())
        .filter(|d| std::fs::remove_dir_all(d).is_ok())
        .count()
}

/// Marks `dir` kept: it outlives the run, and no later run sweeps it.
///
/// # Errors
/// The marker cannot be written.
pub fn keep_run_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(KEPT_MARKER), b"kept by --keep\n")
}

/// Removes the run directories in `temp` whose process no longer runs and that were not kept;
/// returns them.
pub fn sweep_run_dirs(temp: &Path) -> Vec<PathBuf> {
    sweep_dead_dirs(temp, RUN_DIR_PREFIX, '.', |dir| {
        !dir.join(KEPT_MARKER).exists()
    })
}

/// Removes the directories in `temp` named `<prefix><pid><separator>...` whose pid no longer
/// runs and that `removable` allows; returns them. A meshtrust process names its directories
/// so (its certificates, the istiod target's clusters): a SIGKILL, which no handler sees,
/// leaves them, and the next run sweeps them.
pub fn sweep_dead_dirs(
    temp: &Path,
    prefix: &str,
    separator: char,
    removable: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split(separator).next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let running = Path::new("/proc").join(pid.to_string()).exists();
        if running || !path.is_dir() || !removable(&path) {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenarios: Vec<Scenario>,
    /// Key type of the roots and intermediates (the Makefile's RSA 4096 by default).
    pub key: KeyAlg,
    /// Where the certificates go; a temporary directory (removed after the run) if `None`.
    pub workdir: Option<PathBuf>,
    /// Run the scenarios at once, each on its own target (the local target: yes;
    /// kind clusters are too heavy to run seven at a time).
    pub concurrent: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            scenarios: Scenario::ALL.to_vec(),
            key: KeyAlg::Rsa4096,
            workdir: None,
            concurrent: true,
        }
    }
}

/// The report, plus each scenario's verdict snapshots by label.
#[derive(Debug)]
pub struct RunOutput {
    pub report: RunReport,
    pub snapshots: Vec<(Scenario, String, Snapshot)>,
}

impl RunOutput {
    pub fn snapshot(&self, scenario: Scenario, label: &str) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .find(|(s, l, _)| *s == scenario && l == label)
            .map(|(_, _, snap)| snap)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot make the run's certificates: {0}")]
    Certs(#[from] PkiError),
}

/// Runs `opts.scenarios` in order, each on a target made by `make_target`.
pub async fn run<T: Target>(
    make_target: impl Fn() -> T,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunOutput, RunError> {
    let started = time::OffsetDateTime::now_utc();
    let clock = Instant::now();
    let tmp;
    let dir: &Path = match &opts.workdir {
        Some(d) => d,
        None => {
            tmp = run_certs_dir(&std::env::temp_dir()).map_err(PkiError::io(
                "create a temporary directory in",
                std::env::temp_dir(),
            ))?;
            tmp.path()
        }
    };
    progress("run", "certificates");
    let key = opts.key;
    let certs_dir = dir.to_owned();
    let certs = tokio::task::spawn_blocking(move || RunCerts::generate(&certs_dir, key))
        .await
        .expect("certificate generation does not panic")?;

    let one = |scenario: Scenario| {
        let mut target = make_target();
        let certs = &certs;
        async move {
            let mut rec = Recorder::new(scenario.name(), progress);
            let start = Instant::now();
            if let Err(e) = scenario.run(&mut target, certs, &mut rec).await {
                rec.fail(format!("the target could not carry out a step: {e}"));
            }
            if !rec.reasons.is_empty() {
                target.keep_evidence(scenario.name()).await;
            }
            let milestones = target.milestones();
            if let Err(e) = target.teardown().await {
                rec.observe(
                    "teardown",
                    Observed::Note {
                        text: e.to_string(),
                    },
                );
            }
            (scenario, target.name(), rec, milestones, start.elapsed())
        }
    };
    let finished = if opts.concurrent {
        futures_util::future::join_all(opts.scenarios.iter().map(|&s| one(s))).await
    } else {
        let mut done = Vec::new();
        for &s in &opts.scenarios {
            done.push(one(s).await);
        }
        done
    };

    let mut scenarios = Vec::new();
    let mut snapshots = Vec::new();
    let mut target_name = "";
    for (scenario, name, mut rec, milestones, duration) in finished {
        target_name = name;
        snapshots.extend(
            rec.snapshots
                .drain(..)
                .map(|(label, snap)| (scenario, label, snap)),
        );
        scenarios.push(ScenarioReport {
            name: scenario.name().to_owned(),
            description: scenario.description().to_owned(),
            expectation: scenario.expectation().to_owned(),
            passed: rec.reasons.is_empty(),
            reasons: rec.reasons,
            observations: rec.observations,
            phases: rec.phases,
            milestones,
            chains: rec.chains,
            bundles: rec.bundles,
            trust_bundles: rec.trust_bundles,
            duration,
        });
    }
    Ok(RunOutput {
        report: RunReport {
            target: target_name.to_owned(),
            started: started.format(&Rfc3339).unwrap_or_default(),
            duration: clock.elapsed(),
            scenarios,
        },
        snapshots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_certificates_are_swept_and_a_live_or_kept_one_is_not() {
        let temp = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid never runs.
        let dead = temp.path().join("meshtrust-run-99999999.abc");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("ca-key.pem"), "k").unwrap();
        let kept = temp.path().join("meshtrust-run-99999998.def");
        std::fs::create_dir(&kept).unwrap();
        keep_run_dir(&kept).unwrap();
        let live = temp
            .path()
            .join(format!("meshtrust-run-{}.ghi", std::process::id()));
        std::fs::create_dir(&live).unwrap();
        let other = temp.path().join("meshtrust-runner-99999999.x");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(sweep_run_dirs(temp.path()), vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(kept.exists() && live.exists() && other.exists());
    }

    #[test]
    fn a_signal_handler_removes_this_processs_run_directories_but_a_kept_one() {
        let temp = tempfile::tempdir().unwrap();
        let gone = run_certs_dir(temp.path()).unwrap().keep();
        let kept = run_certs_dir(temp.path()).unwrap().keep();
        keep_run_dir(&kept).unwrap();
        // Only this test's: other tests' runs are live in this process too.
        assert_eq!(remove_live_run_dirs_under(temp.path()), 1);
        assert!(!gone.exists());
        assert!(kept.exists());
    }

    #[test]
    fn a_runs_certificates_directory_is_named_by_its_pid_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let temp = tempfile::tempdir().unwrap();
        let dir = run_certs_dir(temp.path()).unwrap();
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&format!("meshtrust-run-{}.", std::process::id())),
            "{name}"
        );
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Its own process runs: a sweep leaves it.
        assert!(sweep_run_dirs(temp.path()).is_empty());
        assert!(dir.path().exists());
    }
}
