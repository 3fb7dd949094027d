//! The mesh's trust graph: the root / intermediate / leaf relationships a run observed,
//! across clusters. Built from what a scenario recorded (the bundles it plugged, the
//! trust bundle each cluster's workloads got, the chains it captured, the requests it
//! made and the verdicts), never from what it expected.
//!
//! Nodes are certificates (plugged roots and intermediates, istiod's self-signed root,
//! any other certificate a workload served), captured workload leaves, workloads seen
//! only in requests, and each cluster's trust bundle. Edges:
//! - `issued-by`: a certificate to every certificate whose key verifies its signature
//!   (by signature, never by name);
//! - `served-with`: a captured leaf to each certificate its chain carries after it, in
//!   order, duplicates included (`#2`, `#3`, ...);
//! - `trusted-by`: a root to each cluster trust bundle that holds it;
//! - `connected` / `refused`: a request between workloads, with its outcome.
//!
//! Redacted like the chain snapshots: names are file and workload names, never serials,
//! fingerprints or dates; the order is the order of observation, so the graph of a
//! scenario is the same on every target.

use std::fmt::Write as _;

use serde::Serialize;
use x509_parser::certificate::X509Certificate;

use super::{
    BundleArtifact, ChainArtifact, Observation, Observed, ScenarioReport, TrustBundleArtifact,
};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// A self-signed CA certificate plugged as `root-cert.pem` (or `ca.crt`).
    Root,
    /// A plugged signing certificate (`ca-cert.pem`, `tls.crt`), or another plugged CA.
    Intermediate,
    /// istiod's own self-signed root (`O=<trust domain>`, keyCertSign only), plugged nowhere.
    IstiodRoot,
    /// A self-signed CA certificate served or trusted but plugged nowhere.
    UnpluggedRoot,
    /// Any other certificate served or trusted but plugged nowhere.
    UnpluggedCa,
    /// A captured workload leaf, named by its workload (`cluster1/foo/httpbin`).
    Leaf,
    /// A workload seen only in requests (its chain was not captured).
    Workload,
    /// A cluster's trust bundle (ConfigMap `istio-ca-root-cert`).
    TrustBundle,
}

/// A node; `name` is its identity in the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    /// Not what a plug-in CA mesh should show: istiod's self-signed root, an unplugged CA.
    pub unexpected: bool,
    /// For a leaf: the checks its chain failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    #[serde(skip)]
    der: Option<Vec<u8>>,
}

/// What an edge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    IssuedBy,
    ServedWith,
    TrustedBy,
    Connected,
    Refused,
}

/// An edge between two nodes, by name; `label`: the position served (`#2`) or the
/// request's outcome (`mTLS 200`, `mTLS refused`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A refusal's reason as the target reported it (its words differ between targets,
    /// so the snapshot leaves it out; the pictures show it).
    #[serde(skip)]
    pub reason: Option<String>,
}

/// The graph of one scenario (or of one `verify`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrustGraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// What a graph is built from: the parts of a scenario report.
pub struct GraphInput<'a> {
    pub bundles: &'a [BundleArtifact],
    pub trust_bundles: &'a [TrustBundleArtifact],
    pub chains: &'a [ChainArtifact],
    pub observations: &'a [Observation],
}

fn certs_of(pem_text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(pem_text)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect()
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c)
}

fn self_signed(c: &X509Certificate<'_>) -> bool {
    c.subject().as_raw() == c.issuer().as_raw() && crate::x509::signature::signed_by(c, c)
}

/// istiod's self-signed root by shape (ISTIO-FACTS §4): subject `O=<trust domain>` only,
/// keyUsage keyCertSign only, a self-signed CA.
fn istiod_shaped(c: &X509Certificate<'_>) -> bool {
    let mut attrs = c.subject().iter_attributes();
    let org_only = matches!(
        (attrs.next(), attrs.next()),
        (Some(a), None) if a.attr_type() == &x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME
    );
    let cert_sign_only = c.key_usage().ok().flatten().is_some_and(|ku| {
        ku.value.key_cert_sign() && ku.value.flags == 1 << 5 // keyCertSign is bit 5
    });
    org_only && cert_sign_only && self_signed(c)
}

impl TrustGraph {
    /// The graph of what `scenario` observed.
    pub fn of_scenario(scenario: &ScenarioReport) -> TrustGraph {
        TrustGraph::build(&GraphInput {
            bundles: &scenario.bundles,
            trust_bundles: &scenario.trust_bundles,
            chains: &scenario.chains,
            observations: &scenario.observations,
        })
    }

