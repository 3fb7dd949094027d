//! Certificates and keys: generating Istio's root and per-cluster intermediates,
//! the cacerts layout on disk, and reading a plugged bundle back.

mod bundle;
mod ca;
mod encoding;
mod error;
mod key;
pub mod layout;
pub mod make;
mod secret;

pub use bundle::{Bundle, BundleFile, Layout, Signing, TLS_CA, TLS_CRT, TLS_KEY};
pub use ca::{
    Ca, IntermediateSpec, RootSpec, generate_intermediate, generate_intermediate_with_key,
    generate_root, generate_root_with_key, openssl_key_id, random_serial,
};
pub use encoding::{
    contains_label, key_matches_cert, parse_certs, parse_certs_pem_or_der, parse_key, to_pem,
};
pub use error::PkiError;
pub use key::KeyAlg;
pub use secret::{cacerts_secret_yaml, present_cacerts_secret_yaml};
