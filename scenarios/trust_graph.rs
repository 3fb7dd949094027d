//! The trust graph of a run: built from what was observed, drawn as Mermaid (Markdown
//! summary), Graphviz DOT (artifacts) and a console tree. Graphviz's `dot` renders every
//! scenario's DOT here; the Mermaid is held to a grammar of the flowchart subset the
//! renderer writes (the Mermaid CLI needs a headless Chromium download that this machine's
//! registries do not serve).

use std::path::Path;
use std::process::Command;

use meshtrust::report::{
    BundleArtifact, BundleFileArtifact, ChainArtifact, EdgeKind, GraphInput, NodeKind, TrustGraph,
};
use meshtrust::scenario::Scenario;

use crate::support::pki as tpki;
use crate::support::targets::{Sabotage, run_local, run_sabotaged};

/// Renders DOT with Graphviz; the SVG it wrote.
fn render_svg(dot: &str, dir: &Path, name: &str) -> String {
    let src = dir.join(format!("{name}.dot"));
    let svg = dir.join(format!("{name}.svg"));
    std::fs::write(&src, dot).unwrap();
    let out = Command::new("dot")
        .arg("-Tsvg")
        .arg(&src)
        .arg("-o")
        .arg(&svg)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run Graphviz's `dot` ({e}): install it (`apt-get install graphviz`)")
        });
    assert!(
        out.status.success(),
        "dot refused {name}.dot: {}\n{dot}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(svg).unwrap()
}

