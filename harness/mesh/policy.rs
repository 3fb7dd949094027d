//! PeerAuthentication: the mTLS mode of each namespace, read by every inbound
//! connection when it arrives (so a change applies to new connections at once,
//! as Envoy's listener update does).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::scenario::target::Mode;

#[derive(Debug, Default)]
pub struct Policies {
    modes: RwLock<HashMap<String, Mode>>,
}

impl Policies {
    pub fn set(&self, namespace: &str, mode: Mode) {
        self.modes
            .write()
            .expect("policy lock")
            .insert(namespace.to_owned(), mode);
    }

    /// The namespace's mode; PERMISSIVE when no PeerAuthentication applies (Istio's default).
    pub fn mode(&self, namespace: &str) -> Mode {
        self.modes
            .read()
            .expect("policy lock")
            .get(namespace)
            .copied()
            .unwrap_or(Mode::Permissive)
    }
}
