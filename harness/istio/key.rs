//! istiod's private-key rules: `ParsePemEncodedKey` (Istio's security/pkg/pki/util
//! crypto.go) on the first PEM block of the key file, then Go's `tls.X509KeyPair` to
//! match it with the signing certificate. Keys are read whatever their size, as Go
//! reads them; Go refuses RSA keys under 1024 bits (crypto/rsa, Go 1.24+).

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use pkcs1::der::Decode as _;
use x509_parser::public_key::PublicKey;

use super::gopem::{self, Block};

/// A parsed signing key, as far as matching it with a certificate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicHalf {
    /// RSA modulus (big-endian, no leading zeros) and public exponent; the size in bits.
    Rsa { n: Vec<u8>, e: Vec<u8>, bits: usize },
    /// EC curve OID (dotted) and the uncompressed public point.
    Ec { curve: String, point: Vec<u8> },
    /// Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// Why the key file fails istiod's key rule, with the text Istio's code returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The first block's label, if there is a block.
    pub label: Option<String>,
    /// Istio's error text (after "failed to parse private key PEM: ").
    pub text: String,
}

fn trim(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&b) => (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

fn rsa_from_pkcs1(der: &[u8]) -> Result<PublicHalf, String> {
    let key = pkcs1::RsaPrivateKey::from_der(der)
        .map_err(|e| format!("x509: failed to parse private key ({e})"))?;
    let n = trim(key.modulus.as_bytes());
    let bits = bit_len(&n);
    if bits < 1024 {
        return Err(format!(
            "crypto/rsa: {bits}-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)"
        ));
    }
    Ok(PublicHalf::Rsa {
        n,
        e: trim(key.public_exponent.as_bytes()),
        bits,
    })
}

fn ec_alg(curve: &str) -> Option<&'static sig::EcdsaSigningAlgorithm> {
    match curve {
        "1.2.840.10045.3.1.7" => Some(&sig::ECDSA_P256_SHA256_ASN1_SIGNING),
        "1.3.132.0.34" => Some(&sig::ECDSA_P384_SHA384_ASN1_SIGNING),
        "1.3.132.0.35" => Some(&sig::ECDSA_P521_SHA512_ASN1_SIGNING),
        _ => None,
    }
}

fn ec_from_sec1(der: &[u8], curve_hint: Option<String>) -> Result<PublicHalf, String> {
    let key = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| format!("x509: failed to parse EC private key: {e}"))?;
    let curve = key
        .parameters
        .and_then(|p| p.named_curve())
        .map(|oid| oid.to_string())
        .or(curve_hint)
        .ok_or("x509: failed to parse EC private key embedded in PKCS#8: missing named curve")?;
    let alg = ec_alg(&curve).ok_or_else(|| format!("x509: unknown elliptic curve {curve}"))?;
    // The public point from the private scalar (SEC1 makes the public key optional).
    let pair = sig::EcdsaKeyPair::from_private_key_der(alg, der)
        .map_err(|e| format!("x509: invalid elliptic curve private key value ({e})"))?;
    Ok(PublicHalf::Ec {
        curve,
        point: pair.public_key().as_ref().to_vec(),
    })
}

fn from_pkcs8(der: &[u8]) -> Result<PublicHalf, String> {
    let info = pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|e| format!("x509: failed to parse private key ({e})"))?;
    match info.algorithm.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => rsa_from_pkcs1(info.private_key)
            .map_err(|e| format!("x509: failed to parse RSA private key embedded in PKCS#8: {e}")),
        "1.2.840.10045.2.1" => {
            let curve = info.algorithm.parameters_oid().ok().map(|o| o.to_string());
            ec_from_sec1(info.private_key, curve)
        }
        "1.3.101.112" => {
            let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|e| format!("x509: invalid Ed25519 private key ({e})"))?;
            Ok(PublicHalf::Ed25519(pair.public_key().as_ref().to_vec()))
        }
        other => Err(format!(
            "x509: PKCS#8 wrapping contained private key with unknown algorithm: {other}"
        )),
    }
}

