//! The captured chain: parsing, relating it to a plugged bundle, verifying it,
//! and its redacted snapshot.

pub mod path;
pub mod signature;
