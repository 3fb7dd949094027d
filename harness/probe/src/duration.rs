//! The one duration grammar of every meshtrust flag (`--timeout`, `--workload-ttl`,
//! `--expect-ttl`): jiff's "friendly" format, with a day as 24 hours.
//!
//! `500ms`, `1.5s`, `90m`, `24h`, `1h30m`, `3650d`, `2w`, `1h 30m`, `2 hours` and ISO 8601's
//! `PT24H` all parse; a bare number does not (the unit is never guessed), nor do months or
//! years (their length varies).

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Span, SpanRelativeTo};

/// How `--help` and errors describe the grammar.
pub const GRAMMAR: &str = "a number and a unit (ms, s, m, h, d, w), as in `500ms`, `1.5s`, `90m`, `24h`, `1h30m` or `3650d`";

/// Parses `text` in the grammar; the result may be zero or negative (`-5h`, `5h ago`).
pub fn parse(text: &str) -> Result<SignedDuration, String> {
    let not_a_duration = || format!("`{text}` is not a duration (hint: write {GRAMMAR})");
    let span: Span = text.trim().parse().map_err(|_| not_a_duration())?;
    span.to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| not_a_duration())
}

/// Parses a duration that must be above zero and, with `max`, at most `max`; the error
/// names the valid range.
pub fn parse_positive(text: &str, max: Option<Duration>) -> Result<Duration, String> {
    let signed = parse(text)?;
    let out_of_range = || match max {
        Some(max) => format!(
            "`{text}` is out of range: it must be above zero and at most `{}`",
            Human(max)
        ),
        None => format!("`{text}` is out of range: it must be above zero"),
    };
    let positive = Duration::try_from(signed)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(out_of_range)?;
    match max {
        Some(max) if positive > max => Err(out_of_range()),
        _ => Ok(positive),
    }
}

/// The probe's `--timeout`: above zero, at most an hour.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_positive(text, Some(Duration::from_secs(3600)))
}

/// Shows a duration the way `parse` reads it.
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if !millis.is_multiple_of(1000) {
            return write!(f, "{millis}ms");
        }
        let secs = millis / 1000;
        match secs {
            s if s > 0 && s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s > 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s > 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_both_former_grammars_took() {
        let ok = |s: &str| Duration::try_from(parse(s).unwrap()).unwrap();
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("24h"), Duration::from_secs(86_400));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("3650d"), Duration::from_secs(3650 * 86_400));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
    }

    #[test]
    fn rejects_bare_numbers_garbage_months_and_unknown_units() {
        for bad in ["", "5", "fast", "5x", "1mo", "1y", "24 h x"] {
            assert_eq!(
                parse(bad),
                Err(format!("`{bad}` is not a duration (hint: write {GRAMMAR})")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn negative_and_zero_durations_parse_but_are_out_of_a_positive_range() {
        assert_eq!(parse("-5h"), Ok(SignedDuration::from_hours(-5)));
        assert_eq!(
            parse_timeout("-5s"),
            Err("`-5s` is out of range: it must be above zero and at most `1h`".to_owned())
        );
        assert_eq!(
            parse_timeout("0s"),
            Err("`0s` is out of range: it must be above zero and at most `1h`".to_owned())
        );
        assert_eq!(
            parse_timeout("2h"),
            Err("`2h` is out of range: it must be above zero and at most `1h`".to_owned())
        );
        assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_positive("-5h", None),
            Err("`-5h` is out of range: it must be above zero".to_owned())
        );
    }

    #[test]
    fn shows_durations_in_the_largest_whole_unit_and_reads_them_back() {
        for (d, s) in [
            (Duration::from_secs(5), "5s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(2 * 86_400), "2d"),
        ] {
            assert_eq!(Human(d).to_string(), s);
            assert_eq!(Duration::try_from(parse(s).unwrap()).unwrap(), d);
        }
    }
}
