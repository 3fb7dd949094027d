//! Running kind, istioctl, docker and kubectl: a command line is data ([`Cmd`]) so that the
//! dry-run plan can print it and tests can assert it; running one has a deadline, and a failure
//! tells the whole story (command line, exit code, stdout, the tail of stderr).

use std::fmt;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How much of stderr a failure shows: kind and istioctl put the cause in the last lines,
/// after pages of progress output.
const STDERR_TAIL_LINES: usize = 40;
/// stdout is usually what we asked for (a kubeconfig, a version); its tail is enough to see why
/// it was not what we wanted.
const STDOUT_TAIL_LINES: usize = 20;

/// A command line, as data.
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The program as given: a tool's resolved path, or its bare name in a plan.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment variables (on top of the inherited environment).
    pub env: Vec<(String, String)>,
    /// Bytes written to the process's stdin; never shown (it may be a Secret or a binary).
    pub stdin: Option<Vec<u8>>,
    /// The deadline; the process is killed when it passes.
    pub timeout: Duration,
}

impl Cmd {
    /// Default deadline for a command that should answer at once (`kind version`).
    pub const QUICK: Duration = Duration::from_secs(10);

    pub fn new(program: impl Into<PathBuf>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: Self::QUICK,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program's file name (`kind` for `/usr/local/bin/kind`).
    pub fn program_name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// The command line with the program's file name only: stable across machines, for plans
    /// and snapshots.
    pub fn display_short(&self) -> String {
        self.render(&self.program_name())
    }

    fn render(&self, program: &str) -> String {
        let mut line: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        line.push(quote(program));
        line.extend(self.args.iter().map(|a| quote(a)));
        let mut line = line.join(" ");
        if self.stdin.is_some() {
            line.push_str(" <stdin>");
        }
        line
    }
}

/// The full command line, shell-quoted, program path included.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.program.display().to_string()))
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({self})")
    }
}

/// Quotes a word for a POSIX shell, only when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a command printed, having exited 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub cmd: String,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` succeeded", self.cmd)?;
        write_streams(f, &self.stdout, &self.stderr)
    }
}

/// A command that could not run, failed or overran its deadline.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run `{cmd}`: {source}{}", spawn_hint(.source))]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` exited with {status}{}", Streams(.stdout, .stderr))]
    Failed {
        cmd: String,
        /// `code 1`, or `signal 9`.
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error(
        "`{cmd}` did not finish within {} and was killed{}",
        human_duration(*.after),
        Streams(.stdout, .stderr)
    )]
    TimedOut {
        cmd: String,
        after: Duration,
        stdout: String,
        stderr: String,
    },
}

impl ProcessError {
    /// What the process printed on stderr, if it ran at all.
    pub fn stderr(&self) -> &str {
        match self {
            ProcessError::Spawn { .. } => "",
            ProcessError::Failed { stderr, .. } | ProcessError::TimedOut { stderr, .. } => stderr,
        }
    }
}

/// `300ms`, `15s`, `8m`, `1m30s`: deadlines as people write them.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

fn spawn_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => " (hint: is it installed and on PATH?)",
        std::io::ErrorKind::PermissionDenied => " (hint: is the file executable?)",
        _ => "",
    }
}

struct Streams<'a>(&'a String, &'a String);

impl fmt::Display for Streams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_streams(f, self.0, self.1)
    }
}

fn write_streams(f: &mut fmt::Formatter<'_>, stdout: &str, stderr: &str) -> fmt::Result {
    for (name, text, lines) in [
        ("stdout", stdout, STDOUT_TAIL_LINES),
        ("stderr", stderr, STDERR_TAIL_LINES),
    ] {
        let (tail, cut) = tail(text, lines);
        if tail.trim().is_empty() {
            write!(f, "\n--- {name}: (empty)")?;
        } else if cut > 0 {
            write!(
                f,
                "\n--- {name} (last {lines} lines, {cut} before) ---\n{tail}"
            )?;
        } else {
            write!(f, "\n--- {name} ---\n{tail}")?;
        }
    }
    Ok(())
}

/// The last `n` lines of `text`, and how many lines came before them.
fn tail(text: &str, n: usize) -> (&str, usize) {
    let text = text.trim_end_matches('\n');
    let total = text.lines().count();
    if total <= n {
        return (text, 0);
    }
    let skip = total - n;
    let start = text
        .match_indices('\n')
        .nth(skip - 1)
        .map_or(0, |(i, _)| i + 1);
    (&text[start..], skip)
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_owned(),
    }
}

