//! Every JSON document meshtrust prints is valid against its committed, versioned schema
//! (`fixtures/schemas/`), and a document that breaks the schema is refused (the schemas
//! are not vacuous).

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::support::chains::{Leaf, Mesh, write_pem};

fn meshtrust() -> Command {
    Command::cargo_bin("meshtrust").expect("the meshtrust binary is built")
}

fn schema(name: &str) -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/schemas/{name}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("`{}` is not a valid JSON Schema: {e}", path.display()))
}

fn assert_valid(name: &str, doc: &Value) {
    let v = schema(name);
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{doc:#}");
    // The negative twin: drop a required field, add an unknown one.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("schema");
    assert!(
        !v.is_valid(&broken),
        "{name}: a document without `schema` passes"
    );
    let mut extra = doc.clone();
    extra
        .as_object_mut()
        .unwrap()
        .insert("unexpected".into(), Value::Bool(true));
    assert!(!v.is_valid(&extra), "{name}: an unknown field passes");
}

fn stdout_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn check_and_its_errors_print_documents_of_their_schemas() {
    let mesh = Mesh::new(&["cluster1", "cluster2"]);
    let out = meshtrust()
        .args(["check", "--format", "json"])
        .arg(mesh.cluster_dir("cluster1"))
        .arg(mesh.cluster_dir("cluster2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc = stdout_json(&out);
    assert_valid("check", &doc);
    assert_eq!(doc["ok"], Value::Bool(true));
    assert_eq!(doc["counts"]["errors"], 0);
    // A broken bundle: ok is false, the counts say why, the exit code agrees.
    std::fs::remove_file(mesh.cluster_dir("cluster1").join("cert-chain.pem")).unwrap();
    let out = meshtrust()
        .args(["check", "--format", "json"])
        .arg(mesh.cluster_dir("cluster1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout_json(&out);
    assert_valid("check", &doc);
    assert_eq!(doc["ok"], Value::Bool(false));
    assert!(doc["counts"]["errors"].as_u64().unwrap() >= 1);
    // Clusters under different roots: each refusal is a typed (workloads, peers, purpose).
    let other = Mesh::new(&["cluster3"]);
    let out = meshtrust()
        .args(["check", "--format", "json"])
        .arg(mesh.cluster_dir("cluster2"))
        .arg(other.cluster_dir("cluster3"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout_json(&out);
    assert_valid("check", &doc);
    let refusals: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "different-roots")
        .flat_map(|f| f["peer_refusals"].as_array().unwrap())
        .collect();
    assert_eq!(refusals.len(), 4, "{doc:#}");
    // Bundles are named as `bundles` lists them: their directories.
    assert_eq!(refusals[0]["workloads"], doc["bundles"][0], "{doc:#}");
    assert_eq!(refusals[0]["peers"], doc["bundles"][1], "{doc:#}");
    assert_eq!(refusals[0]["purpose"], "serverAuth");
    // Bad input under --format json: the error is JSON too.
    let out = meshtrust()
        .args(["check", "--format", "json", "/nonexistent/meshtrust"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc = stdout_json(&out);
    assert_valid("error", &doc);
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/meshtrust")
    );
}

#[test]
fn verify_prints_a_document_of_its_schema() {
    let mesh = Mesh::new(&["cluster1"]);
    let served = mesh.served("cluster1", &mesh.leaf("cluster1", &Leaf::default()));
    let chain = write_pem(mesh.dir.path(), "chain.pem", &served);
    let out = meshtrust()
        .args(["verify", "--format", "json", "--cacerts"])
        .arg(mesh.cluster_dir("cluster1"))
        .arg(&chain)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_valid("verify", &doc);
    assert_eq!(doc["conformant"], Value::Bool(true));
}

#[test]
fn run_writes_a_document_of_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("run.json");
    // Every scenario: together they make every kind of observation but `note`.
    let out = meshtrust()
        .args(["run", "--key", "p256", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_valid("run", &doc);
    assert_eq!(doc["conformant"], Value::Bool(true));
    assert!(doc["scenarios"][0]["duration_ms"].is_u64());
    let kinds: std::collections::BTreeSet<&str> = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["observations"].as_array().unwrap())
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "chain_captured",
            "check",
            "expected_failure",
            "finding",
            "istiod_log",
            "istiod_refused",
            "no_certificate",
            "request",
            "root_config_map",
            "verdict"
        ]
    );
    // The negative twins: prose where a typed observation belongs, an unknown kind, a
    // kind missing its fields.
    let schema = schema("run");
    for bad in [
        serde_json::json!("cluster1: istiod: Use local CA certificate"),
        serde_json::json!({"subject": "cluster1", "kind": "rumour", "text": "x"}),
        serde_json::json!({"subject": "cluster1", "kind": "istiod_log"}),
        serde_json::json!({"subject": "a -> b", "kind": "request", "from": "c1/foo/sleep", "to": "c1/foo/httpbin", "transport": "carrier-pigeon", "status": 200, "peer_identity": null, "refused": null}),
    ] {
        let mut doc = doc.clone();
        doc["scenarios"][0]["observations"][0] = bad.clone();
        assert!(
            !schema.is_valid(&doc),
            "the run schema accepts the observation {bad}"
        );
    }
}

#[test]
fn a_targets_milestones_are_in_the_run_schema_and_an_unknown_event_is_not() {
    use meshtrust::scenario::Milestone;
    use std::time::Duration;
    // A local run's report, with the istiod target's milestones added.
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("run.json");
    meshtrust()
        .args(["run", "--key", "p256", "--scenario", "plugin-ca", "--json"])
        .arg(&json)
        .assert()
        .code(0);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let milestones = [
        Milestone::api_server_ready("cluster1", Duration::from_millis(1500)),
        Milestone::istiod_ready("cluster1", "1.30", "default", Duration::from_millis(420)),
        Milestone::first_certificate("cluster1", "1.30", "default", Duration::from_millis(610)),
    ];
    doc["scenarios"][0]["milestones"] = serde_json::to_value(&milestones).unwrap();
    assert_valid("run", &doc);
    // The twin: an event the schema does not name is refused.
    let mut odd = milestones[0].clone();
    odd.event = "etcd-ready";
    doc["scenarios"][0]["milestones"] = serde_json::to_value([odd]).unwrap();
    assert!(!schema("run").is_valid(&doc));
}
