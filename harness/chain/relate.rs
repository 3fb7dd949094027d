//! A captured chain related to the plugged bundle(s): which plugged file each
//! served certificate is, byte for byte, what role it plays, and who issued it.

use rustls_pki_types::CertificateDer;

use super::{CertInfo, ChainError, path};
use crate::pki::{Bundle, Layout};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Position 1: the workload certificate (whatever it claims to be).
    Leaf,
    Intermediate,
    /// A self-issued CA certificate.
    Root,
}

/// Which plugged file a certificate is: `root-cert.pem`, `cluster1/ca-cert.pem`,
/// `cluster1/cert-chain.pem#2` (the second certificate of that file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluggedName {
    pub name: String,
    /// The cacerts directory's name (`cluster1`).
    pub bundle: String,
    /// The file inside it (`ca-cert.pem`).
    pub file: &'static str,
    /// 0-based position of the certificate inside the file.
    pub index: usize,
    /// From the bundle the chain is verified against, not one of the others.
    pub expected_bundle: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PluggedCert {
    pub id: PluggedName,
    pub info: CertInfo,
}

/// The expected bundle, parsed, and every named certificate of all bundles given.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plugged {
    pub bundle: String,
    pub layout: Layout,
    pub ca_cert: CertInfo,
    /// `cert-chain.pem` in file order (TLS layout: `tls.crt` then `ca.crt`).
    pub cert_chain: Vec<CertInfo>,
    /// `root-cert.pem`'s certificates.
    pub roots: Vec<CertInfo>,
    /// Every distinct certificate of every bundle, expected bundle first.
    pub files: Vec<PluggedCert>,
    /// How many certificates a sidecar serves after its leaf for the expected bundle, as
    /// istiod assembles them ([`crate::istio::served::served_after_leaf`]).
    pub served_after_leaf: usize,
}