/// `ParsePemEncodedKey`: the first PEM block must be `EC PRIVATE KEY` (SEC1),
/// `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8), and parse as such.
pub fn parse_first_block(bytes: &[u8]) -> Result<PublicHalf, KeyError> {
    let Some(Block { label, bytes, .. }) = gopem::first_block(bytes) else {
        return Err(KeyError {
            label: None,
            text: "invalid PEM-encoded key".into(),
        });
    };
    let err = |text: String| KeyError {
        label: Some(label.clone()),
        text,
    };
    match label.as_str() {
        "EC PRIVATE KEY" => ec_from_sec1(&bytes, None)
            .map_err(|e| err(format!("failed to parse the ECDSA private key: {e}"))),
        "RSA PRIVATE KEY" => rsa_from_pkcs1(&bytes)
            .map_err(|e| err(format!("failed to parse the RSA private key: {e}"))),
        "PRIVATE KEY" => from_pkcs8(&bytes)
            .map_err(|e| err(format!("failed to parse the PKCS8 private key: {e}"))),
        other => Err(err(format!(
            "unsupported PEM block type for a private key: {other}"
        ))),
    }
}

/// The public half of a certificate's key, if it is a kind Go's `tls.X509KeyPair` knows.
pub fn certificate_public_half(der: &[u8]) -> Option<PublicHalf> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let spki = cert.public_key();
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let n = trim(rsa.modulus);
            let bits = bit_len(&n);
            Some(PublicHalf::Rsa {
                n,
                e: trim(rsa.exponent),
                bits,
            })
        }
        PublicKey::EC(point) => Some(PublicHalf::Ec {
            curve: spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())?,
            point: point.data().to_vec(),
        }),
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            Some(PublicHalf::Ed25519(spki.subject_public_key.data.to_vec()))
        }
        _ => None,
    }
}

