//! Text for the user on stdout and stderr that never panics. `print!` and `eprintln!` panic
//! when their stream is gone (`meshtrust ... | head -1` closes stdout; `2>&-` closes stderr,
//! and so does a CI runner that went away); a conformance run must still finish, clean up and
//! exit with its own code. A line that cannot be written is dropped.

/// Writes `text` to stdout (ANSI styling stripped where the stream is not a terminal, as
/// `anstream` does); `false` if stdout is gone.
pub fn out(text: &str) -> bool {
    write(anstream::stdout(), text)
}

/// Writes `text` to stderr, as [`out`] does to stdout.
pub fn err(text: &str) -> bool {
    write(anstream::stderr(), text)
}

fn write(mut stream: impl std::io::Write, text: &str) -> bool {
    stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush())
        .is_ok()
}

/// One line on stderr (`format!` arguments), never panicking; a line that cannot be written
/// is dropped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = $crate::console::err(&format!("{}\n", format_args!($($arg)*)));
    }};
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_line_is_written_and_says_so() {
        // The test harness's stderr is there: the write succeeds.
        assert!(super::err(""));
        assert!(super::out(""));
    }
}
