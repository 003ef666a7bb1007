//! Throw-away certificates for the TLS tests, made at test time with the `openssl` command line
//! in a fresh temporary directory (EC P-256 keys: a whole set takes about 0.1 s here). The expired certificate is built with the `openssl` crate, because the
//! OpenSSL 3.0 command line cannot back-date `x509 -req` (`-not_before` came in 3.4).
//!
//! One set per test binary, cached by [`certs`] as PEM bytes; the directory it was made in is
//! removed at once. A peer that wants files (nginx) writes them into its own [`TempDir`] with
//! [`CertPair::write`] / [`write_pem`], which is removed when that peer is dropped. Directories
//! left by killed test processes are swept when the next set is made.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// The password of [`Certs::client_p12`].
pub const P12_PASSWORD: &str = "p12-pa55word";

/// A directory under `std::env::temp_dir()` with a unique name, removed on Drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A certificate and its private key (PKCS#8 PEM).
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl CertPair {
    /// Writes `<name>.pem` and `<name>.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (
            write_pem(dir, &format!("{name}.pem"), &self.cert_pem),
            write_pem(dir, &format!("{name}.key"), &self.key_pem),
        )
    }
}

/// Writes `bytes` to `dir/name`; returns the path.
pub fn write_pem(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A CA: its certificate, and its key while the set is being made.
struct Ca {
    pem: Vec<u8>,
    path: PathBuf,
    key_path: PathBuf,
}

/// One set of test certificates.
pub struct Certs {
    /// The private test CA (PEM).
    pub ca_pem: Vec<u8>,
    /// `CN=localhost`, SAN `DNS:localhost, IP:127.0.0.1`, signed by `ca`.
    pub server: CertPair,
    /// SAN `DNS:wrong.example` only, signed by `ca`.
    pub wrong_host: CertPair,
    /// Like `server`, but valid only from 30 days ago until 1 day ago.
    pub expired: CertPair,
    /// A client certificate (`CN=wsbeat-device`, clientAuth) signed by `ca`.
    pub client: CertPair,
    /// `client` and its key as a PKCS#12 archive protected by [`P12_PASSWORD`].
    pub client_p12: Vec<u8>,
    /// An unrelated second CA (PEM).
    pub other_ca_pem: Vec<u8>,
    /// A client certificate signed by `other_ca`.
    pub other_client: CertPair,
    /// How long making the set took.
    pub took: Duration,
}

/// Paths of a set written out with [`Certs::write_all`].
pub struct CertFiles {
    pub ca: PathBuf,
    pub server: (PathBuf, PathBuf),
    pub wrong_host: (PathBuf, PathBuf),
    pub expired: (PathBuf, PathBuf),
    pub client: (PathBuf, PathBuf),
    pub client_p12: PathBuf,
    pub other_ca: PathBuf,
    pub other_client: (PathBuf, PathBuf),
}

impl Certs {
    /// Writes every certificate and key into `dir` (e.g. a peer's [`TempDir`]) for programs
    /// that want files; returns their paths (certificates `.pem`, keys `.key`).
    pub fn write_all(&self, dir: &Path) -> CertFiles {
        CertFiles {
            ca: write_pem(dir, "ca.pem", &self.ca_pem),
            server: self.server.write(dir, "server"),
            wrong_host: self.wrong_host.write(dir, "wrong-host"),
            expired: self.expired.write(dir, "expired"),
            client: self.client.write(dir, "client"),
            client_p12: write_pem(dir, "client.p12", &self.client_p12),
            other_ca: write_pem(dir, "other-ca.pem", &self.other_ca_pem),
            other_client: self.other_client.write(dir, "other-client"),
        }
    }
}

/// The certificate set of this test binary, made on first use.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        sweep_stale_dirs();
        let dir = TempDir::new("wsbeat-certs");
        generate(dir.path())
    })
}

