//! Text for the user on stdout and stderr that never panics. `print!` and `eprintln!` panic
//! when their stream is gone (`meshtrust ... | head -1` closes stdout; `2>&-` closes stderr,
//! and so does a CI runner that went away); a conformance run must still finish, clean up and
//! exit with its own code. A line that cannot be written is dropped. (Tested through the CLI:
//! `run_cli::a_closed_pipe_never_turns_an_exit_code_into_a_panic`.)

/// Writes `text` to stdout (ANSI styling stripped where the stream is not a terminal, as
/// `anstream` does); dropped if stdout is gone.
pub fn out(text: &str) {
    write(anstream::stdout(), text);
}

/// Writes `text` to stderr, as [`out`] does to stdout.
pub fn err(text: &str) {
    write(anstream::stderr(), text);
}

fn write(mut stream: impl std::io::Write, text: &str) {
    // A stream that is gone (EPIPE, EBADF) takes nothing more: the run goes on.
    let _ = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush());
}

/// One line on stderr (`format!` arguments), never panicking; a line that cannot be written
/// is dropped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::err(&format!("{}\n", format_args!($($arg)*)))
    };
}