    pub fn build(input: &GraphInput<'_>) -> TrustGraph {
        let mut g = TrustGraph::default();
        // Plugged certificates first, bundle by bundle: roots, then signing certificates.
        let mut root_holders: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
        let mut signers: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
        for b in input.bundles {
            for f in &b.files {
                let certs = certs_of(&f.pem);
                match f.name.as_str() {
                    "root-cert.pem" | "ca.crt" => {
                        for der in certs {
                            push_holder(&mut root_holders, der, &b.label);
                        }
                    }
                    "ca-cert.pem" | "tls.crt" => {
                        if let Some(der) = certs.into_iter().next() {
                            push_holder(&mut signers, der, &b.label);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (der, holders) in &root_holders {
            let kind = match parse(der) {
                Some(c) if self_signed(&c) => NodeKind::Root,
                // A plugged "root" that is not self-signed: an intermediate in the wrong file.
                _ => NodeKind::Intermediate,
            };
            g.add_cert(format!("root ({})", holders.join(", ")), kind, false, der);
        }
        for (der, holders) in &signers {
            g.add_cert(
                format!("intermediate {}", holders.join(", ")),
                NodeKind::Intermediate,
                false,
                der,
            );
        }
        // Every other CA in the bundles' chains (a middle CA of a 3-tier PKI).
        for b in input.bundles {
            for f in b
                .files
                .iter()
                .filter(|f| f.name == "cert-chain.pem" || f.name == "tls.crt")
            {
                for der in certs_of(&f.pem) {
                    g.add_unnamed(&der, Some(&b.label));
                }
            }
        }
        // Trust bundles: nodes, and their roots.
        for t in input.trust_bundles {
            let bundle = format!("trust bundle {}", t.cluster);
            g.add_node(Node {
                name: bundle.clone(),
                kind: NodeKind::TrustBundle,
                unexpected: false,
                failing: Vec::new(),
                der: None,
            });
            for der in certs_of(&t.pem) {
                let name = g.add_unnamed(&der, Some(&t.cluster));
                g.add_edge(&name, &bundle, EdgeKind::TrustedBy, None);
            }
        }
        // Captured chains: the leaf is the workload; the rest is what it served.
        for chain in input.chains {
            let certs = certs_of(&chain.pem);
            let Some((leaf, rest)) = certs.split_first() else {
                continue;
            };
            let failing = verdict_failures(input.observations, &chain.label);
            g.add_node(Node {
                name: chain.label.clone(),
                kind: NodeKind::Leaf,
                unexpected: false,
                failing,
                der: Some(leaf.clone()),
            });
            let cluster = chain.label.split('/').next();
            for (i, der) in rest.iter().enumerate() {
                let name = g.add_unnamed(der, cluster);
                g.add_edge(
                    &chain.label,
                    &name,
                    EdgeKind::ServedWith,
                    Some(format!("#{}", i + 2)),
                );
            }
        }
        // issued-by, by signature.
        let parsed: Vec<(String, Vec<u8>)> = g
            .nodes
            .iter()
            .filter_map(|n| Some((n.name.clone(), n.der.clone()?)))
            .collect();
        for (child_name, child_der) in &parsed {
            let Some(child) = parse(child_der) else {
                continue;
            };
            if self_signed(&child) {
                continue;
            }
            for (issuer_name, issuer_der) in &parsed {
                if issuer_name == child_name {
                    continue;
                }
                if let Some(issuer) = parse(issuer_der)
                    && crate::x509::signature::signed_by(&child, &issuer)
                {
                    g.add_edge(child_name, issuer_name, EdgeKind::IssuedBy, None);
                }
            }
        }
        // Requests between workloads, each to the leaf its workload served last before it
        // (a restarted workload is a new leaf).
        let mut serving: Vec<(String, String)> = Vec::new();
        for o in input.observations {
            if let Observed::ChainCaptured { workload, .. } = &o.observed {
                serving.retain(|(w, _)| w != workload);
                serving.push((workload.clone(), o.subject.clone()));
                continue;
            }
            let Observed::Request {
                from,
                to,
                transport,
                status,
                refused,
                ..
            } = &o.observed
            else {
                continue;
            };
            let node_of = |w: &String| {
                serving
                    .iter()
                    .find(|(s, _)| s == w)
                    .map_or_else(|| w.clone(), |(_, leaf)| leaf.clone())
            };
            let (from, to) = (&node_of(from), &node_of(to));
            for w in [from, to] {
                if !g.nodes.iter().any(|n| &n.name == w) {
                    g.add_node(Node {
                        name: w.clone(),
                        kind: NodeKind::Workload,
                        unexpected: false,
                        failing: Vec::new(),
                        der: None,
                    });
                }
            }
            let (kind, label) = match status {
                Some(s) => (EdgeKind::Connected, format!("{transport} {s}")),
                None => (EdgeKind::Refused, format!("{transport} refused")),
            };
            g.add_edge(from, to, kind, Some(label));
            if let Some(e) = g.edges.last_mut() {
                e.reason = refused.clone();
            }
        }
        g
    }

    fn add_node(&mut self, node: Node) {
        if !self.nodes.iter().any(|n| n.name == node.name) {
            self.nodes.push(node);
        }
    }

    fn add_cert(&mut self, name: String, kind: NodeKind, unexpected: bool, der: &[u8]) {
        self.add_node(Node {
            name,
            kind,
            unexpected,
            failing: Vec::new(),
            der: Some(der.to_vec()),
        });
    }

    /// The node of `der`, added under a name of its shape if it is new; `seen_in`: the
    /// cluster or bundle where it was first seen.
    fn add_unnamed(&mut self, der: &[u8], seen_in: Option<&str>) -> String {
        if let Some(n) = self
            .nodes
            .iter()
            .find(|n| n.der.as_deref() == Some(der) && n.kind != NodeKind::Leaf)
        {
            return n.name.clone();
        }
        let at = seen_in.map(|s| format!(" ({s})")).unwrap_or_default();
        let (kind, base) = match parse(der) {
            Some(c) if istiod_shaped(&c) => (NodeKind::IstiodRoot, "istiod self-signed root"),
            Some(c) if c.is_ca() && self_signed(&c) => (NodeKind::UnpluggedRoot, "unplugged root"),
            Some(c) if c.is_ca() => (NodeKind::UnpluggedCa, "unplugged CA"),
            Some(_) => (NodeKind::UnpluggedCa, "unplugged certificate"),
            None => (NodeKind::UnpluggedCa, "unparseable certificate"),
        };
        let mut name = format!("{base}{at}");
        let mut n = 2;
        while self.nodes.iter().any(|x| x.name == name) {
            name = format!("{base} #{n}{at}");
            n += 1;
        }
        self.add_cert(name.clone(), kind, true, der);
        name
    }

    fn add_edge(&mut self, from: &str, to: &str, kind: EdgeKind, label: Option<String>) {
        let edge = Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            kind,
            label,
            reason: None,
        };
        if kind == EdgeKind::ServedWith || !self.edges.contains(&edge) {
            self.edges.push(edge);
        }
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("edges join nodes of the graph")
    }

    /// Refused mTLS requests (a plaintext request refused under STRICT is the policy
    /// working), and what points at an unexpected certificate.
    fn highlighted_edge(&self, e: &Edge) -> bool {
        (e.kind == EdgeKind::Refused && e.label.as_deref().is_some_and(|l| l.starts_with("mTLS")))
            || (matches!(e.kind, EdgeKind::ServedWith | EdgeKind::IssuedBy)
                && self.nodes[self.index(&e.to)].unexpected)
    }

    /// An edge's text in the pictures: its label, and a refusal's reason (shortened).
    fn edge_text(e: &Edge) -> String {
        let base = match (e.kind, &e.label) {
            (EdgeKind::IssuedBy, _) => "issued by".to_owned(),
            (EdgeKind::TrustedBy, _) => "trusted by".to_owned(),
            (_, Some(l)) => l.clone(),
            (_, None) => String::new(),
        };
        match &e.reason {
            Some(r) => {
                let short: String = r.chars().take(80).collect();
                let more = if r.chars().count() > 80 { "..." } else { "" };
                format!("{base}: {short}{more}")
            }
            None => base,
        }
    }

    fn node_label(n: &Node) -> String {
        if n.failing.is_empty() {
            n.name.clone()
        } else {
            format!("{}\nFAIL: {}", n.name, n.failing.join(", "))
        }
    }

    /// Mermaid `flowchart` source (GitHub renders it in Markdown): failing leaves,
    /// unexpected certificates and refused requests in red.
    pub fn to_mermaid(&self) -> String {
        // `#` first: Mermaid reads `#...;` as an entity, and the others introduce one.
        let esc = |s: &str| {
            s.replace('#', "#35;")
                .replace('"', "#quot;")
                .replace('\n', "<br/>")
                .replace('|', "#124;")
        };
        let mut out = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let label = esc(&Self::node_label(n));
            let _ = match n.kind {
                NodeKind::Root | NodeKind::IstiodRoot | NodeKind::UnpluggedRoot => {
                    writeln!(out, "  n{i}{{{{\"{label}\"}}}}")
                }
                NodeKind::Intermediate | NodeKind::UnpluggedCa => {
                    writeln!(out, "  n{i}[\"{label}\"]")
                }
                NodeKind::Leaf | NodeKind::Workload => writeln!(out, "  n{i}([\"{label}\"])"),
                NodeKind::TrustBundle => writeln!(out, "  n{i}[/\"{label}\"/]"),
            };
        }
        let mut red_links = Vec::new();
        for (k, e) in self.edges.iter().enumerate() {
            let (a, b) = (self.index(&e.from), self.index(&e.to));
            let text = Self::edge_text(e);
            let arrow = match e.kind {
                EdgeKind::IssuedBy | EdgeKind::TrustedBy => "-->",
                EdgeKind::ServedWith => "-.->",
                EdgeKind::Connected => "==>",
                EdgeKind::Refused => "--x",
            };
            let _ = writeln!(out, "  n{a} {arrow}|\"{}\"| n{b}", esc(&text));
            if self.highlighted_edge(e) {
                red_links.push(k.to_string());
            }
        }
        out.push_str("  classDef bad fill:#fdd,stroke:#c00,stroke-width:2px,color:#600\n");
        let bad: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.unexpected || !n.failing.is_empty())
            .map(|(i, _)| format!("n{i}"))
            .collect();
        if !bad.is_empty() {
            let _ = writeln!(out, "  class {} bad", bad.join(","));
        }
        if !red_links.is_empty() {
            let _ = writeln!(
                out,
                "  linkStyle {} stroke:#c00,stroke-width:2px",
                red_links.join(",")
            );
        }
        out
    }

    /// Graphviz DOT source (`dot -Tsvg`): the same highlighting as [`Self::to_mermaid`].
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut out = String::from(
            "digraph trust {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let shape = match n.kind {
                NodeKind::Root | NodeKind::IstiodRoot | NodeKind::UnpluggedRoot => "hexagon",
                NodeKind::Intermediate | NodeKind::UnpluggedCa => "box",
                NodeKind::Leaf | NodeKind::Workload => "ellipse",
                NodeKind::TrustBundle => "folder",
            };
            let bad = if n.unexpected || !n.failing.is_empty() {
                ", color=\"#cc0000\", style=filled, fillcolor=\"#ffdddd\", penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\", shape={shape}{bad}];",
                esc(&Self::node_label(n))
            );
        }
        for e in &self.edges {
            let (a, b) = (self.index(&e.from), self.index(&e.to));
            let text = Self::edge_text(e);
            let style = match e.kind {
                EdgeKind::IssuedBy | EdgeKind::TrustedBy => "solid",
                EdgeKind::ServedWith => "dashed",
                EdgeKind::Connected => "bold",
                EdgeKind::Refused => "dotted",
            };
            let red = if self.highlighted_edge(e) {
                ", color=\"#cc0000\", fontcolor=\"#cc0000\", penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  n{a} -> n{b} [label=\"{}\", style={style}{red}];",
                esc(&text)
            );
        }
        out.push_str("}\n");
        out
    }

