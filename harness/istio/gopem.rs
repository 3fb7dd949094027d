//! PEM as Go's `encoding/pem` reads it, and the few ways istiod uses it.
//!
//! istiod reads every `cacerts` file through Go: `pem.Decode` decides what a block
//! is (where it starts and ends, which framing mistakes skip it), `ca-cert.pem` and
//! `ca-key.pem` are read from their FIRST block only, and `root-cert.pem` /
//! `cert-chain.pem` go through `x509.CertPool.AppendCertsFromPEM`, which silently
//! skips blocks that are not headerless `CERTIFICATE` blocks or do not parse. A
//! lenient reader would recover certificates istiod never sees, so the model reads
//! with these rules (Go 1.26 `encoding/pem`, the Go of Istio 1.31), and the oracle
//! tier (`scenarios/oracle.rs`) holds them to Go's own behaviour.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// One PEM block as `pem.Decode` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The label between `BEGIN ` and `-----`.
    pub label: String,
    /// Whether any `Key: value` header line preceded the base64 body.
    pub has_headers: bool,
    /// The decoded body.
    pub bytes: Vec<u8>,
}

const BEGIN: &[u8] = b"\n-----BEGIN ";
const END: &[u8] = b"\n-----END ";
const DASHES: &[u8] = b"-----";

/// Go's standard base64: padding required, non-zero trailing bits accepted.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// `getLine`: up to the first `\n` (a `\r` before it dropped), trailing spaces and tabs
/// trimmed; returns (line, rest, bytes consumed).
fn get_line(data: &[u8]) -> (&[u8], &[u8], usize) {
    let (mut i, j) = match data.iter().position(|&b| b == b'\n') {
        None => (data.len(), data.len()),
        Some(i) => (i, i + 1),
    };
    if j > i && i > 0 && data[i - 1] == b'\r' {
        i -= 1;
    }
    let mut line = &data[..i];
    while let [head @ .., b' ' | b'\t'] = line {
        line = head;
    }
    (line, &data[j..], j)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Go's `base64.StdEncoding.Decode` of a PEM body: `\r` and `\n` are ignored, spaces
/// and tabs were removed before (`removeSpacesAndTabs`).
fn decode_body(body: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    GO_STD_BASE64.decode(clean).ok()
}

/// `pem.Decode`: the next block of `data` and what follows it, or `None` when no
/// further block is found (Go then returns all of `data` as the rest).
pub fn decode(data: &[u8]) -> Option<(Block, &[u8])> {
    // Signed offsets into `rest`, moved along with it exactly as Go moves them: a header
    // run that reads past the END line leaves `end_trailer` negative, and Go then gives up.
    let mut rest = data;
    let mut end_trailer: isize = 0;
    loop {
        // Negative (a header run read past the END line): Go gives up on the data.
        rest = usize::try_from(end_trailer)
            .ok()
            .and_then(|i| rest.get(i..))?;
        // The first END line, then the last BEGIN line before it.
        let mut end_index = find(rest, END)? as isize;
        end_trailer = end_index + END.len() as isize;
        let Some(begin) = rfind(&rest[..end_index as usize], &BEGIN[1..]) else {
            continue;
        };
        if begin > 0 && rest[begin - 1] != b'\n' {
            continue;
        }
        let skip = begin + BEGIN.len() - 1;
        rest = &rest[skip..];
        end_index -= skip as isize;
        end_trailer -= skip as isize;

        let (type_line, after, consumed) = get_line(rest);
        rest = after;
        end_index -= consumed as isize;
        end_trailer -= consumed as isize;
        let Some(label) = type_line.strip_suffix(DASHES) else {
            continue;
        };
        let mut has_headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, next, consumed) = get_line(rest);
            if !line.contains(&b':') {
                break;
            }
            has_headers = true;
            rest = next;
            end_index -= consumed as isize;
            end_trailer -= consumed as isize;
        }
        if has_headers && end_index < 0 {
            continue;
        }
        // Go slices here unguarded: after the check above the index cannot be negative.
        // Stay total anyway.
        let Some(end_line_and_after) = usize::try_from(end_trailer)
            .ok()
            .and_then(|i| rest.get(i..))
        else {
            continue;
        };
        let trailer_len = label.len() + DASHES.len();
        if end_line_and_after.len() < trailer_len {
            continue;
        }
        let (end_line, rest_of_end_line) = end_line_and_after.split_at(trailer_len);
        if !end_line.starts_with(label) || !end_line.ends_with(DASHES) {
            continue;
        }
        // The END line ends there, and what follows it is the rest (Go re-reads the line from
        // inside it; the remainder is the same).
        let (end_line_tail, rest_after, _) = get_line(rest_of_end_line);
        if !end_line_tail.is_empty() {
            continue;
        }
        // No body (END right after the type line or the headers' blank line) decodes empty.
        let body = usize::try_from(end_index)
            .ok()
            .and_then(|i| rest.get(..i))
            .unwrap_or_default();
        let Some(bytes) = decode_body(body) else {
            continue;
        };
        return Some((
            Block {
                label: String::from_utf8_lossy(label).into_owned(),
                has_headers,
                bytes,
            },
            rest_after,
        ));
    }
}

