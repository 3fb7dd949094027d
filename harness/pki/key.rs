//! Key algorithms and key generation.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, RsaKeySize};

use super::PkiError;

/// The key algorithms meshtrust can generate for a CA. Istio's Makefile only makes RSA 4096.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlg {
    Rsa4096,
    Rsa3072,
    Rsa2048,
    P256,
    P384,
}

impl KeyAlg {
    pub const ALL: [KeyAlg; 5] = [
        KeyAlg::Rsa4096,
        KeyAlg::Rsa3072,
        KeyAlg::Rsa2048,
        KeyAlg::P256,
        KeyAlg::P384,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::Rsa4096 => "rsa4096",
            KeyAlg::Rsa3072 => "rsa3072",
            KeyAlg::Rsa2048 => "rsa2048",
            KeyAlg::P256 => "p256",
            KeyAlg::P384 => "p384",
        }
    }

    /// Generates a fresh key. RSA keys use SHA-256 signatures, as the Makefile's
    /// `openssl x509 -sha256`; EC keys the hash matching their curve.
    pub fn generate(self) -> Result<KeyPair, PkiError> {
        let generated = match self {
            KeyAlg::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
            KeyAlg::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyAlg::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyAlg::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlg::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        };
        generated.map_err(|source| PkiError::Generate {
            what: format!("a {} key", self.name()),
            source,
        })
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlg::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = KeyAlg::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown key type `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}