/// Removes certificate directories left by test processes that no longer run (killed by a
/// signal, so that `atexit` did not run).
fn sweep_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix("wsbeat-certs-")
            .or_else(|| name.strip_prefix("wsbeat-nginx-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs `openssl` with `args` in `dir`; panics with its stderr if it fails.
pub fn openssl_cli(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the `openssl` command line (install the openssl package): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn write(dir: &Path, name: &str, contents: &[u8]) {
    fs::write(dir.join(name), contents).unwrap_or_else(|e| panic!("write {name}: {e}"));
}

const REQ_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
";

/// A self-signed CA named `name` (files `<name>.pem`, `<name>.key`).
fn make_ca(dir: &Path, name: &str, cn: &str) -> Ca {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subj = format!("/CN={cn}");
    openssl_cli(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "30",
            "-sha256",
            "-subj",
            &subj,
            "-config",
            "req.cnf",
            "-extensions",
            "v3_ca",
        ],
    );
    Ca {
        pem: read(dir, &pem),
        path: dir.join(&pem),
        key_path: dir.join(&key),
    }
}

/// A leaf certificate `<name>.pem` / `<name>.key` (PKCS#8) with `extensions`, signed by `ca`.
fn make_leaf(dir: &Path, ca: &Ca, name: &str, cn: &str, serial: u32, extensions: &str) -> CertPair {
    let (pem, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    write(dir, &ext, format!("[v3]\n{extensions}").as_bytes());
    let subj = format!("/CN={cn}");
    openssl_cli(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
            "-config",
            "req.cnf",
        ],
    );
    let ca_pem = ca.path.to_string_lossy().into_owned();
    let ca_key = ca.key_path.to_string_lossy().into_owned();
    openssl_cli(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial.to_string(),
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &ext,
            "-extensions",
            "v3",
            "-out",
            &pem,
        ],
    );
    CertPair {
        cert_pem: read(dir, &pem),
        key_pem: read(dir, &key),
    }
}

/// A `localhost` server certificate valid from 30 days ago until 1 day ago, signed by `ca`.
fn make_expired(ca: &Ca) -> CertPair {
    let ca_cert = X509::from_pem(&ca.pem).expect("parse CA cert");
    let ca_key = PKey::private_key_from_pem(&fs::read(&ca.key_path).expect("read CA key"))
        .expect("parse CA key");
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .expect("CN");
    let name = name.build();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as libc::time_t;
    let day: libc::time_t = 24 * 3600;
    let mut b = X509Builder::new().expect("x509 builder");
    b.set_version(2).expect("v3");
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(900).expect("bn")).expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca_cert.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(now - 30 * day).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::from_unix(now - day).expect("time"))
        .expect("not after");
    b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
        .expect("eku");
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .expect("san");
    b.append_extension(san).expect("san");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    let cert_pem = b.build().to_pem().expect("cert pem");
    let key_pem = key.private_key_to_pem_pkcs8().expect("key pem");
    CertPair { cert_pem, key_pem }
}

const SERVER_EXT: &str = "\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

const CLIENT_EXT: &str = "\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes a full set in `dir`.
fn generate(dir: &Path) -> Certs {
    let started = Instant::now();
    write(dir, "req.cnf", REQ_CONFIG.as_bytes());
    let ca = make_ca(dir, "ca", "wsbeat test CA");
    let server = make_leaf(
        dir,
        &ca,
        "server",
        "localhost",
        1,
        &format!("{SERVER_EXT}subjectAltName = DNS:localhost,IP:127.0.0.1\n"),
    );
    let wrong_host = make_leaf(
        dir,
        &ca,
        "wrong-host",
        "wrong.example",
        2,
        &format!("{SERVER_EXT}subjectAltName = DNS:wrong.example\n"),
    );
    let client = make_leaf(dir, &ca, "client", "wsbeat-device", 3, CLIENT_EXT);
    openssl_cli(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "client.key",
            "-in",
            "client.pem",
            "-certfile",
            "ca.pem",
            "-name",
            "wsbeat-device",
            "-passout",
            &format!("pass:{P12_PASSWORD}"),
            "-out",
            "client.p12",
        ],
    );
    let client_p12 = read(dir, "client.p12");
    let expired = make_expired(&ca);
    let other_ca = make_ca(dir, "other-ca", "unrelated test CA");
    let other_client = make_leaf(
        dir,
        &other_ca,
        "other-client",
        "wsbeat-device",
        4,
        CLIENT_EXT,
    );
    Certs {
        ca_pem: ca.pem,
        server,
        wrong_host,
        expired,
        client,
        client_p12,
        other_ca_pem: other_ca.pem,
        other_client,
        took: started.elapsed(),
    }
}
