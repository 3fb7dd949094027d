//! meshtrust's integration tests: one binary, one file per topic.

mod certs;
#[cfg(feature = "e2e")]
mod kube_plugin;
#[cfg(feature = "e2e")]
mod kube_preflight;
