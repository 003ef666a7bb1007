//! Builds what the C tests run, once per test binary: the C library through
//! `capi/build.sh` (its own target directory, `target/capi`, so the nested cargo never waits
//! on the outer one's lock), then the C test runner in each variant.
//!
//! Nothing here skips: without `cc`, `bash` or (natively) Valgrind the tests fail, saying
//! what to install. Under `cross/test.sh` (`CROSS_TEST_RUNNER` set) the library and runner
//! are built for the target with its cross gcc and run through qemu, plain only: neither
//! AddressSanitizer nor Valgrind runs under qemu-user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How a C test binary runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Linked against the shared library (natively) or the static one (cross, under qemu).
    Plain,
    /// Compiled with `-fsanitize=address` (LeakSanitizer included), static library.
    Asan,
    /// The plain binary under `valgrind --leak-check=full --error-exitcode=1`.
    Valgrind,
}

/// The built library and runners.
pub struct Built {
    pub root: PathBuf,
    /// The install prefix (include/, lib/, lib/pkgconfig/).
    pub prefix: PathBuf,
    pub plain: PathBuf,
    pub asan: Option<PathBuf>,
    /// The qemu command line for target binaries (cross only).
    pub runner: Vec<String>,
    /// The C compiler for the target.
    pub cc: String,
    /// Whether the library was built with TLS.
    pub tls: bool,
}

impl Built {
    /// The variants this run covers.
    pub fn variants(&self) -> Vec<Variant> {
        if self.asan.is_some() {
            vec![Variant::Plain, Variant::Asan, Variant::Valgrind]
        } else {
            vec![Variant::Plain]
        }
    }

    pub fn is_cross(&self) -> bool {
        !self.runner.is_empty()
    }
}

static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();

/// Builds once; every test shares the result (a failed build fails every test with its log).
pub fn built() -> &'static Built {
    match BUILT.get_or_init(build) {
        Ok(b) => b,
        Err(e) => panic!("building the C library or the C tests failed:\n{e}"),
    }
}

/// Runs `cmd`, returning its stdout, or an error with everything it printed.
pub fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        ))
    }
}

fn require(tool: &str, install: &str) -> Result<(), String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` not found: the C API tests need it ({install})"
        ))
    }
}

fn build() -> Result<Built, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runner: Vec<String> = std::env::var("CROSS_TEST_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let (target, cc) = match std::env::consts::ARCH {
        _ if runner.is_empty() => (None, std::env::var("CC").unwrap_or_else(|_| "cc".into())),
        "arm" => (
            Some("armv7-unknown-linux-gnueabihf"),
            "arm-linux-gnueabihf-gcc".into(),
        ),
        "aarch64" => (
            Some("aarch64-unknown-linux-gnu"),
            "aarch64-linux-gnu-gcc".into(),
        ),
        other => return Err(format!("no C cross compiler known for {other}")),
    };
    require("bash", "apt-get install bash")?;
    require(&cc, "apt-get install gcc, or cross/setup-debian.sh")?;
    if runner.is_empty() {
        require("valgrind", "apt-get install valgrind")?;
        require("pkg-config", "apt-get install pkg-config")?;
    }
    let target_dir = root.join("target").join("capi");
    let prefix = target_dir
        .join("test-prefix")
        .join(target.unwrap_or("native"));
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("capi/build.sh"));
    // Cross: no TLS, so the nested build does not compile OpenSSL for the target again; the
    // C tests exercise no TLS connection either way.
    let tls = target.is_none();
    if let Some(t) = target {
        cmd.args([t, "--no-tls"]);
    }
    cmd.args(["--profile", "dev", "--prefix"])
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(&root);
    run(&mut cmd, "capi/build.sh")?;

    let out = target_dir.join("test-bin").join(target.unwrap_or("native"));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let native_libs = libs_private(&prefix)?;
    let plain = out.join("capi_test");
    let mut args = vec![];
    if runner.is_empty() {
        // Natively the plain runner uses the shared library, found through its rpath.
        let lib = prefix.join("lib");
        args.push(format!("-L{}", lib.display()));
        args.push(format!("-Wl,-rpath,{}", lib.display()));
        args.push("-lwsbeat".into());
        args.push("-lpthread".into());
    } else {
        args.push(prefix.join("lib/libwsbeat.a").display().to_string());
        args.extend(native_libs.clone());
    }
    compile(&root, &cc, &prefix, tls, &[], &args, &plain)?;
    let asan = if runner.is_empty() {
        let asan = out.join("capi_test_asan");
        let mut args = vec![prefix.join("lib/libwsbeat.a").display().to_string()];
        args.extend(native_libs);
        let flags = ["-fsanitize=address", "-fno-omit-frame-pointer"];
        compile(&root, &cc, &prefix, tls, &flags, &args, &asan)?;
        Some(asan)
    } else {
        None
    };
    Ok(Built {
        root,
        prefix,
        plain,
        asan,
        runner,
        cc,
        tls,
    })
}

/// The `Libs.private` of the installed pkg-config file: what a static link needs.
fn libs_private(prefix: &Path) -> Result<Vec<String>, String> {
    let pc = prefix.join("lib/pkgconfig/wsbeat.pc");
    let text = std::fs::read_to_string(&pc).map_err(|e| format!("{}: {e}", pc.display()))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Libs.private:"))
        .ok_or_else(|| format!("{}: no Libs.private", pc.display()))?;
    Ok(line.split_whitespace().map(String::from).collect())
}

fn compile(
    root: &Path,
    cc: &str,
    prefix: &Path,
    tls: bool,
    flags: &[&str],
    link: &[String],
    out: &Path,
) -> Result<(), String> {
    let dir = root.join("tests/capi");
    let mut cmd = Command::new(cc);
    cmd.args([
        "-std=c99",
        "-g",
        "-O1",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ])
    .args(flags)
    .arg(format!("-I{}", prefix.join("include").display()));
    if tls {
        cmd.arg("-DWSBEAT_FEATURE_TLS");
    }
    for file in [
        "main.c",
        "cases_api.c",
        "cases_net.c",
        "cases_misc.c",
        "cases_delivery.c",
    ] {
        cmd.arg(dir.join(file));
    }
    cmd.arg("-o").arg(out).args(link);
    run(&mut cmd, &format!("compiling {}", out.display())).map(drop)
}