/// `tls.X509KeyPair(certPEM, keyPEM)` once the key parsed: the first `CERTIFICATE`
/// block of the certificate file against the key. `Err` holds Go's text.
pub fn x509_key_pair(cert_pem: &[u8], key: &PublicHalf) -> Result<(), String> {
    let blocks = gopem::blocks(cert_pem);
    let Some(cert) = blocks.iter().find(|b| b.label == "CERTIFICATE") else {
        // Go (1.23+) names the block types it skipped (crypto/tls X509KeyPair).
        return Err(if blocks.is_empty() {
            "tls: failed to find any PEM data in certificate input".into()
        } else {
            let skipped: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
            format!(
                "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: [{}]",
                skipped.join(" ")
            )
        });
    };
    if x509_parser::parse_x509_certificate(&cert.bytes).is_err() {
        return Err("x509: malformed certificate".into());
    }
    let Some(public) = certificate_public_half(&cert.bytes) else {
        return Err("tls: unknown public key algorithm".into());
    };
    let same_kind = matches!(
        (&public, key),
        (PublicHalf::Rsa { .. }, PublicHalf::Rsa { .. })
            | (PublicHalf::Ec { .. }, PublicHalf::Ec { .. })
            | (PublicHalf::Ed25519(_), PublicHalf::Ed25519(_))
    );
    if !same_kind {
        return Err("tls: private key type does not match public key type".into());
    }
    if let (PublicHalf::Rsa { n: a, e: ea, .. }, PublicHalf::Rsa { n: b, e: eb, .. }) =
        (&public, key)
    {
        return if a == b && ea == eb {
            Ok(())
        } else {
            Err("tls: private key does not match public key".into())
        };
    }
    if public == *key {
        Ok(())
    } else {
        Err("tls: private key does not match public key".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs1::der::Encode as _;

    #[test]
    fn trim_drops_leading_zeros_only_and_bit_len_counts_from_the_top_bit() {
        assert_eq!(trim(&[0, 0, 1, 0]), [1, 0]);
        assert_eq!(trim(&[7]), [7]);
        assert!(trim(&[0, 0]).is_empty());
        assert!(trim(&[]).is_empty());
        for (n, bits) in [
            (&[][..], 0),
            (&[1][..], 1),
            (&[0x80][..], 8),
            (&[0x01, 0x00][..], 9),
            (&[0x7f, 0xff, 0xff][..], 23),
        ] {
            assert_eq!(bit_len(n), bits, "{n:?}");
        }
    }

    /// A PKCS#1 key whose modulus is `n` (the other fields are placeholders: only the
    /// modulus and exponent are read).
    fn pkcs1_with_modulus(n: &[u8]) -> Vec<u8> {
        let one = pkcs1::UintRef::new(&[1]).unwrap();
        pkcs1::RsaPrivateKey {
            modulus: pkcs1::UintRef::new(n).unwrap(),
            public_exponent: pkcs1::UintRef::new(&[1, 0, 1]).unwrap(),
            private_exponent: one,
            prime1: one,
            prime2: one,
            exponent1: one,
            exponent2: one,
            coefficient: one,
            other_prime_infos: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn go_refuses_rsa_keys_under_1024_bits_and_takes_1024() {
        let mut n = vec![0xff; 128];
        n[0] = 0x40; // 1023 bits
        assert_eq!(
            rsa_from_pkcs1(&pkcs1_with_modulus(&n)).unwrap_err(),
            "crypto/rsa: 1023-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)"
        );
        n[0] = 0x80; // 1024 bits
        assert_eq!(
            rsa_from_pkcs1(&pkcs1_with_modulus(&n)),
            Ok(PublicHalf::Rsa {
                n: n.clone(),
                e: vec![1, 0, 1],
                bits: 1024
            })
        );
        let mut big = vec![0xff; 256];
        big[0] = 0x80;
        assert!(matches!(
            rsa_from_pkcs1(&pkcs1_with_modulus(&big)),
            Ok(PublicHalf::Rsa { bits: 2048, .. })
        ));
    }

    /// A key of `alg` and a self-signed certificate for it, both PEM.
    fn key_and_cert(alg: &'static rcgen::SignatureAlgorithm) -> (String, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (key.serialize_pem(), cert.der().to_vec())
    }

    #[test]
    fn a_certificate_key_of_an_algorithm_go_does_not_pair_is_none() {
        let (_, mut der) = key_and_cert(&rcgen::PKCS_RSA_SHA256);
        // rsaEncryption (1.2.840.113549.1.1.1) in the SPKI becomes RSASSA-PSS (...1.1.10).
        let rsa_encryption = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        let at = der
            .windows(rsa_encryption.len())
            .position(|w| w == rsa_encryption)
            .unwrap();
        der[at + rsa_encryption.len() - 1] = 0x0a;
        assert!(x509_parser::parse_x509_certificate(&der).is_ok());
        assert_eq!(certificate_public_half(&der), None);
    }

    #[test]
    fn every_curve_go_knows_is_read_and_matched_with_its_certificate() {
        for (alg, curve) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "1.2.840.10045.3.1.7"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "1.3.132.0.34"),
            (&rcgen::PKCS_ECDSA_P521_SHA512, "1.3.132.0.35"),
        ] {
            let (key_pem, der) = key_and_cert(alg);
            let key = parse_first_block(key_pem.as_bytes()).unwrap();
            assert!(
                matches!(&key, PublicHalf::Ec { curve: c, .. } if c == curve),
                "{key:?}"
            );
            assert_eq!(certificate_public_half(&der), Some(key));
        }
        let (key_pem, der) = key_and_cert(&rcgen::PKCS_ED25519);
        let key = parse_first_block(key_pem.as_bytes()).unwrap();
        assert!(matches!(key, PublicHalf::Ed25519(_)), "{key:?}");
        assert_eq!(certificate_public_half(&der), Some(key));
    }

    #[test]
    fn an_rsa_certificate_gives_the_same_public_half_as_its_key_and_another_key_does_not_match() {
        let (key_pem, der) = key_and_cert(&rcgen::PKCS_RSA_SHA256);
        let key = parse_first_block(key_pem.as_bytes()).unwrap();
        assert!(matches!(key, PublicHalf::Rsa { bits: 2048, .. }), "{key:?}");
        assert_eq!(certificate_public_half(&der), Some(key.clone()));
        let cert_pem = crate::pki::to_pem(&rustls_pki_types::CertificateDer::from(der));
        assert_eq!(x509_key_pair(cert_pem.as_bytes(), &key), Ok(()));
        // The same modulus with another exponent is another key.
        let PublicHalf::Rsa { n, bits, .. } = key.clone() else {
            unreachable!()
        };
        let other_exponent = PublicHalf::Rsa {
            n,
            e: vec![3],
            bits,
        };
        assert_eq!(
            x509_key_pair(cert_pem.as_bytes(), &other_exponent),
            Err("tls: private key does not match public key".into())
        );
        let (other_pem, _) = key_and_cert(&rcgen::PKCS_RSA_SHA256);
        let other = parse_first_block(other_pem.as_bytes()).unwrap();
        assert_eq!(
            x509_key_pair(cert_pem.as_bytes(), &other),
            Err("tls: private key does not match public key".into())
        );
    }
}
