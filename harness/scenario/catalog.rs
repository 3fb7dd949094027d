//! The conformance scenarios, written once against [`Target`] and run on every
//! target. A positive scenario passes when the mesh is conformant; a negative
//! one passes when the check fails for the expected, named reason, and fails
//! when the check passes or fails for another reason.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rustls_pki_types::CertificateDer;

use super::certs::RunCerts;
use super::record::Recorder;
use super::target::{
    App, CaSource, InstallOptions, InstallOutcome, Mode, Outcome, Target, TargetError, Transport,
    UpgradeOptions, WorkloadRef,
};
use crate::chain::{self, CheckId, Expectations, SpiffeId, Status, Verdict};
use crate::check::{self, CheckOptions, Severity};
use crate::pki::Bundle;
use crate::report::{self, Observed};

pub const NAMESPACE: &str = "foo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    PluginCa,
    DefaultCa,
    MulticlusterSharedRoot,
    MulticlusterDifferentRoots,
    StrictRejectsPlaintext,
    BadCacerts,
    IntermediateRotation,
    IstioUpgrade,
    IstioCanaryUpgrade,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::PluginCa,
        Scenario::DefaultCa,
        Scenario::MulticlusterSharedRoot,
        Scenario::MulticlusterDifferentRoots,
        Scenario::StrictRejectsPlaintext,
        Scenario::BadCacerts,
        Scenario::IntermediateRotation,
        Scenario::IstioUpgrade,
        Scenario::IstioCanaryUpgrade,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::PluginCa => "plugin-ca",
            Scenario::DefaultCa => "default-ca",
            Scenario::MulticlusterSharedRoot => "multicluster-shared-root",
            Scenario::MulticlusterDifferentRoots => "multicluster-different-roots",
            Scenario::StrictRejectsPlaintext => "strict-rejects-plaintext",
            Scenario::BadCacerts => "bad-cacerts",
            Scenario::IntermediateRotation => "intermediate-rotation",
            Scenario::IstioUpgrade => "istio-upgrade",
            Scenario::IstioCanaryUpgrade => "istio-canary-upgrade",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Scenario::PluginCa => {
                "the doc's task: plug in cluster1's cacerts, install, deploy httpbin and sleep under STRICT, verify httpbin's chain"
            }
            Scenario::DefaultCa => {
                "no cacerts: istiod self-signs, and the plugged-root check must fail with the self-signed-fallback reason"
            }
            Scenario::MulticlusterSharedRoot => {
                "cluster1 and cluster2 under one root: each serves its own intermediate, and sleep@cluster1 reaches httpbin@cluster2 over mTLS"
            }
            Scenario::MulticlusterDifferentRoots => {
                "cluster1 and cluster2 under different roots: cross-cluster mTLS must be refused"
            }
            Scenario::StrictRejectsPlaintext => {
                "STRICT refuses plaintext and accepts mTLS; PERMISSIVE accepts both"
            }
            Scenario::BadCacerts => {
                "an incomplete bundle, a non-CA ca-cert and a key mismatch: istiod refuses each, `meshtrust check` names why, no workload gets a certificate"
            }
            Scenario::IntermediateRotation => {
                "a new intermediate under the same root is hot-loaded: new workload certificates chain to it, the root is unchanged"
            }
            Scenario::IstioUpgrade => {
                "install Istio A with cluster1's cacerts, verify, upgrade to B in place and restart the workloads, verify again: same root, same intermediate, same snapshot"
            }
            Scenario::IstioCanaryUpgrade => {
                "install revision B beside A from the same cacerts, move foo to B and restart httpbin: sleep (A) and httpbin (B) talk over mTLS under one intermediate and root; then sleep moves too, A is removed: the same snapshot as before"
            }
        }
    }

    /// What passing means, for reports.
    /// Whether the scenario needs two clusters.
    pub fn is_multicluster(self) -> bool {
        matches!(
            self,
            Scenario::MulticlusterSharedRoot | Scenario::MulticlusterDifferentRoots
        )
    }

    pub fn expectation(self) -> &'static str {
        match self {
            Scenario::PluginCa
            | Scenario::MulticlusterSharedRoot
            | Scenario::IntermediateRotation
            | Scenario::IstioUpgrade
            | Scenario::IstioCanaryUpgrade => "conformant",
            Scenario::DefaultCa => "fails: self-signed-fallback",
            Scenario::MulticlusterDifferentRoots => "fails: cross-cluster mTLS refused",
            Scenario::StrictRejectsPlaintext => "fails: plaintext refused under STRICT",
            Scenario::BadCacerts => "fails: istiod refuses each bundle",
        }
    }

    pub async fn run(
        self,
        target: &mut dyn Target,
        certs: &RunCerts,
        rec: &mut Recorder<'_>,
    ) -> Result<(), TargetError> {
        match self {
            Scenario::PluginCa => plugin_ca(target, certs, rec).await,
            Scenario::DefaultCa => default_ca(target, certs, rec).await,
            Scenario::MulticlusterSharedRoot => shared_root(target, certs, rec).await,
            Scenario::MulticlusterDifferentRoots => different_roots(target, certs, rec).await,
            Scenario::StrictRejectsPlaintext => strict_rejects_plaintext(target, certs, rec).await,
            Scenario::BadCacerts => bad_cacerts(target, certs, rec).await,
            Scenario::IntermediateRotation => intermediate_rotation(target, certs, rec).await,
            Scenario::IstioUpgrade => istio_upgrade(target, certs, rec).await,
            Scenario::IstioCanaryUpgrade => istio_canary_upgrade(target, certs, rec).await,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

fn workload(cluster: &str, app: App) -> WorkloadRef {
    WorkloadRef::new(cluster, NAMESPACE, app)
}

fn spiffe(app: App) -> String {
    format!("spiffe://cluster.local/ns/{NAMESPACE}/sa/{}", app.name())
}

/// plug in (or not), install, deploy httpbin + sleep, STRICT; returns istiod's outcome.
async fn bring_up(
    target: &mut dyn Target,
    rec: &mut Recorder<'_>,
    cluster: &str,
    bundle: Option<&Path>,
) -> Result<InstallOutcome, TargetError> {
    if let Some(dir) = bundle {
        rec.bundle(dir);
    }
    rec.phase(
        &format!("plug-in {cluster}"),
        target.plug_in(cluster, bundle),
    )
    .await?;
    let outcome = rec
        .phase(
            &format!("install {cluster}"),
            target.install(cluster, &InstallOptions::default()),
        )
        .await?;
    observe_istiod_log(rec, cluster, &outcome);
    if matches!(outcome, InstallOutcome::Refused { .. }) {
        return Ok(outcome);
    }
    rec.phase(&format!("deploy {cluster}"), async {
        target.deploy(cluster, NAMESPACE, App::Httpbin).await?;
        target.deploy(cluster, NAMESPACE, App::Sleep).await
    })
    .await?;
    rec.phase(
        &format!("strict {cluster}"),
        target.set_peer_authentication(cluster, NAMESPACE, Mode::Strict),
    )
    .await?;
    Ok(outcome)
}

/// Keeps istiod's log lines about its CA, as it printed them, under `subject`.
fn observe_istiod_log(rec: &mut Recorder<'_>, subject: &str, outcome: &InstallOutcome) {
    let (InstallOutcome::Installed { log, .. } | InstallOutcome::Refused { log, .. }) = outcome;
    for line in log {
        rec.observe(subject, Observed::IstiodLog { line: line.clone() });
    }
}

fn expect_ca(rec: &mut Recorder<'_>, cluster: &str, outcome: &InstallOutcome, want: CaSource) {
    match outcome {
        InstallOutcome::Installed { ca, .. } if *ca == want => {}
        InstallOutcome::Installed { ca, .. } => rec.fail(format!(
            "{cluster}: istiod uses a {ca:?} CA, expected {want:?}"
        )),
        InstallOutcome::Refused { reason, .. } => {
            rec.fail(format!("{cluster}: istiod refused to start: {reason}"))
        }
    }
}

/// Captures `server`'s chain from beside `client` and checks it against `bundle`.
async fn capture_and_verify(
    target: &mut dyn Target,
    rec: &mut Recorder<'_>,
    client: &WorkloadRef,
    server: &WorkloadRef,
    bundle: &Path,
    others: &[&Path],
    app: App,
) -> Result<Option<(Vec<CertificateDer<'static>>, Verdict)>, TargetError> {
    let label = server.to_string();
    capture_and_verify_as(target, rec, &label, client, server, bundle, others, app).await
}

/// [`capture_and_verify`], recording the chain and the verdict under `label`.
#[allow(clippy::too_many_arguments)]
async fn capture_and_verify_as(
    target: &mut dyn Target,
    rec: &mut Recorder<'_>,
    label: &str,
    client: &WorkloadRef,
    server: &WorkloadRef,
    bundle: &Path,
    others: &[&Path],
    app: App,
) -> Result<Option<(Vec<CertificateDer<'static>>, Verdict)>, TargetError> {
    let captured = rec
        .phase(
            &format!("capture {label}"),
            target.capture_chain(client, server),
        )
        .await?;
    let label = label.to_owned();
    rec.chain(&label, &captured.chain);
    // What the server's cluster gives its workloads to trust, for the trust graph.
    if let Some(pem) = target.root_configmap(&server.cluster, NAMESPACE).await? {
        rec.trust_bundle(&server.cluster, &pem);
    }
    rec.observe(
        &label,
        Observed::ChainCaptured {
            certificates: captured.chain.len(),
            workload: server.to_string(),
            from: client.to_string(),
            protocol: captured.protocol.clone(),
        },
    );
    // Named by the label: the canary verifies httpbin three times, and each is its own phase.
    let verdict = rec
        .phase(&format!("verify {label}"), async {
            verify(&captured.chain, bundle, others, app)
        })
        .await;
    match verdict {
        Ok(v) => {
            rec.verdict(&label, &v);
            Ok(Some((captured.chain, v)))
        }
        Err(e) => {
            rec.fail(format!(
                "{label}: the captured chain cannot be checked: {e}"
            ));
            Ok(None)
        }
    }
}

fn verify(
    chain: &[CertificateDer<'_>],
    bundle: &Path,
    others: &[&Path],
    app: App,
) -> Result<Verdict, String> {
    let read = |d: &Path| Bundle::read(d).map_err(|e| e.to_string());
    let bundle = read(bundle)?;
    let others = others
        .iter()
        .map(|d| read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut expect = Expectations::now();
    expect.expect_id = Some(SpiffeId::parse(&spiffe(app)).map_err(|e| e.to_string())?);
    expect.expect_ttl = Some(time::Duration::hours(24));
    chain::verify_chain(chain, &bundle, &others, &expect).map_err(|e| e.to_string())
}

fn expect_conformant(rec: &mut Recorder<'_>, label: &str, verdict: &Verdict) {
    if !verdict.conformant() {
        for c in verdict.failures() {
            rec.fail(format!("{label}: {} failed: {}", c.id.name(), c.summary));
        }
    }
}

async fn expect_root_configmap(
    target: &mut dyn Target,
    rec: &mut Recorder<'_>,
    cluster: &str,
    bundle: &Path,
) -> Result<(), TargetError> {
    let got = target.root_configmap(cluster, NAMESPACE).await?;
    if let Some(pem) = &got {
        rec.trust_bundle(cluster, pem);
    }
    let want = std::fs::read(bundle.join("root-cert.pem")).ok();
    match (got, want) {
        (Some(got), Some(want)) if got == want => rec.observe(
            cluster,
            Observed::RootConfigMap {
                namespace: NAMESPACE.to_owned(),
                equal: true,
            },
        ),
        (Some(_), _) => rec.fail(format!("{cluster}: ConfigMap istio-ca-root-cert in {NAMESPACE} differs from the plugged root-cert.pem")),
        (None, _) => rec.fail(format!("{cluster}: no ConfigMap istio-ca-root-cert in {NAMESPACE}")),
    }
    Ok(())
}

async fn plugin_ca(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let bundle = certs.cluster("cluster1");
    let outcome = bring_up(target, rec, "cluster1", Some(&bundle)).await?;
    expect_ca(rec, "cluster1", &outcome, CaSource::PluggedIn);
    if let Some((_, v)) = capture_and_verify(
        target,
        rec,
        &workload("cluster1", App::Sleep),
        &workload("cluster1", App::Httpbin),
        &bundle,
        &[],
        App::Httpbin,
    )
    .await?
    {
        expect_conformant(rec, "cluster1/foo/httpbin", &v);
    }
    expect_root_configmap(target, rec, "cluster1", &bundle).await?;
    let outcome = rec
        .phase(
            "request sleep -> httpbin",
            target.request(
                &workload("cluster1", App::Sleep),
                &workload("cluster1", App::Httpbin),
                Transport::Mtls,
                "/headers",
            ),
        )
        .await?;
    expect_mtls_identity(
        rec,
        "sleep -> httpbin",
        (
            &workload("cluster1", App::Sleep),
            &workload("cluster1", App::Httpbin),
        ),
        &outcome,
        App::Sleep,
    );
    Ok(())
}

/// A 200 whose body carries the caller's SPIFFE identity (X-Forwarded-Client-Cert).
fn expect_mtls_identity(
    rec: &mut Recorder<'_>,
    what: &str,
    (from, to): (&WorkloadRef, &WorkloadRef),
    outcome: &Outcome,
    caller: App,
) {
    let id = spiffe(caller);
    rec.request(
        what,
        (from, to),
        report::Transport::Mtls,
        outcome,
        Some(&id),
    );
    match outcome {
        Outcome::Response { status: 200, body } => {
            let body = String::from_utf8_lossy(body);
            if !body.contains(&id) {
                rec.fail(format!(
                    "{what}: 200, but the server did not see {id} (body: {body})"
                ));
            }
        }
        Outcome::Response { status, .. } => {
            rec.fail(format!("{what}: HTTP {status}, expected 200"))
        }
        Outcome::Refused { reason } => rec.fail(format!(
            "{what}: refused ({reason}), expected 200 over mTLS"
        )),
    }
}

async fn default_ca(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let outcome = bring_up(target, rec, "cluster1", None).await?;
    expect_ca(rec, "cluster1", &outcome, CaSource::SelfSigned);
    // The administrator believes cluster1's bundle is plugged in; it is not.
    let bundle = certs.cluster("cluster1");
    rec.bundle(&bundle);
    if let Some((_, v)) = capture_and_verify(
        target,
        rec,
        &workload("cluster1", App::Sleep),
        &workload("cluster1", App::Httpbin),
        &bundle,
        &[],
        App::Httpbin,
    )
    .await?
    {
        expect_named_failure(rec, "cluster1/foo/httpbin", &v, CheckId::SelfSignedFallback);
    }
    Ok(())
}

/// A negative verdict passes the scenario only when it fails for `reason`.
fn expect_named_failure(rec: &mut Recorder<'_>, label: &str, verdict: &Verdict, reason: CheckId) {
    let check = verdict.check(reason);
    if verdict.conformant() {
        rec.fail(format!(
            "{label}: the chain is conformant, expected it to fail {}",
            reason.name()
        ));
    } else if check.status != Status::Fail {
        let got: Vec<_> = verdict.failures().map(|c| c.id.name()).collect();
        rec.fail(format!(
            "{label}: failed for {}, not for {}",
            got.join(", "),
            reason.name()
        ));
    } else {
        rec.observe(
            label,
            Observed::ExpectedFailure {
                check: reason.name().to_owned(),
                summary: check.summary.clone(),
            },
        );
    }
}

async fn shared_root(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let (b1, b2) = (certs.cluster("cluster1"), certs.cluster("cluster2"));
    for (cluster, bundle) in [("cluster1", &b1), ("cluster2", &b2)] {
        let outcome = bring_up(target, rec, cluster, Some(bundle)).await?;
        expect_ca(rec, cluster, &outcome, CaSource::PluggedIn);
    }
    let mut roots = Vec::new();
    for (cluster, bundle, other) in [("cluster1", &b1, &b2), ("cluster2", &b2, &b1)] {
        let server = workload(cluster, App::Httpbin);
        if let Some((chain, v)) = capture_and_verify(
            target,
            rec,
            &workload(cluster, App::Sleep),
            &server,
            bundle,
            &[other.as_path()],
            App::Httpbin,
        )
        .await?
        {
            expect_conformant(rec, &server.to_string(), &v);
            roots.extend(chain.last().cloned());
        }
    }
    rec.expect(roots.len() == 2 && roots[0] == roots[1], || {
        "the two clusters' chains do not end at the same root".into()
    });
    let outcome = rec
        .phase(
            "request sleep@cluster1 -> httpbin@cluster2",
            target.request(
                &workload("cluster1", App::Sleep),
                &workload("cluster2", App::Httpbin),
                Transport::Mtls,
                "/headers",
            ),
        )
        .await?;
    expect_mtls_identity(
        rec,
        "sleep@cluster1 -> httpbin@cluster2",
        (
            &workload("cluster1", App::Sleep),
            &workload("cluster2", App::Httpbin),
        ),
        &outcome,
        App::Sleep,
    );
    Ok(())
}

async fn different_roots(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let (b1, b2) = (certs.cluster("cluster1"), certs.foreign_cluster("cluster2"));
    for (cluster, bundle) in [("cluster1", &b1), ("cluster2", &b2)] {
        let outcome = bring_up(target, rec, cluster, Some(bundle)).await?;
        expect_ca(rec, cluster, &outcome, CaSource::PluggedIn);
    }
    // Each cluster on its own is conformant: the failure must come from crossing roots.
    for (cluster, bundle) in [("cluster1", &b1), ("cluster2", &b2)] {
        let server = workload(cluster, App::Httpbin);
        if let Some((_, v)) = capture_and_verify(
            target,
            rec,
            &workload(cluster, App::Sleep),
            &server,
            bundle,
            &[],
            App::Httpbin,
        )
        .await?
        {
            expect_conformant(rec, &server.to_string(), &v);
        }
    }
    let outcome = rec
        .phase(
            "request sleep@cluster1 -> httpbin@cluster2",
            target.request(
                &workload("cluster1", App::Sleep),
                &workload("cluster2", App::Httpbin),
                Transport::Mtls,
                "/headers",
            ),
        )
        .await?;
    rec.request(
        "sleep@cluster1 -> httpbin@cluster2",
        (
            &workload("cluster1", App::Sleep),
            &workload("cluster2", App::Httpbin),
        ),
        report::Transport::Mtls,
        &outcome,
        None,
    );
    match outcome {
        Outcome::Refused { .. } => {}
        Outcome::Response { status, .. } => rec.fail(format!(
            "sleep@cluster1 -> httpbin@cluster2 got HTTP {status} across different roots; expected the mTLS handshake to be refused"
        )),
    }
    Ok(())
}

async fn strict_rejects_plaintext(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let bundle = certs.cluster("cluster1");
    let outcome = bring_up(target, rec, "cluster1", Some(&bundle)).await?;
    expect_ca(rec, "cluster1", &outcome, CaSource::PluggedIn);
    let (sleep, httpbin) = (
        workload("cluster1", App::Sleep),
        workload("cluster1", App::Httpbin),
    );
    let plain = rec
        .phase(
            "plaintext under STRICT",
            target.request(&sleep, &httpbin, Transport::Plaintext, "/status/200"),
        )
        .await?;
    rec.request(
        "sleep -> httpbin under STRICT",
        (&sleep, &httpbin),
        report::Transport::Plaintext,
        &plain,
        None,
    );
    match plain {
        Outcome::Refused { .. } => {}
        Outcome::Response { status, .. } => rec.fail(format!(
            "STRICT: a plaintext request got HTTP {status}; expected it to be refused"
        )),
    }
    let mtls = rec
        .phase(
            "mTLS under STRICT",
            target.request(&sleep, &httpbin, Transport::Mtls, "/headers"),
        )
        .await?;
    rec.request(
        "sleep -> httpbin under STRICT",
        (&sleep, &httpbin),
        report::Transport::Mtls,
        &mtls,
        Some(&spiffe(App::Sleep)),
    );
    rec.expect(mtls.status() == Some(200), || {
        format!("STRICT: mTLS request did not get 200: {mtls:?}")
    });
    rec.phase(
        "permissive",
        target.set_peer_authentication("cluster1", NAMESPACE, Mode::Permissive),
    )
    .await?;
    let plain = rec
        .phase(
            "plaintext under PERMISSIVE",
            target.request(&sleep, &httpbin, Transport::Plaintext, "/status/200"),
        )
        .await?;
    rec.request(
        "sleep -> httpbin under PERMISSIVE",
        (&sleep, &httpbin),
        report::Transport::Plaintext,
        &plain,
        None,
    );
    if plain.status() != Some(200) {
        rec.fail(format!(
            "PERMISSIVE: a plaintext request did not get 200: {plain:?}"
        ));
    }
    Ok(())
}

async fn bad_cacerts(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    for (kind, finding) in [
        ("incomplete", "incomplete-bundle"),
        ("not-a-ca", "ca-cert-not-ca"),
        ("key-mismatch", "key-mismatch"),
    ] {
        let cluster = format!("bad-{kind}");
        let bundle = certs.bad(kind);
        let outcome = bring_up(target, rec, &cluster, Some(&bundle)).await?;
        let refusal = match &outcome {
            InstallOutcome::Refused { reason, .. } => {
                rec.observe(
                    &cluster,
                    Observed::IstiodRefused {
                        error: reason.clone(),
                    },
                );
                Some(reason.clone())
            }
            InstallOutcome::Installed { ca, .. } => {
                rec.fail(format!(
                    "{cluster}: istiod started with a {ca:?} CA; expected it to refuse the bundle"
                ));
                None
            }
        };
        // The same rules as `meshtrust check` explain the refusal.
        let findings = match Bundle::read(&bundle) {
            // By the rules of the istiod that ran: its words are what the refusal must hold.
            Ok(b) => check::check_bundle(
                &b,
                &CheckOptions {
                    istio_version: target.istio_version(),
                    ..CheckOptions::default()
                },
            ),
            Err(e) => {
                rec.fail(format!("{cluster}: cannot read the bundle: {e}"));
                continue;
            }
        };
        match findings
            .iter()
            .find(|f| f.id == finding && f.severity == Severity::Error)
        {
            Some(f) => {
                rec.observe(
                    &cluster,
                    Observed::Finding {
                        id: f.id.to_owned(),
                        severity: f.severity,
                        message: f.message.clone(),
                    },
                );
                // istiod must refuse for that reason, in its own words: any other exit (a
                // crash, a bad flag, a port taken) is not this refusal.
                if let (Some(reason), Some(predicted)) = (&refusal, &f.istiod_error)
                    && !reason.contains(predicted.as_str())
                {
                    rec.fail(format!(
                        "{cluster}: istiod refused with `{reason}`, not for `{finding}` (`{predicted}`)"
                    ));
                }
            }
            None => {
                let ids: Vec<_> = findings.iter().map(|f| f.id).collect();
                rec.fail(format!(
                    "{cluster}: meshtrust check did not find `{finding}` (found: {})",
                    ids.join(", ")
                ));
            }
        }
        let issued = target
            .issue_workload_certificate(&cluster, NAMESPACE, App::Httpbin.name())
            .await;
        match issued {
            Err(e) => rec.observe(
                &cluster,
                Observed::NoCertificate {
                    error: e.to_string(),
                },
            ),
            Ok(chain) => rec.fail(format!(
                "{cluster}: a workload got a {}-certificate chain from a refused istiod",
                chain.len()
            )),
        }
    }
    Ok(())
}

async fn intermediate_rotation(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let (old, new) = (certs.cluster("cluster1"), certs.rotated_cluster1());
    let outcome = bring_up(target, rec, "cluster1", Some(&old)).await?;
    expect_ca(rec, "cluster1", &outcome, CaSource::PluggedIn);
    let before = capture_and_verify(
        target,
        rec,
        &workload("cluster1", App::Sleep),
        &workload("cluster1", App::Httpbin),
        &old,
        &[],
        App::Httpbin,
    )
    .await?;
    if let Some((_, v)) = &before {
        expect_conformant(rec, "before rotation", v);
    }
    rec.bundle(&new);
    rec.phase("reload cacerts", target.reload_cacerts("cluster1", &new))
        .await?;
    let chain = rec
        .phase(
            "issue after rotation",
            target.issue_workload_certificate("cluster1", NAMESPACE, App::Httpbin.name()),
        )
        .await?;
    rec.chain("cluster1/foo/httpbin-after-rotation", &chain);
    match verify(&chain, &new, &[&old], App::Httpbin) {
        Ok(v) => {
            rec.verdict("after rotation", &v);
            expect_conformant(rec, "after rotation", &v);
        }
        Err(e) => rec.fail(format!(
            "after rotation: the issued chain cannot be checked: {e}"
        )),
    }
    if let Some((before, _)) = &before {
        rec.expect(before.last() == chain.last(), || {
            "the root changed across the rotation".into()
        });
        rec.expect(before.get(1) != chain.get(1), || {
            "the intermediate did not change after the reload".into()
        });
    }
    Ok(())
}

/// The label of the chain captured after the upgrade.
pub const AFTER_UPGRADE: &str = "cluster1/foo/httpbin-after-upgrade";

async fn istio_upgrade(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let bundle = certs.cluster("cluster1");
    let outcome = bring_up(target, rec, "cluster1", Some(&bundle)).await?;
    expect_ca(rec, "cluster1", &outcome, CaSource::PluggedIn);
    let (sleep, httpbin) = (
        workload("cluster1", App::Sleep),
        workload("cluster1", App::Httpbin),
    );
    let before =
        capture_and_verify(target, rec, &sleep, &httpbin, &bundle, &[], App::Httpbin).await?;
    if let Some((_, v)) = &before {
        expect_conformant(rec, "before upgrade", v);
    }
    let outcome = rec
        .phase(
            "upgrade cluster1",
            target.upgrade("cluster1", &UpgradeOptions::default()),
        )
        .await?;
    observe_istiod_log(rec, "cluster1 (upgraded)", &outcome);
    expect_ca(rec, "cluster1 (upgraded)", &outcome, CaSource::PluggedIn);
    if matches!(outcome, InstallOutcome::Refused { .. }) {
        return Ok(());
    }
    let after = capture_and_verify_as(
        target,
        rec,
        AFTER_UPGRADE,
        &sleep,
        &httpbin,
        &bundle,
        &[],
        App::Httpbin,
    )
    .await?;
    if let Some((_, v)) = &after {
        expect_conformant(rec, "after upgrade", v);
    }
    if let (Some((before, vb)), Some((after, va))) = (&before, &after) {
        rec.expect(before.last() == after.last(), || {
            "the root changed across the upgrade".into()
        });
        rec.expect(before.get(1) == after.get(1), || {
            "the intermediate changed across the upgrade".into()
        });
        rec.expect(before.first() != after.first(), || {
            "the workload kept its old leaf: it was not restarted after the upgrade".into()
        });
        rec.expect(chain::Snapshot::of(vb) == chain::Snapshot::of(va), || {
            "the chain's snapshot changed across the upgrade".into()
        });
    }
    Ok(())
}

use super::target::{CANARY_REVISION, DEFAULT_REVISION};
/// The label of httpbin's chain once it runs on the canary revision.
pub const ON_CANARY: &str = "cluster1/foo/httpbin-on-canary";
/// The label of httpbin's chain once the old revision is gone.
pub const AFTER_CANARY: &str = "cluster1/foo/httpbin-after-canary-upgrade";

async fn istio_canary_upgrade(
    target: &mut dyn Target,
    certs: &RunCerts,
    rec: &mut Recorder<'_>,
) -> Result<(), TargetError> {
    let bundle = certs.cluster("cluster1");
    let outcome = bring_up(target, rec, "cluster1", Some(&bundle)).await?;
    expect_ca(rec, "cluster1", &outcome, CaSource::PluggedIn);
    if matches!(outcome, InstallOutcome::Refused { .. }) {
        return Ok(());
    }
    let (sleep, httpbin) = (
        workload("cluster1", App::Sleep),
        workload("cluster1", App::Httpbin),
    );
    let before =
        capture_and_verify(target, rec, &sleep, &httpbin, &bundle, &[], App::Httpbin).await?;
    if let Some((_, v)) = &before {
        expect_conformant(rec, "before the canary upgrade", v);
    }
    let root_before = target.root_configmap("cluster1", NAMESPACE).await?;

    // Revision B beside A, from the same plugged cacerts.
    let subject = format!("cluster1 ({CANARY_REVISION})");
    let outcome = rec
        .phase(
            &format!("install revision {CANARY_REVISION}"),
            target.install_revision("cluster1", CANARY_REVISION, &InstallOptions::default()),
        )
        .await?;
    observe_istiod_log(rec, &subject, &outcome);
    expect_ca(rec, &subject, &outcome, CaSource::PluggedIn);
    if matches!(outcome, InstallOutcome::Refused { .. }) {
        return Ok(());
    }
    // foo moves to B; only httpbin restarts: the two revisions now serve one namespace.
    rec.phase(
        &format!("move {NAMESPACE} to {CANARY_REVISION}"),
        target.set_namespace_revision("cluster1", NAMESPACE, CANARY_REVISION),
    )
    .await?;
    rec.phase(
        "restart httpbin",
        target.restart("cluster1", NAMESPACE, App::Httpbin),
    )
    .await?;
    let on_canary = capture_and_verify_as(
        target,
        rec,
        ON_CANARY,
        &sleep,
        &httpbin,
        &bundle,
        &[],
        App::Httpbin,
    )
    .await?;
    if let Some((_, v)) = &on_canary {
        expect_conformant(rec, ON_CANARY, v);
    }
    if let (Some((before, _)), Some((during, _))) = (&before, &on_canary) {
        rec.expect(before.get(1) == during.get(1), || {
            format!("httpbin on {CANARY_REVISION} serves another intermediate than before")
        });
        rec.expect(before.last() == during.last(), || {
            format!("httpbin on {CANARY_REVISION} serves another root than before")
        });
    }
    // sleep (A) -> httpbin (B): each side verifies the other's certificate.
    let across = rec
        .phase(
            "request sleep (default) -> httpbin (canary)",
            target.request(&sleep, &httpbin, Transport::Mtls, "/headers"),
        )
        .await?;
    expect_mtls_identity(
        rec,
        "sleep (default) -> httpbin (canary)",
        (&sleep, &httpbin),
        &across,
        App::Sleep,
    );
    let root_during = target.root_configmap("cluster1", NAMESPACE).await?;
    if let Some(pem) = &root_during {
        rec.trust_bundle("cluster1", pem);
    }
    if root_during.is_some() && root_during == root_before {
        rec.observe(
            "cluster1",
            Observed::RootConfigMap {
                namespace: NAMESPACE.to_owned(),
                equal: true,
            },
        );
    } else {
        rec.fail(format!(
            "ConfigMap istio-ca-root-cert in {NAMESPACE} changed when {NAMESPACE} moved to {CANARY_REVISION}"
        ));
    }

    // sleep follows; A goes.
    rec.phase(
        "restart sleep",
        target.restart("cluster1", NAMESPACE, App::Sleep),
    )
    .await?;
    rec.phase(
        &format!("uninstall revision {DEFAULT_REVISION}"),
        target.uninstall_revision("cluster1", DEFAULT_REVISION),
    )
    .await?;
    // The namespace must live on the canary now: a pod started after the old revision is
    // gone still gets its certificate (a move that restarted nothing fails here).
    let restarted = rec
        .phase(
            &format!("restart httpbin without {DEFAULT_REVISION}"),
            target.restart("cluster1", NAMESPACE, App::Httpbin),
        )
        .await;
    if let Err(e) = restarted {
        rec.fail(format!(
            "httpbin cannot restart once revision {DEFAULT_REVISION} is removed ({e}): {NAMESPACE} never moved to {CANARY_REVISION}"
        ));
        return Ok(());
    }
    let after = capture_and_verify_as(
        target,
        rec,
        AFTER_CANARY,
        &sleep,
        &httpbin,
        &bundle,
        &[],
        App::Httpbin,
    )
    .await?;
    if let Some((_, v)) = &after {
        expect_conformant(rec, AFTER_CANARY, v);
    }
    let last = rec
        .phase(
            "request sleep (canary) -> httpbin (canary)",
            target.request(&sleep, &httpbin, Transport::Mtls, "/headers"),
        )
        .await?;
    expect_mtls_identity(
        rec,
        "sleep (canary) -> httpbin (canary)",
        (&sleep, &httpbin),
        &last,
        App::Sleep,
    );
    if let (Some((_, vb)), Some((_, va))) = (&before, &after) {
        rec.expect(chain::Snapshot::of(vb) == chain::Snapshot::of(va), || {
            "the chain's snapshot changed across the canary upgrade".into()
        });
    }
    Ok(())
}