    /// A compact tree for the console: per trust bundle its roots, each captured leaf with
    /// its issuers up to a root, and each request.
    pub fn to_tree(&self) -> String {
        let mut out = String::new();
        let issuers = |name: &str| -> Vec<&str> {
            let mut path = Vec::new();
            let mut cur = name;
            while let Some(e) = self
                .edges
                .iter()
                .find(|e| e.kind == EdgeKind::IssuedBy && e.from == cur)
            {
                if path.contains(&e.to.as_str()) {
                    break;
                }
                path.push(e.to.as_str());
                cur = &e.to;
            }
            path
        };
        for t in self
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::TrustBundle)
        {
            let roots: Vec<&str> = self
                .edges
                .iter()
                .filter(|e| e.kind == EdgeKind::TrustedBy && e.to == t.name)
                .map(|e| e.from.as_str())
                .collect();
            let _ = writeln!(out, "{} trusts {}", t.name, roots.join(", "));
        }
        for leaf in self.nodes.iter().filter(|n| n.kind == NodeKind::Leaf) {
            let mut line = leaf.name.clone();
            for i in issuers(&leaf.name) {
                line.push_str(" <- ");
                line.push_str(i);
            }
            if !leaf.failing.is_empty() {
                let _ = write!(line, "  [FAIL {}]", leaf.failing.join(", "));
            }
            let _ = writeln!(out, "  {line}");
        }
        for e in self
            .edges
            .iter()
            .filter(|e| matches!(e.kind, EdgeKind::Connected | EdgeKind::Refused))
        {
            let _ = writeln!(out, "  {} -> {}: {}", e.from, e.to, Self::edge_text(e));
        }
        out
    }
}

fn push_holder(list: &mut Vec<(Vec<u8>, Vec<String>)>, der: Vec<u8>, label: &str) {
    match list.iter_mut().find(|(d, _)| *d == der) {
        Some((_, holders)) => {
            if !holders.iter().any(|h| h == label) {
                holders.push(label.to_owned());
            }
        }
        None => list.push((der, vec![label.to_owned()])),
    }
}

/// The checks the last verdict recorded for `label` failed.
fn verdict_failures(observations: &[Observation], label: &str) -> Vec<String> {
    observations
        .iter()
        .rev()
        .find_map(|o| match &o.observed {
            Observed::Verdict { failed, .. } if o.subject == label => Some(failed.clone()),
            _ => None,
        })
        .unwrap_or_default()
}
