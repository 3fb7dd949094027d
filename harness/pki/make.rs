//! The Makefile's targets as functions: `root-ca` and `<cluster>-cacerts`, with
//! make's semantics (an existing root is reused) and keys generated in parallel.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use super::ca::CLAMP_SLACK;
use super::layout::{self, RootOrigin};
use super::{Ca, IntermediateSpec, PkiError, RootSpec, ca};

/// What `cacerts` did.
#[derive(Debug)]
pub struct Made {
    pub root: Ca,
    pub root_origin: RootOrigin,
    /// `(cluster, directory)` for each cluster, in the order asked.
    pub clusters: Vec<(String, PathBuf)>,
    /// The intermediates whose validity was cut to end with the root's.
    pub clamped: Vec<Clamped>,
}

/// An intermediate asked to outlive its root, made to end with it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamped {
    pub cluster: String,
    /// The `--intermediate-days` asked for.
    pub asked_days: u32,
    /// The root's NotAfter, now also the intermediate's.
    pub until: OffsetDateTime,
}

/// The intermediates of `specs` that would outlive `root` (by more than the slack of one run).
pub fn would_outlive(root: &Ca, specs: &[IntermediateSpec]) -> Vec<Clamped> {
    let until = root.not_after();
    let now = OffsetDateTime::now_utc();
    specs
        .iter()
        .filter(|s| now + Duration::days(s.days.into()) > until + CLAMP_SLACK)
        .map(|s| Clamped {
            cluster: s.cluster.clone(),
            asked_days: s.days,
            until,
        })
        .collect()
}

/// `make root-ca`.
pub fn root_ca(dir: &Path, spec: &RootSpec, force: bool) -> Result<(Ca, RootOrigin), PkiError> {
    layout::ensure_root(dir, spec, force)
}

/// `make <cluster>-cacerts` for each of `clusters`, all under one root: the one in
/// `dir` if there is one (unless `force_root`), else a new one. Every key (root
/// and intermediates) is generated at once on its own thread.
///
/// Nothing is written until every certificate exists, and each cluster directory
/// appears whole or not at all.
pub fn cacerts(
    dir: &Path,
    root_spec: &RootSpec,
    clusters: &[IntermediateSpec],
    force_root: bool,
    force: bool,
) -> Result<Made, PkiError> {
    let mut seen = std::collections::HashSet::new();
    for spec in clusters {
        layout::validate_cluster_name(&spec.cluster)?;
        if !seen.insert(spec.cluster.as_str()) {
            return Err(PkiError::DuplicateCluster {
                name: spec.cluster.clone(),
            });
        }
    }
    for spec in clusters {
        layout::check_cluster_free(dir, &spec.cluster, force)?;
    }
    let existing = if force_root {
        None
    } else {
        layout::existing_root(dir)?
    };
    layout::check_writable(dir)?;

    let (root, root_origin, keys) = std::thread::scope(|s| {
        let handles: Vec<_> = clusters
            .iter()
            .map(|spec| s.spawn(move || spec.key.generate()))
            .collect();
        let root = match existing {
            Some(root) => Ok((root, RootOrigin::Reused)),
            None => ca::generate_root(root_spec).map(|r| (r, RootOrigin::Generated)),
        };
        let keys: Result<Vec<_>, PkiError> = handles
            .into_iter()
            .map(|h| h.join().expect("key generation does not panic"))
            .collect();
        root.and_then(|(root, origin)| Ok((root, origin, keys?)))
    })?;

    let clamped = would_outlive(&root, clusters);
    let intermediates = clusters
        .iter()
        .zip(keys)
        .map(|(spec, key)| ca::generate_intermediate_with_key(&root, spec, key))
        .collect::<Result<Vec<_>, _>>()?;

    if root_origin == RootOrigin::Generated {
        layout::write_root(dir, &root)?;
    }
    let mut made = Vec::new();
    for (spec, intermediate) in clusters.iter().zip(&intermediates) {
        let path = layout::write_cacerts(dir, spec, intermediate, &root, force)?;
        made.push((spec.cluster.clone(), path));
    }
    Ok(Made {
        root,
        root_origin,
        clusters: made,
        clamped,
    })
}