/// How a served certificate's issuer was found: the issuer's name chains, its
/// key identifiers agree when both are present, and its key verifies the signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IssuerLink {
    SelfSigned,
    /// Another certificate of the served chain (1-based position).
    Served {
        position: usize,
        name: String,
    },
    /// Not served, but a plugged certificate issued it.
    Plugged {
        name: String,
    },
    Unknown,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RelatedCert {
    /// 1-based, in served order.
    pub position: usize,
    pub role: Role,
    /// The plugged name when plugged, else `leaf` or `#<position>`.
    pub name: String,
    pub plugged: Option<PluggedName>,
    pub issuer: IssuerLink,
    /// An earlier position holding the same bytes (Istio serves the root twice
    /// with the Makefile layout, istio/istio#39001).
    pub duplicate_of: Option<usize>,
    pub info: CertInfo,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Related {
    pub certs: Vec<RelatedCert>,
    pub plugged: Plugged,
}

impl Related {
    pub fn leaf(&self) -> &RelatedCert {
        &self.certs[0]
    }

    /// The last certificate served: the root, when the chain is complete.
    pub fn last(&self) -> &RelatedCert {
        &self.certs[self.certs.len() - 1]
    }

    /// `(position, first position)` of every certificate served more than once.
    pub fn duplicates(&self) -> Vec<(usize, usize)> {
        self.certs
            .iter()
            .filter_map(|c| c.duplicate_of.map(|first| (c.position, first)))
            .collect()
    }

    /// The number of certificates istiod serves for the expected bundle: the leaf,
    /// every certificate of `cert-chain.pem`, then `root-cert.pem` (ISTIO-FACTS §3).
    pub fn expected_length(&self) -> usize {
        1 + self.plugged.served_after_leaf
    }

    /// The plugged name of a DER certificate, if any bundle holds it.
    pub fn plugged_name(&self, der: &[u8]) -> Option<&PluggedName> {
        self.plugged
            .files
            .iter()
            .find(|p| p.info.is(der))
            .map(|p| &p.id)
    }
}

/// Relates `chain` (served order) to `bundle`, the one it should come from;
/// `others` (the mesh's other clusters) only lend their names to certificates.
pub fn relate(
    chain: &[CertificateDer<'_>],
    bundle: &Bundle,
    others: &[Bundle],
) -> Result<Related, ChainError> {
    if chain.is_empty() {
        return Err(ChainError::EmptyChain);
    }
    let plugged = plugged(bundle, others)?;
    let infos = chain
        .iter()
        .map(|der| CertInfo::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<(String, Option<PluggedName>)> = infos
        .iter()
        .enumerate()
        .map(
            |(i, info)| match plugged.files.iter().find(|p| p.info.is(&info.der)) {
                Some(p) => (p.id.name.clone(), Some(p.id.clone())),
                None if i == 0 => ("leaf".to_owned(), None),
                None => (format!("#{}", i + 1), None),
            },
        )
        .collect();

    let certs = infos
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let role = if i == 0 {
                Role::Leaf
            } else if info.self_issued && info.is_ca() {
                Role::Root
            } else {
                Role::Intermediate
            };
            let first = infos[..i]
                .iter()
                .position(|earlier| earlier.der == info.der);
            RelatedCert {
                position: i + 1,
                role,
                // A repeated certificate keeps the name of its first position.
                name: names[first.unwrap_or(i)].0.clone(),
                plugged: names[i].1.clone(),
                issuer: issuer_link(i, &infos, &names, &plugged),
                duplicate_of: first.map(|p| p + 1),
                info: info.clone(),
            }
        })
        .collect();
    Ok(Related { certs, plugged })
}

fn issuer_link(
    i: usize,
    infos: &[CertInfo],
    names: &[(String, Option<PluggedName>)],
    plugged: &Plugged,
) -> IssuerLink {
    let child = &infos[i];
    if child.self_signed {
        return IssuerLink::SelfSigned;
    }
    let Ok((_, child_x509)) = x509_parser::parse_x509_certificate(&child.der) else {
        return IssuerLink::Unknown;
    };
    let issues = |candidate: &CertInfo| {
        x509_parser::parse_x509_certificate(&candidate.der)
            .is_ok_and(|(_, c)| path::issues(&c, &child_x509))
    };
    // The next certificate first: that is where a well-ordered chain has it.
    let served = (i + 1..infos.len()).chain(0..i);
    for j in served {
        if issues(&infos[j]) {
            return IssuerLink::Served {
                position: j + 1,
                name: names[j].0.clone(),
            };
        }
    }
    match plugged.files.iter().find(|p| issues(&p.info)) {
        Some(p) => IssuerLink::Plugged {
            name: p.id.name.clone(),
        },
        None => IssuerLink::Unknown,
    }
}

/// Names every certificate of the bundles: the expected bundle's root takes the
/// plain file name (`root-cert.pem`, shared by a mesh's clusters); a different
/// root in another bundle is prefixed with that bundle's name.
fn plugged(bundle: &Bundle, others: &[Bundle]) -> Result<Plugged, ChainError> {
    let mut files: Vec<PluggedCert> = Vec::new();
    let mut expected = None;
    let mut served = 0;
    for (k, b) in std::iter::once(bundle).chain(others).enumerate() {
        let signing = b.signing()?;
        let (ca_file, root_file, chain_file) = match b.layout {
            Layout::Istiod => ("ca-cert.pem", "root-cert.pem", "cert-chain.pem"),
            Layout::KubernetesTls => ("tls.crt", "ca.crt", "tls.crt"),
        };
        let (ca_file, root_file) = (
            b.ca_cert.as_ref().map_or(ca_file, |f| f.name),
            b.root_cert.as_ref().map_or(root_file, |f| f.name),
        );
        let is_expected = k == 0;
        let mut add = |der: &CertificateDer<'_>, file: &'static str, index: usize, shared: bool| {
            if files.iter().any(|p| p.info.is(der)) {
                return Ok::<_, ChainError>(());
            }
            let suffix = if index > 0 {
                format!("#{}", index + 1)
            } else {
                String::new()
            };
            let name = if shared {
                format!("{file}{suffix}")
            } else {
                format!("{}/{file}{suffix}", b.name)
            };
            files.push(PluggedCert {
                id: PluggedName {
                    name,
                    bundle: b.name.clone(),
                    file,
                    index,
                    expected_bundle: is_expected,
                },
                info: CertInfo::from_der(der)?,
            });
            Ok(())
        };
        add(&signing.ca_cert, ca_file, 0, false)?;
        for (index, root) in signing.roots.iter().enumerate() {
            // Only the expected bundle's roots are the mesh's `root-cert.pem`.
            add(root, root_file, index, is_expected)?;
        }
        for (index, c) in signing.cert_chain.iter().enumerate() {
            add(c, chain_file, index, false)?;
        }
        if is_expected {
            let (chain_pem, root_pem) = crate::istio::load::held_bytes(b);
            served = crate::istio::served::served_after_leaf(&chain_pem, &root_pem).len();
            expected = Some(signing);
        }
    }
    let signing = expected.expect("the expected bundle is read first");
    let info = |d: &CertificateDer<'_>| CertInfo::from_der(d);
    Ok(Plugged {
        bundle: bundle.name.clone(),
        layout: bundle.layout,
        ca_cert: info(&signing.ca_cert)?,
        cert_chain: signing
            .cert_chain
            .iter()
            .map(info)
            .collect::<Result<_, _>>()?,
        roots: signing.roots.iter().map(info).collect::<Result<_, _>>()?,
        files,
        served_after_leaf: served,
    })
}
