//! Durations as people write them for certificate lifetimes: `24h`, `90m`,
//! `2160h`, `1h30m`, `3650d`. Small enough not to need a crate.

use time::Duration;

use super::ChainError;

/// Parses a sequence of `<number><unit>` with units `d`, `h`, `m`, `s`.
pub fn parse(value: &str) -> Result<Duration, ChainError> {
    let bad = || ChainError::BadDuration {
        value: value.to_owned(),
    };
    let mut total = Duration::ZERO;
    let mut rest = value.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let seconds_per = match unit {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let part = n.checked_mul(seconds_per).ok_or_else(bad)?;
        total = total.checked_add(Duration::seconds(part)).ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    Ok(total)
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
    fn words_bare_numbers_and_unknown_units_are_rejected() {
        for bad in ["", "24", "h", "24x", "1.5h", "-1h", "99999999999999999999d"] {
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
