//! Durations as people type them on a command line (`5s`, `500ms`, `2m`) and as errors show them.

use std::fmt;
use std::time::Duration;

/// Parses `500ms`, `5s`, `1.5s`, `2m`, or a bare number of seconds.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. `5s`, `500ms`)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use ms, s or m)"
            ));
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 3600.0 {
        return Err(format!("`{text}` must be above zero and at most an hour"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Shows a duration the way `parse` reads it.
pub(crate) struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_units_people_type() {
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn rejects_zero_garbage_and_unknown_units() {
        assert!(parse("0s").is_err());
        assert!(parse("").is_err());
        assert!(parse("fast").is_err());
        assert_eq!(
            parse("5h"),
            Err("unknown unit `h` in `5h` (use ms, s or m)".to_owned())
        );
    }

    #[test]
    fn shows_whole_seconds_and_milliseconds_as_typed() {
        assert_eq!(Human(Duration::from_secs(5)).to_string(), "5s");
        assert_eq!(Human(Duration::from_millis(1500)).to_string(), "1500ms");
    }
}
