//! meshtrust's integration tests: one binary, one file per topic.

mod support;

mod certs;
mod chain_input;
mod chain_snapshot;
mod chain_verify;
mod check;
mod verify_cli;
