//! Shared test support: domain nouns, one file each.

pub mod openssl;
pub mod pki;
