//! meshtrust's integration tests: one binary, one file per topic.

mod support;

mod certs;
mod chain_input;
mod chain_messages;
mod chain_snapshot;
mod chain_verify;
mod check;
mod cli_messages;
#[cfg(feature = "e2e-tools")]
mod control_plane;
#[cfg(feature = "e2e-tools")]
mod e2e_tools;
#[cfg(feature = "e2e-tools")]
mod istiod_target;
mod json_schemas;
#[cfg(feature = "e2e")]
mod kube_preflight;
#[cfg(feature = "e2e")]
mod kube_scenarios;
mod mesh_ca_api;
mod mesh_istiod_rules;
mod mesh_traffic;
#[cfg(feature = "oracle")]
mod oracle;
mod run_cli;
mod scenario_bad_cacerts;
mod scenario_multicluster;
mod scenario_plugin_ca;
mod scenario_policy;
mod scenario_rotation;
mod scenario_upgrade;
mod trust_graph;
mod verify_cli;