/// The Mermaid flowchart subset [`TrustGraph::to_mermaid`] writes: a header, node
/// declarations with quoted labels, edges between declared nodes with quoted labels, and
/// the class and link styles, whose indices must exist. Returns what is wrong.
fn mermaid_errors(src: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut lines = src.lines();
    if lines.next() != Some("flowchart LR") {
        errors.push("no `flowchart LR` header".to_owned());
    }
    let mut nodes = Vec::new();
    let mut edges = 0usize;
    let quoted = |s: &str| {
        s.len() >= 2 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains('"')
    };
    for line in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("classDef ") {
            if !rest.starts_with("bad ") {
                errors.push(format!("unknown class: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("class ") {
            let Some((ids, class)) = rest.rsplit_once(' ') else {
                errors.push(format!("bad class line: {line}"));
                continue;
            };
            if class != "bad" || ids.split(',').any(|id| !nodes.contains(&id.to_owned())) {
                errors.push(format!("class of undeclared nodes: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("linkStyle ") {
            let ids = rest.split(' ').next().unwrap_or("");
            if ids
                .split(',')
                .any(|i| i.parse::<usize>().map_or(true, |i| i >= edges))
            {
                errors.push(format!("linkStyle of a missing link: {line}"));
            }
            continue;
        }
        // An edge: `nA ARROW|"label"| nB`.
        let parts: Vec<&str> = line.splitn(3, ' ').collect();
        if parts.len() == 3
            && ["-->", "-.->", "==>", "--x"]
                .iter()
                .any(|a| parts[1].starts_with(&format!("{a}|")))
        {
            let arrow_label = parts[1].to_owned() + " " + parts[2];
            let Some((label, target)) = arrow_label
                .split_once('|')
                .and_then(|(_, rest)| rest.rsplit_once("| "))
            else {
                errors.push(format!("bad edge: {line}"));
                continue;
            };
            if !quoted(label) {
                errors.push(format!("edge label not quoted: {line}"));
            }
            for id in [parts[0], target] {
                if !nodes.contains(&id.to_owned()) {
                    errors.push(format!("edge to undeclared node {id}: {line}"));
                }
            }
            edges += 1;
            continue;
        }
        // A node: `nI` then a shape around a quoted label.
        let id: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let shape = &line[id.len()..];
        let label = [("{{", "}}"), ("([", "])"), ("[/", "/]"), ("[", "]")]
            .iter()
            .find_map(|(open, close)| shape.strip_prefix(open)?.strip_suffix(close));
        match label {
            Some(l) if !id.is_empty() && quoted(l) => nodes.push(id),
            _ => errors.push(format!("not a node, edge or style: {line}")),
        }
    }
    errors
}

#[test]
fn every_scenarios_graph_renders_with_graphviz_and_passes_the_mermaid_grammar() {
    let tmp = tempfile::tempdir().unwrap();
    for scenario in Scenario::ALL {
        let out = run_local(scenario);
        let s = &out.report.scenarios[0];
        let graph = TrustGraph::of_scenario(s);
        let svg = render_svg(&graph.to_dot(), tmp.path(), scenario.name());
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
        // Every node's name is drawn.
        for n in &graph.nodes {
            let drawn = n
                .name
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('-', "&#45;");
            assert!(
                svg.contains(&drawn),
                "{}: `{}` not drawn",
                scenario.name(),
                n.name
            );
        }
        let mermaid = graph.to_mermaid();
        assert_eq!(mermaid_errors(&mermaid), Vec::<String>::new(), "{mermaid}");
    }
}

#[test]
fn the_mermaid_grammar_rejects_what_a_renderer_would_choke_on() {
    let good = "flowchart LR\n  n0[\"a\"]\n  n1([\"b\"])\n  n1 -->|\"issued by\"| n0\n  classDef bad fill:#fdd\n  class n0 bad\n  linkStyle 0 stroke:#c00\n";
    assert!(
        mermaid_errors(good).is_empty(),
        "{:?}",
        mermaid_errors(good)
    );
    for bad in [
        good.replace("flowchart LR", "graph"),
        good.replace("[\"a\"]", "[\"a \"quoted\" b\"]"),
        good.replace("n1 -->|", "n7 -->|"),
        good.replace("linkStyle 0", "linkStyle 1"),
        good.replace("class n0 bad", "class n9 bad"),
        good.replace("|\"issued by\"|", "|issued by|"),
    ] {
        assert!(!mermaid_errors(&bad).is_empty(), "accepted:\n{bad}");
    }
}

#[test]
fn a_failed_run_highlights_the_failing_leaf_and_the_unexpected_root_and_a_passing_run_nothing() {
    // The secret never created: istiod self-signs, plugin-ca fails for self-signed-fallback.
    let failed = run_sabotaged(Scenario::PluginCa, Sabotage::NeverPlugsIn);
    assert!(!failed.report.passed());
    let graph = TrustGraph::of_scenario(&failed.report.scenarios[0]);
    let istiod = graph
        .nodes
        .iter()
        .find(|n| n.kind == NodeKind::IstiodRoot)
        .expect("istiod's self-signed root is a node");
    assert!(istiod.unexpected);
    let leaf = graph
        .nodes
        .iter()
        .find(|n| n.name == "cluster1/foo/httpbin")
        .expect("the captured leaf");
    assert!(
        leaf.failing.iter().any(|c| c == "self-signed-fallback"),
        "{:?}",
        leaf.failing
    );
    let md = meshtrust::report::render_markdown(&failed.report);
    assert!(md.contains("| `plugin-ca` | **FAIL** |"), "{md}");
    assert!(
        md.contains("FAIL: ") && md.contains("self-signed-fallback"),
        "{md}"
    );
    assert!(md.contains("  class "), "no node highlighted:\n{md}");
    assert!(md.contains("  linkStyle "), "no edge highlighted:\n{md}");
    let trees = meshtrust::report::render_failed_trees(&failed.report);
    assert!(
        trees.contains("plugin-ca trust graph:")
            && trees.contains("cluster1/foo/httpbin <- istiod self-signed root (cluster1)")
            && trees.contains("[FAIL "),
        "{trees}"
    );
    let dot = graph.to_dot();
    assert!(dot.contains("fillcolor=\"#ffdddd\""), "{dot}");

    // The negative twin: a passing run highlights nothing and prints no tree.
    let passed = run_local(Scenario::PluginCa);
    let md = meshtrust::report::render_markdown(&passed.report);
    assert!(md.contains("| `plugin-ca` | pass |"), "{md}");
    assert!(
        !md.contains("  class ") && !md.contains("  linkStyle "),
        "{md}"
    );
    assert!(meshtrust::report::render_failed_trees(&passed.report).is_empty());
    assert!(
        !TrustGraph::of_scenario(&passed.report.scenarios[0])
            .to_dot()
            .contains("#ffdddd")
    );
}

fn bundle(label: &str, ca: &tpki::Tier, root: &tpki::Tier) -> BundleArtifact {
    BundleArtifact {
        label: label.into(),
        files: vec![
            BundleFileArtifact {
                name: "ca-cert.pem".into(),
                pem: ca.pem.clone(),
            },
            BundleFileArtifact {
                name: "root-cert.pem".into(),
                pem: root.pem.clone(),
            },
        ],
    }
}

#[test]
fn issued_by_follows_signatures_not_names() {
    // Two roots and two intermediates with identical subjects: only signatures tell them apart.
    let (root_a, root_b) = (tpki::root(), tpki::root());
    let ca_a = tpki::intermediate("cluster1", &root_a);
    let ca_b = tpki::intermediate("cluster1", &root_b);
    let bundles = [
        bundle("a/cluster1", &ca_a, &root_a),
        bundle("b/cluster1", &ca_b, &root_b),
    ];
    let mut p = rcgen::CertificateParams::default();
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    let leaf = tpki::signed(p, &ca_b);
    let chains = [ChainArtifact {
        label: "cluster1/foo/httpbin".into(),
        pem: format!("{}{}", leaf.pem, ca_b.pem),
    }];
    let graph = TrustGraph::build(&GraphInput {
        bundles: &bundles,
        trust_bundles: &[],
        chains: &chains,
        observations: &[],
    });
    let issued: Vec<(&str, &str)> = graph
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::IssuedBy)
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        issued,
        [
            ("intermediate a/cluster1", "root (a/cluster1)"),
            ("intermediate b/cluster1", "root (b/cluster1)"),
            ("cluster1/foo/httpbin", "intermediate b/cluster1"),
        ]
    );
}

#[test]
fn verify_prints_the_graph_of_one_chain_as_mermaid_or_dot() {
    use crate::support::chains::{Leaf, Mesh, write_pem};
    let mesh = Mesh::new(&["cluster1", "cluster2"]);
    let ok = write_pem(
        mesh.dir.path(),
        "ok.pem",
        &mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default())),
    );
    let foreign = Mesh::new(&["cluster1"]);
    let bad = write_pem(
        mesh.dir.path(),
        "foreign.pem",
        &foreign.served("cluster1", &foreign.leaf("cluster1", &Leaf::default())),
    );
    let verify = |chain: &Path, format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args(["verify", "--format", format, "--cacerts"])
            .arg(mesh.cluster_dir("cluster1"))
            .arg(chain)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, mermaid) = verify(&ok, "mermaid");
    assert_eq!(code, Some(0));
    assert_eq!(mermaid_errors(&mermaid), Vec::<String>::new(), "{mermaid}");
    assert!(
        mermaid.contains("ok.pem") && mermaid.contains("intermediate "),
        "{mermaid}"
    );
    assert!(!mermaid.contains("  class "), "{mermaid}");
    let (code, dot) = verify(&ok, "dot");
    assert_eq!(code, Some(0));
    assert!(render_svg(&dot, mesh.dir.path(), "ok").contains("<svg"));
    assert!(!dot.contains("#ffdddd"), "{dot}");
    // The negative twin: a chain of another mesh is drawn with its unplugged root in red
    // and the leaf labelled with the failed checks; the exit code stays the verdict's.
    let (code, dot) = verify(&bad, "dot");
    assert_eq!(code, Some(1));
    assert!(render_svg(&dot, mesh.dir.path(), "foreign").contains("<svg"));
    assert!(
        dot.contains("#ffdddd") && dot.contains("FAIL: root-matches-plugged"),
        "{dot}"
    );
    let (_, mermaid) = verify(&bad, "mermaid");
    assert_eq!(mermaid_errors(&mermaid), Vec::<String>::new(), "{mermaid}");
    assert!(mermaid.contains("  class "), "{mermaid}");
}
