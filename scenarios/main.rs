mod support;

mod chain_input;
mod chain_snapshot;
mod chain_verify;
mod verify_cli;
