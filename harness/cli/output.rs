//! What every command shares: `--format`, how errors print, and the value parsers of
//! flags whose values `--help` and the shell completions list.

use std::ffi::OsStr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use clap::builder::{PossibleValue, TypedValueParser};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// An error and its causes on one line, each said once: a message that already
/// includes its cause's text (`cannot read `x`: {source}`) is not followed by it again.
pub fn render_error(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A path as a shell word, for hints the user can paste.
pub fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `--dir DIR` for a hint, or nothing when DIR is the default `.`.
pub fn dir_flag(dir: &Path) -> String {
    if dir == Path::new(".") {
        String::new()
    } else {
        format!(" --dir {}", shell_word(dir))
    }
}

/// Parses values by `FromStr` (keeping its error text) while telling clap the possible
/// values, so that `--help` and the completions list them.
#[derive(Clone)]
pub struct Named<T> {
    values: Vec<PossibleValue>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> Named<T> {
    pub fn new(values: impl IntoIterator<Item = PossibleValue>) -> Self {
        Named {
            values: values.into_iter().collect(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T> TypedValueParser for Named<T>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        text.parse::<T>().map_err(|reason| {
            let arg = arg.map_or_else(|| "...".to_owned(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value '{text}' for '{arg}': {reason}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.values.iter().cloned()))
    }
}

/// The key types `--key` and `--root-key` take.
pub fn key_alg() -> Named<meshtrust::pki::KeyAlg> {
    Named::new(
        meshtrust::pki::KeyAlg::ALL
            .iter()
            .map(|k| PossibleValue::new(k.name())),
    )
}

/// The scenarios `run --scenario` takes, each with its description.
pub fn scenario() -> Named<meshtrust::scenario::Scenario> {
    Named::new(
        meshtrust::scenario::Scenario::ALL
            .iter()
            .map(|s| PossibleValue::new(s.name()).help(s.description())),
    )
}

/// The longest validity `--root-days` and `--intermediate-days` take: 100 years.
pub const MAX_DAYS: u32 = 36_500;

/// A number of days from 1 to [`MAX_DAYS`].
pub fn parse_days(text: &str) -> Result<u32, String> {
    let out_of_range = || format!("`{text}` is out of range: it must be from 1 to {MAX_DAYS} days");
    let n: i128 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of days (hint: e.g. `3650`)"))?;
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_DAYS).contains(n))
        .ok_or_else(out_of_range)
}

/// A duration above zero, in meshtrust's one grammar.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    meshtrust_probe::cli::parse_positive(text, None)
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-q`: no progress and no notes (what was generated or written, phase timings).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A note on stderr, silent under `-q`. Warnings and errors are not notes.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            meshtrust::say!($($arg)*);
        }
    };
}
pub(crate) use note;

/// A warning on stderr (`warning: ...`, coloured where colour is on); `-q` keeps it.
pub fn warn(message: std::fmt::Arguments<'_>) {
    meshtrust::console::err(&paint(&format!("warning: {message}\n")));
}

/// Where progress spinners draw: stderr, or nowhere under `-q`.
pub fn progress_target() -> indicatif::ProgressDrawTarget {
    if quiet() {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    }
}

/// `--color`: when to colour what meshtrust prints.
#[derive(Clone, Copy, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set (`CLICOLOR_FORCE` forces it elsewhere).
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether log lines on stderr get ANSI colours: `always`, `never`, or (`auto`) when
    /// `CLICOLOR_FORCE` is set, or stderr is a terminal and `NO_COLOR` is unset.
    pub fn ansi_on_stderr(self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0")
                    || (std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            }
        }
    }
}

impl ColorWhen {
    pub fn apply(self) {
        anstream::ColorChoice::write_global(match self {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        });
    }
}

/// Colours the verdict words of a rendered report (PASS/FAIL/INFO, `error[..]`,
/// `warning[..]`, `note[..]`, `ok:`, `conformant` / `not conformant`, a failed scenario).
/// Print the result with `anstream`, which removes the colour where it does not belong.
pub fn paint(text: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let red = AnsiColor::Red.on_default().bold();
    let green = AnsiColor::Green.on_default();
    let yellow = AnsiColor::Yellow.on_default().bold();
    let cyan = AnsiColor::Cyan.on_default();
    // (how the token starts, where it ends, its style), first match wins.
    let tokens: [(&str, Option<char>, Style); 10] = [
        ("FAIL ", None, red),
        ("PASS ", None, green),
        ("INFO ", None, cyan),
        ("error[", Some(']'), red),
        ("error:", None, red),
        ("warning[", Some(']'), yellow),
        ("warning:", None, yellow),
        ("note[", Some(']'), cyan),
        ("ok:", None, green),
        ("not conformant", None, red),
    ];
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let hit = tokens.iter().find_map(|(start, end, style)| {
            let len = match end {
                None => start.trim_end().len(),
                Some(end) => body.find(*end)? + 1,
            };
            body.starts_with(start).then_some((len, *style))
        });
        let hit = hit
            .or_else(|| (body.trim_end() == "conformant").then_some(("conformant".len(), green)));
        match hit {
            Some((len, style)) => {
                out.push_str(indent);
                out.push_str(&format!("{style}{}{style:#}", &body[..len]));
                out.push_str(&body[len..]);
            }
            // A scenario's result in `run`'s table: `name  FAIL  time  expectation`.
            None if line.contains("  FAIL  ") => {
                out.push_str(&line.replacen("  FAIL  ", &format!("  {red}FAIL{red:#}  "), 1))
            }
            None if line.contains("  pass  ") => {
                out.push_str(&line.replacen("  pass  ", &format!("  {green}pass{green:#}  "), 1))
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::paint;

    fn strip(s: &str) -> String {
        anstream::adapter::strip_str(s).to_string()
    }

    #[test]
    fn paint_colours_only_the_verdict_words_and_keeps_the_text() {
        let text = "chain of 2 certificates\nFAIL leaf-ttl  too long\nPASS spiffe-id  ok\n  error[key-mismatch]: bad\n  ok: istiod loads it\nnot conformant: leaf-ttl failed\nplugin-ca  FAIL     0.10s  conformant\ndefault-ca  pass     0.10s  fails\nplain line\n";
        let painted = paint(text);
        assert_eq!(strip(&painted), text, "painting changed the words");
        for (word, colour) in [
            ("FAIL", "\u{1b}[1m\u{1b}[31mFAIL"),
            ("PASS", "\u{1b}[32mPASS"),
            ("error", "\u{1b}[1m\u{1b}[31merror[key-mismatch]"),
            ("ok", "\u{1b}[32mok:"),
            ("not conformant", "\u{1b}[1m\u{1b}[31mnot conformant"),
        ] {
            assert!(painted.contains(colour), "{word} not coloured: {painted:?}");
        }
        assert!(painted.contains("  \u{1b}[1m\u{1b}[31mFAIL\u{1b}[0m     0.10s"));
        assert!(painted.contains("default-ca  \u{1b}[32mpass\u{1b}[0m     0.10s"));
        assert!(painted.ends_with("plain line\n"), "{painted:?}");
        assert!(painted.contains("chain of 2 certificates\n"), "{painted:?}");
        // The negative twin: a line with no verdict word is left alone.
        assert_eq!(paint("plain line\n"), "plain line\n");
        assert_eq!(paint("conformant\n"), "\u{1b}[32mconformant\u{1b}[0m\n");
    }
}
