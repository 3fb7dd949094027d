//! What a probe saw: the chain as presented, and how the connection went on from there.

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

/// The result of a probe that got as far as a server proving a certificate chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// The socket address connected to (`IP:PORT`).
    pub peer: String,
    /// The SNI sent, if any (none for an IP address unless `--sni` was given).
    pub sni: Option<String>,
    /// The certificates in the order the server sent them, leaf first, untrusted and unaltered.
    #[serde(with = "pem_chain")]
    pub chain: Vec<CertificateDer<'static>>,
    /// `TLSv1.2` or `TLSv1.3`.
    pub tls_version: String,
    /// The IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// The server sent a CertificateRequest.
    pub client_cert_requested: bool,
    pub client_auth: ClientAuthOutcome,
    /// The first bytes the server sent after the handshake, shown as (lossy) UTF-8.
    #[serde(with = "lossy_text")]
    pub response: Option<Vec<u8>>,
    /// How the connection failed after the chain was proven, when that was not a client
    /// certificate refusal (e.g. an unexpected alert or a reset).
    pub error_after_chain: Option<String>,
}

/// What became of client authentication, judged after one round trip: with TLS 1.3 a server
/// that refuses our certificate (or its absence) says so only after the client's handshake is
/// complete, in an alert that arrives on the first read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClientAuthOutcome {
    /// The server never asked for a client certificate.
    NotRequested,
    /// The server asked and then aborted with a certificate-related alert, as Istio STRICT does
    /// to a client without a mesh certificate.
    Refused { alert: String },
    /// We presented a certificate and the server answered or kept the connection open.
    Accepted,
    /// The server asked, we had no certificate to give, and it carried on regardless.
    Optional,
}

impl Capture {
    /// The chain as concatenated PEM, leaf first, as `openssl s_client -showcerts` lists it.
    pub fn to_pem(&self) -> String {
        pem_chain::encode(&self.chain)
    }
}

mod pem_chain {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    fn encode_one(cert: &CertificateDer<'_>) -> String {
        let block = pem::Pem::new("CERTIFICATE", cert.as_ref());
        // Unix line endings: the chain is compared and diffed as text by people and tools.
        pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    pub fn encode(chain: &[CertificateDer<'_>]) -> String {
        chain.iter().map(encode_one).collect()
    }

    pub fn serialize<S: Serializer>(
        chain: &[CertificateDer<'static>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(chain.iter().map(encode_one))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<CertificateDer<'static>>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .enumerate()
            .map(|(i, text)| {
                CertificateDer::from_pem_slice(text.as_bytes()).map_err(|e| {
                    D::Error::custom(format!("chain[{i}] is not a pem certificate: {e}"))
                })
            })
            .collect()
    }
}

mod lossy_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => serializer.serialize_some(&String::from_utf8_lossy(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map(String::into_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture() -> Capture {
        Capture {
            peer: "10.1.2.3:8080".into(),
            sni: None,
            chain: vec![
                CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
                CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x02]),
            ],
            tls_version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: Some("istio".into()),
            client_cert_requested: true,
            client_auth: ClientAuthOutcome::Refused {
                alert: "certificate required".into(),
            },
            response: None,
            error_after_chain: None,
        }
    }

    #[test]
    fn pem_lists_the_chain_leaf_first_with_unix_line_endings() {
        assert_eq!(
            capture().to_pem(),
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nMAMCAQI=\n-----END CERTIFICATE-----\n"
        );
    }

    #[test]
    fn json_carries_the_chain_as_pem_strings_and_the_refusal_as_a_tagged_outcome() {
        let json = serde_json::to_value(capture()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "peer": "10.1.2.3:8080",
                "sni": null,
                "chain": [
                    "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
                    "-----BEGIN CERTIFICATE-----\nMAMCAQI=\n-----END CERTIFICATE-----\n",
                ],
                "tls_version": "TLSv1.3",
                "cipher_suite": "TLS13_AES_256_GCM_SHA384",
                "alpn": "istio",
                "client_cert_requested": true,
                "client_auth": { "outcome": "refused", "alert": "certificate required" },
                "response": null,
                "error_after_chain": null,
            })
        );
    }

    #[test]
    fn json_reads_back_into_the_same_capture() {
        let mut original = capture();
        original.response = Some(b"HTTP/1.1 200 OK\r\n".to_vec());
        let json = serde_json::to_string(&original).unwrap();
        assert_eq!(serde_json::from_str::<Capture>(&json).unwrap(), original);
    }
}
