//! The probe against real peers: openssl's s_server as the reference TLS server, and raw TCP
//! listeners for the failure paths. Needs `openssl` on PATH.

mod alpn;
mod bad_input;
mod chain;
mod client_auth;
mod static_build;
mod support;
