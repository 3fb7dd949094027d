//! Shared test support: domain nouns, one file each.

#![allow(dead_code)] // each test file uses its own part of the support

pub mod chains;
pub mod expect;
pub mod mesh;
pub mod openssl;
pub mod pki;
pub mod targets;
