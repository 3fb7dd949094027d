//! meshtrust's integration tests: one binary, one file per topic.

mod support;

mod certs;
mod chain_input;
mod chain_snapshot;
mod chain_verify;
mod check;
mod mesh_ca_api;
mod mesh_istiod_rules;
mod mesh_traffic;
mod verify_cli;