/// Runs `cmd` to completion or its deadline; exit 0 is success, anything else an error that
/// carries both streams.
pub async fn run(cmd: &Cmd) -> Result<Output, ProcessError> {
    #[cfg(test)]
    record(cmd);
    let line = cmd.to_string();
    tracing::debug!(cmd = %line, "running");
    let mut child = tokio::process::Command::new(&cmd.program);
    child
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout kills the children too (`sh -c`, kind's docker
        // calls): a grandchild holding our pipes would otherwise keep us waiting for it.
        .process_group(0);
    let mut child = spawn_retrying(|| child.spawn()).map_err(|source| ProcessError::Spawn {
        cmd: line.clone(),
        source,
    })?;
    let _live = child.id().map(LiveGroup::register);

    let stdin = child.stdin.take();
    let input = cmd.stdin.clone();
    let feeder = tokio::spawn(async move {
        if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
            // A process that exits without reading its stdin is its own business: its exit
            // status says what went wrong, not our broken pipe.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        }
    });
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());

    let waited = tokio::time::timeout(cmd.timeout, child.wait()).await;
    if waited.is_err() {
        if let Some(pid) = child.id() {
            kill_group(pid);
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    feeder.abort();
    let (stdout, stderr) = (collect(stdout).await, collect(stderr).await);
    match waited {
        Err(_) => Err(ProcessError::TimedOut {
            cmd: line,
            after: cmd.timeout,
            stdout,
            stderr,
        }),
        Ok(Err(source)) => Err(ProcessError::Spawn { cmd: line, source }),
        Ok(Ok(status)) if status.success() => Ok(Output {
            cmd: line,
            stdout,
            stderr,
        }),
        Ok(Ok(status)) => Err(ProcessError::Failed {
            cmd: line,
            status: describe_status(status),
            stdout,
            stderr,
        }),
    }
}

/// Every command run by this test process, in order: a test compares what a run did with
/// its plan by the commands whose program is under its own fake-tools directory (tests run
/// in parallel threads of one process).
#[cfg(test)]
pub static RECORDED: std::sync::Mutex<Vec<Cmd>> = std::sync::Mutex::new(Vec::new());

#[cfg(test)]
fn record(cmd: &Cmd) {
    if let Ok(mut r) = RECORDED.lock() {
        r.push(cmd.clone());
    }
}

/// The commands run so far whose program is in `dir`.
#[cfg(test)]
pub fn recorded_under(dir: &std::path::Path) -> Vec<Cmd> {
    RECORDED
        .lock()
        .map(|r| {
            r.iter()
                .filter(|c| c.program.starts_with(dir))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The process groups of every command running now. Each runs in a group of its own (so a
/// deadline kills its children too), which also means a Ctrl-C or SIGTERM sent to meshtrust's
/// group does not reach them, and `exit` skips `kill_on_drop`: a signal handler must kill them
/// itself ([`kill_live_groups`]), or a `kind create` still pulling the node image outlives the
/// delete that was meant to clean up after it.
static LIVE_GROUPS: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A running command's group, registered while this lives (a long-running daemon of the
/// istiod target registers its own, so that a signal handler stops it too).
#[derive(Debug)]
pub struct LiveGroup(u32);

impl LiveGroup {
    /// Registers the group led by `pid` (spawned with `process_group(0)`).
    pub fn register(pid: u32) -> LiveGroup {
        if let Ok(mut groups) = LIVE_GROUPS.lock() {
            groups.insert(pid);
        }
        LiveGroup(pid)
    }
}

impl Drop for LiveGroup {
    fn drop(&mut self) {
        if let Ok(mut groups) = LIVE_GROUPS.lock() {
            groups.remove(&self.0);
        }
    }
}

/// SIGKILL to the process group of every command still running; returns how many there were.
pub fn kill_live_groups() -> usize {
    let groups: Vec<u32> = match LIVE_GROUPS.lock() {
        Ok(mut g) => std::mem::take(&mut *g).into_iter().collect(),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner())
            .into_iter()
            .collect(),
    };
    for &pid in &groups {
        kill_group(pid);
    }
    groups.len()
}

/// SIGKILL to the process group led by `pid` (spawned with `process_group(0)`).
pub fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory effects; a negative pid names the group we created, and a
    // group that is already gone only yields ESRCH.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

type Reader = tokio::task::JoinHandle<Vec<u8>>;

fn reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Reader {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf).await;
        }
        buf
    })
}

/// A grandchild that inherited the pipe can keep it open after the child is killed; give up
/// on the rest of its output rather than wait for it.
async fn collect(reader: Reader) -> String {
    let abort = reader.abort_handle();
    match tokio::time::timeout(Duration::from_secs(2), reader).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => {
            abort.abort();
            String::new()
        }
    }
}

