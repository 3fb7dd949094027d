//! A long-running process of the control plane: its own process group (registered so that a
//! signal handler stops it), its output in a log file, killed and reaped on drop.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use super::ControlPlaneError;
use crate::kube::process::{LiveGroup, kill_group};

/// A running daemon. Dropping it sends SIGKILL to its group and waits for it.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
    _group: LiveGroup,
}

impl Daemon {
    /// Starts `cmd` as `name`, stdout and stderr into `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Result<Daemon, ControlPlaneError> {
        let file = std::fs::File::create(&log)
            .map_err(ControlPlaneError::io(format!("create {}", log.display())))?;
        let err = file
            .try_clone()
            .map_err(ControlPlaneError::io(format!("open {}", log.display())))?;
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours. The child gets
        // SIGKILL when the thread that spawned it dies (meshtrust killed by SIGKILL or a
        // signal it does not handle): no control plane outlives its run.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(ControlPlaneError::io(format!("start {name}")))?;
        let group = LiveGroup::register(child.id());
        tracing::debug!(name, pid = child.id(), log = %log.display(), "started");
        Ok(Daemon {
            name: name.to_owned(),
            child,
            log,
            _group: group,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its log, for an error message.
    pub fn tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The error for a daemon that exited when it should be running.
    pub fn exited_error(&self, status: ExitStatus) -> ControlPlaneError {
        ControlPlaneError::Exited {
            what: self.name.clone(),
            status: status.to_string(),
            tail: self.tail(20),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}
