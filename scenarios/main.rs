//! meshtrust's integration tests: one binary, one file per topic.

mod certs;
mod check;
mod support;