/// The blocking twin of [`run`], for `Drop` (which cannot await): the same deadline and the
/// same error, polled with `try_wait` because std has no timed wait.
pub fn run_blocking(cmd: &Cmd) -> Result<Output, ProcessError> {
    #[cfg(test)]
    record(cmd);
    use std::io::{Read as _, Write as _};
    let line = cmd.to_string();
    let mut child = std::process::Command::new(&cmd.program);
    child
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = spawn_retrying(|| child.spawn()).map_err(|source| ProcessError::Spawn {
        cmd: line.clone(),
        source,
    })?;
    let _live = LiveGroup::register(child.id());
    if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), cmd.stdin.as_ref()) {
        let _ = pipe.write_all(bytes);
    }
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + cmd.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) | Err(_) => {
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        None => Err(ProcessError::TimedOut {
            cmd: line,
            after: cmd.timeout,
            stdout,
            stderr,
        }),
        Some(status) if status.success() => Ok(Output {
            cmd: line,
            stdout,
            stderr,
        }),
        Some(status) => Err(ProcessError::Failed {
            cmd: line,
            status: describe_status(status),
            stdout,
            stderr,
        }),
    }
}

/// Spawns, retrying briefly on ETXTBSY: an executable that was just written (a
/// downloaded istioctl, a test's fake kind) can still be open for writing in a
/// child that another thread forked but has not yet exec'd.
fn spawn_retrying<T>(mut spawn: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    const ETXTBSY: i32 = 26;
    let mut attempt = 0;
    loop {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 20 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 * attempt));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Cmd {
        Cmd::new("/bin/sh").args(["-c", script])
    }

    #[test]
    fn a_command_line_is_shell_quoted_only_where_needed() {
        let cmd = Cmd::new("/usr/bin/kind")
            .args(["create", "cluster", "--name", "mt-cluster1"])
            .arg("it's")
            .env("KUBECONFIG", "/tmp/a b");
        assert_eq!(
            cmd.to_string(),
            "KUBECONFIG='/tmp/a b' /usr/bin/kind create cluster --name mt-cluster1 'it'\\''s'"
        );
        assert_eq!(
            cmd.display_short(),
            "KUBECONFIG='/tmp/a b' kind create cluster --name mt-cluster1 'it'\\''s'"
        );
    }

    #[test]
    fn deadlines_read_as_people_write_them() {
        assert_eq!(human_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(human_duration(Duration::from_secs(15)), "15s");
        assert_eq!(human_duration(Duration::from_secs(480)), "8m");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn stdin_is_marked_but_never_shown() {
        let cmd = Cmd::new("docker").stdin(b"secret bytes".to_vec());
        assert_eq!(cmd.to_string(), "docker <stdin>");
        assert!(!format!("{cmd:?}").contains("secret"));
    }

    #[tokio::test]
    async fn a_failure_shows_the_command_the_code_and_both_streams() {
        let err = run(&sh("echo out; echo err >&2; exit 3"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`/bin/sh -c 'echo out; echo err >&2; exit 3'` exited with code 3\n\
             --- stdout ---\nout\n--- stderr ---\nerr"
        );
    }

    #[tokio::test]
    async fn a_long_stderr_is_cut_to_its_tail() {
        let err = run(&sh("seq 1 100 >&2; exit 1")).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--- stdout: (empty)"), "{text}");
        assert!(
            text.contains("--- stderr (last 40 lines, 60 before) ---\n61\n"),
            "{text}"
        );
        assert!(text.ends_with("\n100"), "{text}");
    }

    #[tokio::test]
    async fn a_command_past_its_deadline_is_killed_and_says_so() {
        let started = std::time::Instant::now();
        let err = run(&sh("echo started; sleep 30").timeout(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "`/bin/sh -c 'echo started; sleep 30'` did not finish within 300ms and was killed"
            ),
            "{text}"
        );
        assert!(text.contains("--- stdout ---\nstarted"), "{text}");
    }

    #[tokio::test]
    async fn stdin_reaches_the_process() {
        let out = run(&Cmd::new("cat").stdin(b"hello".to_vec()))
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error_with_a_hint() {
        let err = run(&Cmd::new("/nonexistent/kind")).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot run `/nonexistent/kind`: ")
                && err
                    .to_string()
                    .ends_with("(hint: is it installed and on PATH?)"),
            "{err}"
        );
    }

    #[test]
    fn the_blocking_twin_has_the_same_deadline_and_errors() {
        let err = run_blocking(&sh("exit 4")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`/bin/sh -c 'exit 4'` exited with code 4")
        );
        let err = run_blocking(&sh("sleep 30").timeout(Duration::from_millis(200))).unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
        assert_eq!(run_blocking(&sh("echo hi")).unwrap().stdout, "hi\n");
    }
}
