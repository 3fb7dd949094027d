//! What users read when they get something wrong: every bad-input error of the CLI,
//! rendered as a user sees it, in one snapshot (`fixtures/snapshots/cli_bad_input.snap`), so
//! that each change of wording shows in review. Plus the flags' help, the completions and
//! the duration grammar as the command line takes it.

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

fn meshtrust(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("meshtrust").expect("the meshtrust binary is built");
    cmd.current_dir(cwd);
    for var in [
        "ROOTCA_ORG",
        "ROOTCA_CN",
        "ROOTCA_DAYS",
        "INTERMEDIATE_ORG",
        "INTERMEDIATE_CN",
        "INTERMEDIATE_DAYS",
        "INTERMEDIATE_SAN_DNS",
        "MESHTRUST_CERTS_DIR",
        "MESHTRUST_PROBE",
        "RUST_LOG",
        "NO_COLOR",
        "CLICOLOR",
        "CLICOLOR_FORCE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A scratch directory with `certs/{cluster1,cluster2}` (P-256, quick) and a chain file.
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    meshtrust(tmp.path())
        .args(["certs", "cacerts", "cluster1", "cluster2", "--key", "p256"])
        .args(["--root-key", "p256", "--dir", "certs"])
        .assert()
        .success();
    let pem = std::fs::read(tmp.path().join("certs/cluster1/ca-cert.pem")).unwrap();
    std::fs::write(tmp.path().join("truncated.pem"), &pem[..pem.len() / 2]).unwrap();
    std::fs::create_dir(tmp.path().join("reports")).unwrap();
    tmp
}

/// `$ meshtrust ARGS`, its exit code and its stderr, as a transcript.
fn transcript(cwd: &Path, args: &[&str]) -> String {
    let out = meshtrust(cwd).args(args).output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    format!(
        "$ meshtrust {}\nexit {}\n{}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_bad_input_error_reads_as_in_the_snapshot() {
    let ws = workspace();
    let cases: &[&[&str]] = &[
        // A file where a cacerts directory belongs.
        &[
            "verify",
            "--cacerts",
            "certs/cluster1/ca-cert.pem",
            "truncated.pem",
        ],
        // OS errors once, whoever wrapped them.
        &["verify", "--cacerts", "certs/nope", "truncated.pem"],
        &["verify", "--cacerts", "certs/cluster1", "nope.pem"],
        &["check", "certs/nope"],
        // A truncated PEM names its missing END line, not a byte array.
        &["verify", "--cacerts", "certs/cluster1", "truncated.pem"],
        // The parent of the bundles.
        &["check", "certs"],
        // Durations: one grammar, negative values are values out of range.
        &["check", "--workload-ttl", "-5h", "certs/cluster1"],
        &["check", "--workload-ttl", "5", "certs/cluster1"],
        &[
            "verify",
            "--cacerts",
            "certs/cluster1",
            "--expect-ttl",
            "0s",
            "x.pem",
        ],
        &[
            "verify",
            "--cacerts",
            "certs/cluster1",
            "--expect-ttl",
            "soon",
            "x.pem",
        ],
        &["probe", "127.0.0.1:1", "--timeout", "-5s"],
        &["probe", "127.0.0.1:1", "--timeout", "2h"],
        // Days: a range, negative numbers included.
        &["certs", "root-ca", "--root-days", "-1"],
        &["certs", "root-ca", "--root-days", "999999"],
        &["certs", "cacerts", "c", "--intermediate-days", "0"],
        &["certs", "cacerts", "c", "--intermediate-days", "many"],
        // Clusters and scenarios named twice, flags of another target.
        &["certs", "cacerts", "cluster1", "cluster1", "--dir", "fresh"],
        &["run", "--scenario", "plugin-ca", "--scenario", "plugin-ca"],
        &["run", "--context", "kind-a"],
        &["run", "--prefix", "mine"],
        &["run", "--key", "rsa1024"],
        &[
            "run",
            "--target",
            "kind",
            "--istioctl",
            "a",
            "--istioctl",
            "b",
            "--istioctl",
            "c",
        ],
        // Output paths: checked before anything runs, named as given (never a temp file).
        &["run", "--junit", "missing/dir/junit.xml"],
        &["run", "--json", "reports"],
        &[
            "certs",
            "secret",
            "cluster1",
            "--dir",
            "certs",
            "-o",
            "missing/secret.yaml",
        ],
        &["certs", "cacerts", "c", "--dir", "truncated.pem/sub"],
        &["completions", "tcsh"],
    ];
    let text: Vec<String> = cases.iter().map(|a| transcript(ws.path(), a)).collect();
    let text = text.join("\n");
    insta::with_settings!({
        snapshot_path => "../fixtures/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("cli_bad_input", text);
    });
}

#[test]
fn an_os_error_is_printed_once_and_a_temporary_name_never() {
    let ws = workspace();
    for args in [
        &["verify", "--cacerts", "certs/cluster1", "nope.pem"][..],
        &[
            "certs",
            "secret",
            "cluster1",
            "--dir",
            "certs",
            "-o",
            "missing/s.yaml",
        ],
        &["run", "--junit", "missing/j.xml"],
    ] {
        let out = meshtrust(ws.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.matches("(os error").count() <= 1,
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains(".meshtrust."), "{args:?}: {stderr}");
    }
    // The twin: the cause is still there, once.
    meshtrust(ws.path())
        .args(["verify", "--cacerts", "certs/cluster1", "nope.pem"])
        .assert()
        .code(2)
        .stderr("error: cannot read `nope.pem`: No such file or directory (os error 2)\n");
}

#[test]
fn the_one_duration_grammar_takes_days_fractions_and_milliseconds_everywhere() {
    let ws = workspace();
    // Formerly `check` refused `1.5h` and the probe refused `1d`: neither is bad input now.
    for ttl in ["1.5h", "1d", "90m", "1h30m", "2 hours"] {
        meshtrust(ws.path())
            .args(["check", "--workload-ttl", ttl, "certs/cluster1"])
            .assert()
            .code(predicate::in_iter([0, 1]));
    }
    let out = meshtrust(ws.path())
        .args(["probe", "127.0.0.1:1", "--timeout", "500ms"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("invalid value"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_lists_key_types_scenarios_and_formats_with_their_meaning() {
    let tmp = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let out = meshtrust(tmp.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        // One line, whatever the terminal width wrapped.
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    for args in [
        &["certs", "cacerts", "--help"][..],
        &["certs", "root-ca", "--help"],
        &["run", "--help"],
    ] {
        assert!(
            help(args).contains("[possible values: rsa4096, rsa3072, rsa2048, p256, p384]"),
            "{args:?}"
        );
    }
    let run = help(&["run", "--help"]);
    for scenario in meshtrust::scenario::Scenario::ALL {
        assert!(
            run.contains(&format!("- {}:", scenario.name())),
            "`{scenario}` is not listed in run --help:\n{run}"
        );
    }
    let check = help(&["check", "--help"]);
    assert!(check.contains("How to print the findings"), "{check}");
    assert!(check.contains("- json: For programs"), "{check}");
    assert!(help(&["verify", "--help"]).contains("How to print the verdict"));
    assert!(help(&["--help"]).contains("Exit codes: 0 ok"));
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, says) in [
        ("bash", "complete -F _meshtrust"),
        ("zsh", "#compdef meshtrust"),
        ("fish", "complete -c meshtrust"),
    ] {
        let out = meshtrust(tmp.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(says), "{shell}:\n{script}");
        // The values of --key and the subcommands are completed.
        assert!(script.contains("p384"), "{shell}");
        assert!(script.contains("cacerts"), "{shell}");
    }
    let bash = meshtrust(tmp.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let status = Command::new("bash")
        .args(["-n", "-c"])
        .arg(String::from_utf8(bash.stdout).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the bash completion script does not parse"
    );
}

/// Runs `meshtrust ARGS` with `env` set; (exit code, stdout, stderr).
fn run_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = meshtrust(cwd);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ESC: &str = "\u{1b}[";

#[test]
fn colour_is_off_in_pipes_forced_by_clicolor_force_and_always_refused_by_no_color_and_never() {
    let tmp = workspace();
    let args = ["check", "certs/cluster1"];
    let plain = run_with(tmp.path(), &args, &[]);
    assert_eq!(plain.0, 0, "{plain:?}");
    assert!(!plain.1.contains(ESC), "colour in a pipe: {:?}", plain.1);
    assert!(plain.1.contains("ok: istiod loads it"), "{}", plain.1);
    for (extra, env, coloured) in [
        (None, &[("CLICOLOR_FORCE", "1")][..], true),
        (Some("--color=always"), &[][..], true),
        (Some("--color=always"), &[("NO_COLOR", "1")][..], true),
        (
            None,
            &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")][..],
            false,
        ),
        (Some("--color=never"), &[("CLICOLOR_FORCE", "1")][..], false),
        (Some("--color=auto"), &[][..], false),
    ] {
        let mut a = args.to_vec();
        a.extend(extra);
        let (code, out, _) = run_with(tmp.path(), &a, env);
        assert_eq!(code, 0);
        assert_eq!(out.contains(ESC), coloured, "{a:?} with {env:?}: {out:?}");
        // Colour never changes the words.
        assert_eq!(anstream::adapter::strip_str(&out).to_string(), plain.1);
    }
    // Errors are coloured too, on stderr, and only when asked.
    let (code, _, err) = run_with(
        tmp.path(),
        &["check", "no-such-dir", "--color", "always"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!("{ESC}1m{ESC}31merror:")),
        "{err:?}"
    );
    let (_, _, err) = run_with(tmp.path(), &["check", "no-such-dir"], &[]);
    assert!(err.starts_with("error:") && !err.contains(ESC), "{err:?}");
    let (code, _, err) = run_with(tmp.path(), &["check", "certs", "--color", "sometimes"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("[possible values: auto, always, never]"),
        "{err}"
    );
}

#[test]
fn quiet_drops_notes_and_progress_but_keeps_results_warnings_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = [
        "certs",
        "cacerts",
        "cluster1",
        "--key",
        "p256",
        "--root-key",
        "p256",
        "--dir",
        "certs",
    ];
    let (code, out, err) = run_with(tmp.path(), &certs, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("generated root certs/root-cert.pem"), "{err}");
    assert!(err.contains("generated cluster1: "), "{err}");
    // Again with -q and a flag an existing root makes moot: the notes go, the warning stays.
    let (code, out, err) = run_with(
        tmp.path(),
        &[&certs[..], &["--force", "--root-days", "100", "-q"]].concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "warning: `--root-key`, `--root-days` are ignored: the root `certs/root-cert.pem` already exists (hint: `--force-root` regenerates it)"
        ],
        "{err}"
    );
    // Results still print under -q; errors too.
    let (code, out, _) = run_with(tmp.path(), &["-q", "check", "certs/cluster1"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("ok: istiod loads it"), "{out}");
    let (code, _, err) = run_with(tmp.path(), &["check", "nowhere", "--quiet"], &[]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: "), "{err}");
    // -q and -v contradict each other.
    let (code, _, err) = run_with(tmp.path(), &["-q", "-v", "check", "certs/cluster1"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
}