/// Every block `pem.Decode` finds, in order, as a loop over it does.
pub fn blocks(mut data: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    while let Some((block, rest)) = decode(data) {
        out.push(block);
        data = rest;
    }
    out
}

/// The first block, as istiod reads `ca-cert.pem` and `ca-key.pem`.
pub fn first_block(data: &[u8]) -> Option<Block> {
    decode(data).map(|(block, _)| block)
}

/// Go's `x509.ParseCertificate` acceptance, approximated by x509-parser: the DER parses
/// as one certificate with nothing after it.
pub fn parses_as_certificate(der: &[u8]) -> bool {
    matches!(x509_parser::parse_x509_certificate(der), Ok((rest, _)) if rest.is_empty())
}

/// `x509.CertPool.AppendCertsFromPEM`: the DER of every headerless `CERTIFICATE` block
/// that parses, in order; every other block is skipped without a word.
pub fn append_certs_from_pem(data: &[u8]) -> Vec<Vec<u8>> {
    blocks(data)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE" && !b.has_headers && parses_as_certificate(&b.bytes))
        .map(|b| b.bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(label: &str, body: &str) -> String {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }

    #[test]
    fn reads_consecutive_blocks_and_the_text_around_them() {
        let data = format!("hello\n{}between\n{}", pem("A", "AAEC"), pem("B", "AwQF"));
        let got = blocks(data.as_bytes());
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].label.as_str(), got[0].bytes.as_slice()),
            ("A", &[0, 1, 2][..])
        );
        assert_eq!(
            (got[1].label.as_str(), got[1].bytes.as_slice()),
            ("B", &[3, 4, 5][..])
        );
    }

    #[test]
    fn a_begin_line_glued_to_the_previous_end_line_is_not_a_block() {
        // `-----END A----------BEGIN B-----`: B's BEGIN does not start a line.
        let glued =
            "-----BEGIN A-----\nAAEC\n-----END A----------BEGIN B-----\nAwQF\n-----END B-----\n";
        let got = blocks(glued.as_bytes());
        assert!(got.iter().all(|b| b.label != "B"), "{got:?}");
    }

    #[test]
    fn crlf_and_missing_final_newline_still_frame_a_block() {
        let crlf = "-----BEGIN A-----\r\nAAEC\r\n-----END A-----";
        assert_eq!(blocks(crlf.as_bytes()).len(), 1);
    }

    #[test]
    fn a_mismatched_end_label_or_bad_base64_is_skipped() {
        assert!(blocks(b"-----BEGIN A-----\nAAEC\n-----END B-----\n").is_empty());
        assert!(blocks(b"-----BEGIN A-----\nA*EC\n-----END A-----\n").is_empty());
        assert!(blocks(b"-----BEGIN A-----\nAAE\n-----END A-----\n").is_empty());
    }

    #[test]
    fn headers_are_noticed_and_make_append_skip_the_block() {
        let with_header = "-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\n\nAAEC\n-----END A-----\n";
        let got = blocks(with_header.as_bytes());
        assert_eq!(got.len(), 1);
        assert!(got[0].has_headers);
        assert_eq!(got[0].bytes, [0, 1, 2]);
        assert!(!blocks(pem("A", "AAEC").as_bytes())[0].has_headers);
    }

    /// Framing corner cases, each with what Go 1.26.8's `pem.Decode` returned for it when
    /// run in a loop (a Go program over these exact inputs): the blocks (label, whether it
    /// had headers, body) and the rest after the last one.
    #[test]
    fn framing_corner_cases_decode_as_go_1_26_decodes_them() {
        type Want = (&'static [(&'static str, bool, &'static [u8])], &'static str);
        let cases: [(&str, Want); 10] = [
            // A stray END line before a block does not hide it.
            (
                "-----END A-----\n-----BEGIN B-----\nQUFB\n-----END B-----\n",
                (&[("B", false, b"AAA")], ""),
            ),
            // A `\r` after the END line without a newline is not whitespace to getLine.
            (
                "-----BEGIN A-----\nQUFB\n-----END A-----\r",
                (&[], "-----BEGIN A-----\nQUFB\n-----END A-----\r"),
            ),
            (
                "-----BEGIN A-----\nQUFB\n-----END A-----\r\n",
                (&[("A", false, b"AAA")], ""),
            ),
            // A header run that reads the END line as a header: Go gives up on the data.
            (
                "-----BEGIN A-----\nK: v\n-----END A-----:\n",
                (&[], "-----BEGIN A-----\nK: v\n-----END A-----:\n"),
            ),
            (
                "-----BEGIN A-----\nK: v\n-----END A-----: x\n-----BEGIN B-----\nQUFB\n-----END B-----\n",
                (
                    &[],
                    "-----BEGIN A-----\nK: v\n-----END A-----: x\n-----BEGIN B-----\nQUFB\n-----END B-----\n",
                ),
            ),
            (
                "-----BEGIN A-----\nK: v\nQUFB\n-----END A-----\n",
                (&[("A", true, b"AAA")], ""),
            ),
            // Headers need a line between them and END...
            (
                "-----BEGIN A-----\nK: v\n-----END A-----\n",
                (&[], "-----BEGIN A-----\nK: v\n-----END A-----\n"),
            ),
            // ...and an empty one will do: an empty body.
            (
                "-----BEGIN A-----\nK: v\n\n-----END A-----\n",
                (&[("A", true, b"")], ""),
            ),
            (
                "-----BEGIN A-----\n-----END A-----\nrest",
                (&[("A", false, b"")], "rest"),
            ),
            (
                "-----BEGIN A-----\nQUFB\n-----END A-----\nTRAILER\n",
                (&[("A", false, b"AAA")], "TRAILER\n"),
            ),
        ];
        for (input, (want_blocks, want_rest)) in cases {
            let mut data = input.as_bytes();
            let mut got = Vec::new();
            while let Some((block, rest)) = decode(data) {
                got.push((block.label, block.has_headers, block.bytes));
                data = rest;
            }
            let want: Vec<(String, bool, Vec<u8>)> = want_blocks
                .iter()
                .map(|(l, h, b)| ((*l).to_owned(), *h, b.to_vec()))
                .collect();
            assert_eq!(got, want, "{input:?}");
            assert_eq!(data, want_rest.as_bytes(), "{input:?}");
        }
    }

    #[test]
    fn append_certs_takes_only_headerless_certificate_blocks_that_parse() {
        use base64::engine::general_purpose::STANDARD;
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::new(vec!["a.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let body = STANDARD.encode(&der);
        let block = |label: &str, headers: &str, body: &str| {
            format!("-----BEGIN {label}-----\n{headers}{body}\n-----END {label}-----\n")
        };
        assert_eq!(
            append_certs_from_pem(block("CERTIFICATE", "", &body).as_bytes()),
            vec![der]
        );
        for skipped in [
            block("TRUSTED CERTIFICATE", "", &body),
            block("CERTIFICATE", "K: v\n", &body),
            block("CERTIFICATE", "", &STANDARD.encode(b"not a certificate")),
        ] {
            assert!(
                append_certs_from_pem(skipped.as_bytes()).is_empty(),
                "{skipped}"
            );
        }
    }

    #[test]
    fn get_line_trims_trailing_blanks_and_a_carriage_return() {
        assert_eq!(get_line(b"ab \t\r\ncd"), (&b"ab"[..], &b"cd"[..], 6));
        assert_eq!(get_line(b"ab"), (&b"ab"[..], &b""[..], 2));
    }
}
