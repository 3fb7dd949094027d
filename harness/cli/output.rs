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
