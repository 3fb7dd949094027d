//! The `--format` of the commands that print a report.

use clap::ValueEnum;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}
