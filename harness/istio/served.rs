//! The chain istiod returns for a CSR and the chain a sidecar then serves.
//!
//! security/pkg/server/ca/server.go `CreateCertificate` (1.30, 1.31): the leaf, then
//! istiod's certificate chain bytes split block by block (security/pkg/pki/util
//! crypto.go `PemCertBytestoString`, each piece with a newline appended), then the raw
//! root bundle as ONE last element (several roots stay concatenated). The agent
//! (security/pkg/nodeagent/cache secretcache.go) hands Envoy every element
//! concatenated, a newline added between elements that lack one, and keeps the last
//! element as its trust bundle. With the Makefile's layout that is leaf, intermediate,
//! root, root (istio/istio#39001).

use rustls_pki_types::CertificateDer;

use super::gopem;

fn trim_one_newline(mut s: &[u8]) -> &[u8] {
    if let Some(rest) = s.strip_suffix(b"\n") {
        s = rest;
    }
    s.strip_prefix(b"\n").unwrap_or(s)
}

/// `PemCertBytestoString`: `pem` cut after each block Go's `pem.Decode` finds (text
/// before a block stays with it; the last piece keeps everything after it), one
/// leading and one trailing newline trimmed from each piece. Stops at the first block
/// with an empty body, or when no block is left.
pub fn split_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut rest = pem;
    while let Some((block, after)) = gopem::decode(rest) {
        if block.bytes.is_empty() {
            break;
        }
        if after.is_empty() {
            pieces.push(trim_one_newline(rest).to_vec());
            break;
        }
        pieces.push(trim_one_newline(&rest[..rest.len() - after.len()]).to_vec());
        rest = after;
    }
    pieces
}

/// The `cert_chain` elements of istiod's CreateCertificate response, for a signed leaf
/// (PEM), istiod's chain bytes and its root bundle bytes.
pub fn response_elements(leaf_pem: &[u8], chain_pem: &[u8], root_pem: &[u8]) -> Vec<Vec<u8>> {
    let mut elements = Vec::new();
    let mut parts = vec![leaf_pem];
    if !chain_pem.is_empty() {
        parts.push(chain_pem);
    }
    for part in parts {
        for mut piece in split_blocks(part) {
            piece.push(b'\n');
            elements.push(piece);
        }
    }
    if !root_pem.is_empty() {
        elements.push(root_pem.to_vec());
    }
    elements
}

/// What the agent hands Envoy: every element concatenated, with a newline between two
/// elements when the first lacks one.
pub fn agent_chain(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        out.extend_from_slice(e);
        if i + 1 < elements.len() && !e.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// The agent's trust bundle: the last element.
pub fn trust_bundle(elements: &[Vec<u8>]) -> Vec<u8> {
    elements.last().cloned().unwrap_or_default()
}

/// The certificates a sidecar presents for the agent's chain: every `CERTIFICATE`
/// block, in order, duplicates included. (Envoy reads the PEM with BoringSSL, which
/// also takes every CERTIFICATE block in order; framing oddities that Go and BoringSSL
/// read differently are not modelled.)
pub fn served_certificates(agent_chain: &[u8]) -> Vec<CertificateDer<'static>> {
    gopem::blocks(agent_chain)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.bytes))
        .collect()
}

/// The chain a sidecar serves after its own leaf, predicted from istiod's chain and
/// root bytes alone (what `check` reports as `served-chain` and `verify` expects in
/// `chain-length`).
pub fn served_after_leaf(chain_pem: &[u8], root_pem: &[u8]) -> Vec<CertificateDer<'static>> {
    let placeholder = b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    let elements = response_elements(placeholder, chain_pem, root_pem);
    let mut served = served_certificates(&agent_chain(&elements));
    if !served.is_empty() {
        served.remove(0);
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
    const B: &str = "-----BEGIN CERTIFICATE-----\nAwQF\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_chain_is_split_per_block_and_the_root_stays_one_element() {
        let chain = format!("{A}{B}");
        let roots = format!("{A}{B}");
        let e = response_elements(A.as_bytes(), chain.as_bytes(), roots.as_bytes());
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(e[1], A.as_bytes());
        assert_eq!(e[2], B.as_bytes());
        assert_eq!(e[3], roots.as_bytes());
        assert_eq!(trust_bundle(&e), roots.as_bytes());
    }

    #[test]
    fn text_before_a_block_travels_with_it_and_text_after_the_last_block_is_dropped() {
        let chain = format!("junk\n{A}tail");
        let pieces = split_blocks(chain.as_bytes());
        assert_eq!(pieces, vec![format!("junk\n{}", A.trim_end()).into_bytes()]);
        // The last block's piece keeps what follows it only when no block follows at all.
        let last = A.to_string();
        assert_eq!(
            split_blocks(last.as_bytes()),
            vec![A.trim_end().as_bytes().to_vec()]
        );
        let two = format!("{A}\n\n{B}");
        let pieces = split_blocks(two.as_bytes());
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1], format!("\n{}", B.trim_end()).into_bytes());
    }

    #[test]
    fn the_agent_adds_a_newline_only_where_an_element_lacks_one() {
        let e = vec![b"a".to_vec(), b"b\n".to_vec(), b"c".to_vec()];
        assert_eq!(agent_chain(&e), b"a\nb\nc");
    }
}
