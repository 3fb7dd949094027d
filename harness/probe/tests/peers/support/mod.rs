//! Test support: a PKI shaped like Istio's, openssl peers, raw TCP misbehavers, and a driver
//! for the probe binary. Shared with `benches/capture.rs`.
#![allow(dead_code)] // each user (tests, bench) takes a different subset

pub mod listeners;
pub mod openssl;
pub mod pki;
pub mod probe_bin;
pub mod scratch;
