//! Debian's openssl, the reference peer.

use std::path::Path;
use std::process::Command;

/// Runs openssl in `dir` and returns stdout; a failure shows the whole story.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("openssl prints text")
}

/// Runs openssl expecting it to fail; returns stdout + stderr.
pub fn openssl_fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        !out.status.success(),
        "openssl {args:?} unexpectedly succeeded"
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Istio's `tools/certs/Makefile.selfsigned.mk` recipe for `root-ca` and
/// `<cluster>-cacerts`, run with openssl (RSA 4096, as the Makefile). As with make, an
/// existing `root-cert.pem` in `dir` is kept: several clusters share one root.
pub fn makefile_bundle(dir: &Path, cluster: &str) {
    if !dir.join("root-cert.pem").exists() {
        makefile_root(dir);
    }
    makefile_cacerts(dir, cluster);
}

fn makefile_root(dir: &Path) {
    std::fs::write(
        dir.join("root-ca.conf"),
        "[ req ]\nencrypt_key = no\nprompt = no\nutf8 = yes\ndefault_md = sha256\ndefault_bits = 4096\n\
         req_extensions = req_ext\nx509_extensions = req_ext\ndistinguished_name = req_dn\n\
         [ req_ext ]\nsubjectKeyIdentifier = hash\nbasicConstraints = critical, CA:true\n\
         keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\n\
         [ req_dn ]\nO = Istio\nCN = Root CA\n",
    )
    .unwrap();
    openssl(dir, &["genrsa", "-out", "root-key.pem", "4096"]);
    openssl(
        dir,
        &[
            "req",
            "-sha256",
            "-new",
            "-key",
            "root-key.pem",
            "-config",
            "root-ca.conf",
            "-out",
            "root-cert.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "3650",
            "-signkey",
            "root-key.pem",
            "-extensions",
            "req_ext",
            "-extfile",
            "root-ca.conf",
            "-in",
            "root-cert.csr",
            "-out",
            "root-cert.pem",
        ],
    );
}

fn makefile_cacerts(dir: &Path, cluster: &str) {
    let c = dir.join(cluster);
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(
        c.join("intermediate.conf"),
        format!(
            "[ req ]\nencrypt_key = no\nprompt = no\nutf8 = yes\ndefault_md = sha256\ndefault_bits = 4096\n\
             req_extensions = req_ext\nx509_extensions = req_ext\ndistinguished_name = req_dn\n\
             [ req_ext ]\nsubjectKeyIdentifier = hash\nbasicConstraints = critical, CA:true, pathlen:0\n\
             keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign\n\
             subjectAltName=@san\n[ san ]\nDNS.1 = istiod.istio-system.svc\n\
             [ req_dn ]\nO = Istio\nCN = Intermediate CA\nL = {cluster}\n"
        ),
    )
    .unwrap();
    let p = |f: &str| format!("{cluster}/{f}");
    openssl(dir, &["genrsa", "-out", &p("ca-key.pem"), "4096"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            &p("intermediate.conf"),
            "-key",
            &p("ca-key.pem"),
            "-out",
            &p("cluster-ca.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "3650",
            "-CA",
            "root-cert.pem",
            "-CAkey",
            "root-key.pem",
            "-CAcreateserial",
            "-extensions",
            "req_ext",
            "-extfile",
            &p("intermediate.conf"),
            "-in",
            &p("cluster-ca.csr"),
            "-out",
            &p("ca-cert.pem"),
        ],
    );
    let chain = [read(c.join("ca-cert.pem")), read(dir.join("root-cert.pem"))].concat();
    std::fs::write(c.join("cert-chain.pem"), chain).unwrap();
    std::fs::copy(dir.join("root-cert.pem"), c.join("root-cert.pem")).unwrap();
    // The Makefile removes its by-products from the cluster directory.
    for f in ["intermediate.conf", "cluster-ca.csr"] {
        std::fs::remove_file(c.join(f)).unwrap();
    }
    std::fs::set_permissions(
        c.join("ca-key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
}

/// The VM workload recipe of Istio's `tools/certs` Makefile, as its `<dir>-certs` target
/// runs it in a cluster directory made by [`makefile_bundle`]: a workload key, a leaf
/// signed by the cluster's intermediate with an SKI, a non-critical keyUsage
/// digitalSignature+keyEncipherment, EKU serverAuth+clientAuth, subject
/// `O=Istio, CN=Workload, L=<cluster>`, the SPIFFE id
/// `spiffe://cluster.local/ns/<cluster>/sa/default`, 1 day; then
/// `<cluster>/workload-cert-chain.pem` = leaf, `ca-cert.pem`, `root-cert.pem` (3
/// certificates). The key is RSA 2048 here (the recipe's 4096 only slows the test).
pub fn makefile_vm_workload(dir: &Path, cluster: &str) -> std::path::PathBuf {
    let c = dir.join(cluster);
    std::fs::write(
        c.join("workload.conf"),
        format!(
            "[ req ]\nencrypt_key = no\nprompt = no\nutf8 = yes\ndefault_md = sha256\ndefault_bits = 2048\n\
             req_extensions = req_ext\nx509_extensions = req_ext\ndistinguished_name = req_dn\n\
             [ req_ext ]\nsubjectKeyIdentifier = hash\nbasicConstraints = critical, CA:false\n\
             keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth, clientAuth\n\
             subjectAltName=@san\n[ san ]\nURI.1 = spiffe://cluster.local/ns/{cluster}/sa/default\n\
             [ req_dn ]\nO = Istio\nCN = Workload\nL = {cluster}\n"
        ),
    )
    .unwrap();
    let p = |f: &str| format!("{cluster}/{f}");
    openssl(dir, &["genrsa", "-out", &p("key.pem"), "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-sha256",
            "-new",
            "-config",
            &p("workload.conf"),
            "-key",
            &p("key.pem"),
            "-out",
            &p("workload.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-sha256",
            "-req",
            "-days",
            "1",
            "-CA",
            &p("ca-cert.pem"),
            "-CAkey",
            &p("ca-key.pem"),
            "-CAcreateserial",
            "-extensions",
            "req_ext",
            "-extfile",
            &p("workload.conf"),
            "-in",
            &p("workload.csr"),
            "-out",
            &p("workload-cert.pem"),
        ],
    );
    let chain = [
        read(c.join("workload-cert.pem")),
        read(c.join("ca-cert.pem")),
        read(dir.join("root-cert.pem")),
    ]
    .concat();
    let out = c.join("workload-cert-chain.pem");
    std::fs::write(&out, chain).unwrap();
    out
}
