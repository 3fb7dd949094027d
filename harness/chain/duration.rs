//! Durations as people write them for certificate lifetimes: `24h`, `90m`, `2160h`,
//! `1h30m`, `3650d`. The grammar is the one of every meshtrust flag (jiff's friendly format,
//! shared with the probe's `--timeout`): see `meshtrust_probe::cli::DURATION_GRAMMAR`.

use time::Duration;

use super::ChainError;

/// Parses `value` in meshtrust's duration grammar; zero and negative durations parse.
pub fn parse(value: &str) -> Result<Duration, ChainError> {
    let bad = || ChainError::BadDuration {
        value: value.to_owned(),
    };
    let d = meshtrust_probe::cli::parse_duration(value).map_err(|_| bad())?;
    Ok(Duration::new(d.as_secs(), d.subsec_nanos()))
}

/// The inverse of [`parse`], in whole seconds: days only from two days up, so
/// that a workload's `24h2m` reads as istiod's TTL plus its backdating.
pub fn format(d: Duration) -> String {
    if d.is_negative() {
        return format!("-{}", format(d.abs()));
    }
    let mut secs = d.whole_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if secs >= 2 * 86_400 {
        out.push_str(&format!("{}d", secs / 86_400));
        secs %= 86_400;
    }
    for (unit, per) in [('h', 3_600), ('m', 60), ('s', 1)] {
        if secs >= per {
            out.push_str(&format!("{}{unit}", secs / per));
            secs %= per;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_lifetimes_parse() {
        assert_eq!(parse("24h").unwrap(), Duration::hours(24));
        assert_eq!(parse("90m").unwrap(), Duration::minutes(90));
        assert_eq!(parse("2160h").unwrap(), Duration::days(90));
        assert_eq!(parse("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse("3650d").unwrap(), Duration::days(3650));
    }

    #[test]
    fn the_probes_units_parse_here_too() {
        assert_eq!(parse("500ms").unwrap(), Duration::milliseconds(500));
        assert_eq!(parse("1.5s").unwrap(), Duration::milliseconds(1500));
        assert_eq!(parse("-1h").unwrap(), -Duration::hours(1));
    }

    #[test]
    fn words_bare_numbers_and_unknown_units_are_rejected() {
        for bad in ["", "24", "h", "24x", "1mo", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn formatting_reads_back_the_same_duration() {
        for (d, s) in [
            (Duration::hours(24) + Duration::minutes(2), "24h2m"),
            (Duration::days(90), "90d"),
            (Duration::days(3650), "3650d"),
            (Duration::seconds(61), "1m1s"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(format(d), s);
            assert_eq!(parse(s).unwrap(), d);
        }
    }
}
