//! Builds of the `wsbeat` CLI the benchmark measures, and binary sizes (x86-64 here; armv7 and
//! aarch64 read from what cross/build.sh left in target/).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

/// A built binary, copied out of cargo's output so that a later build with other features
/// cannot replace it.
#[derive(Clone, Debug)]
pub struct Built {
    pub path: PathBuf,
    pub bytes: u64,
    pub stripped: bool,
}

/// `cargo build --profile PROFILE --bin wsbeat` with or without TLS, copied to
/// `target/bench/NAME`. `static_libc`: linked with `-C target-feature=+crt-static` for the
/// host triple (glibc's static libc; its `files` and `dns` resolvers are built in), in its own
/// target directory so that the other builds stay cached.
pub fn build_cli(
    root: &Path,
    profile: &str,
    tls: bool,
    static_libc: bool,
    name: &str,
) -> Result<Built, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--quiet", "--profile", profile, "--bin", "wsbeat"])
        .arg("--message-format=json-render-diagnostics");
    if !tls {
        cmd.args(["--no-default-features", "--features", "cli"]);
    }
    if static_libc {
        let host = host_triple()?;
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+crt-static");
        cmd.env("RUSTFLAGS", flags.trim())
            .args(["--target", &host])
            .arg("--target-dir")
            .arg(target_dir(root).join("static-libc"));
    }
    let started = Instant::now();
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --profile {profile} ({}) failed",
            if tls { "default features" } else { "no TLS" }
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let exe = text
        .lines()
        .filter(|l| l.contains("\"executable\":\""))
        .filter_map(|l| l.split("\"executable\":\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .next_back()
        .ok_or("cargo reported no executable")?
        .to_string();
    let target = target_dir(root);
    let dest_dir = target.join("bench");
    std::fs::create_dir_all(&dest_dir).map_err(|e| e.to_string())?;
    let dest = dest_dir.join(name);
    let _ = std::fs::remove_file(&dest);
    std::fs::copy(&exe, &dest).map_err(|e| format!("copy {exe}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    if secs > 5.0 {
        eprintln!("  built {name} in {secs:.0} s");
    }
    describe(&dest)
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV printed no host".into())
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// Size and whether a symbol table is left.
pub fn describe(path: &Path) -> Result<Built, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Built {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        stripped: !contains(&bytes, b".symtab\0"),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A cross-built binary found in target/.
#[derive(Clone, Debug)]
pub struct CrossBin {
    pub target: String,
    pub what: String,
    pub bytes: u64,
    pub tls: String,
    pub stripped: bool,
    pub age: String,
}

/// What cross/build.sh left: `target/<triple>/release-small/wsbeat`, its `--static-libc` build
/// in `target/static-libc/`, and the bare-tungstenite floor
/// `cross/floor/target/<triple>/release-small/wsfloor` (x86-64 too, for comparison).
pub fn cross_sizes(root: &Path) -> Vec<CrossBin> {
    cross_bins(root)
}

/// The bare-tungstenite floor built by cross/build.sh for this machine, if there is one.
pub fn floor_binary(root: &Path) -> Option<PathBuf> {
    [
        "cross/floor/target/release-small/wsfloor",
        "cross/floor/target/x86_64-unknown-linux-gnu/release-small/wsfloor",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.exists())
}

fn cross_bins(root: &Path) -> Vec<CrossBin> {
    let target = target_dir(root);
    let mut out = Vec::new();
    for triple in [
        "x86_64-unknown-linux-gnu",
        "armv7-unknown-linux-gnueabihf",
        "aarch64-unknown-linux-gnu",
    ] {
        for (what, path) in [
            (
                "wsbeat",
                target.join(triple).join("release-small").join("wsbeat"),
            ),
            (
                "wsbeat static",
                target
                    .join("static-libc")
                    .join(triple)
                    .join("release-small")
                    .join("wsbeat"),
            ),
            (
                "wsfloor",
                root.join("cross/floor/target")
                    .join(triple)
                    .join("release-small")
                    .join("wsfloor"),
            ),
        ] {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let tls = if what == "wsbeat static" {
                "no TLS, static glibc"
            } else if contains(&bytes, b"libssl.so") {
                "system OpenSSL (dynamic)"
            } else if contains(&bytes, b"OpenSSL 3") || contains(&bytes, b"ssl3_read_bytes") {
                "vendored OpenSSL (static)"
            } else {
                "no TLS"
            };
            let age = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map(|d| format!("built {} min ago", d.as_secs() / 60))
                .unwrap_or_default();
            out.push(CrossBin {
                target: triple.into(),
                what: what.into(),
                bytes: bytes.len() as u64,
                tls: tls.into(),
                stripped: !contains(&bytes, b".symtab\0"),
                age,
            });
        }
    }
    out
}
