//! Named process exit codes, shared by every command.

/// What a `meshtrust` process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything checked is conformant.
    Conformant = 0,
    /// A conformance check failed; the reasons were printed.
    NotConformant = 1,
    /// Bad input (a flag, a file) or a missing tool; the fix was printed.
    BadInput = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}
