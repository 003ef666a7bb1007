//! What wsbeat costs a device, measured on loopback in one run and printed as one table:
//! throughput overhead against a bare tungstenite loop, idle wake-ups, CPU and syscalls, memory
//! (peak RSS of the CLI, heap allocations per idle heartbeat), dead-link detection and
//! reconnect timing against their bounds, binary size, and the same for other clients (Python
//! `websocket-client` and `websockets`, Node `ws`, `websocat`) where they are installed.
//!
//! ```text
//! cargo run --release --example bench                       # full run, 2-3 minutes
//! cargo run --release --example bench -- --quick            # CI-sized, under a minute
//! cargo run --release --example bench -- --markdown bench/results.md
//! bench/run.sh                                              # installs the peers, then the above
//! ```
//!
//! Options: `--quick`, `--markdown PATH`, `--svg PATH` (default bench/idle.svg on a full run,
//! none with --quick), `--no-svg`, `--skip-build` (use the CLI binaries already in
//! target/bench/), `--no-peers`, `--diagnose` (extra runs that isolate overhead causes, and
//! backtraces of allocations), `--only SECTION,...` (build, overhead, idle, detect, alloc,
//! peers, memory, echo). `--profile-run WHO CASE SECS` runs one client alone on one workload
//! for perf or strace. See bench/README.md for what each figure means.
//!
//! Internal modes (this binary runs itself as an isolated idle client):
//! `--idle-child URL PING_MS LIFETIME_S`, `--bare-idle-child URL PING_MS LIFETIME_S`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "../bench/src/artifacts.rs"]
mod artifacts;
#[path = "../bench/src/idle.rs"]
mod idle;
#[path = "../bench/src/memory.rs"]
mod memory;
#[path = "../bench/src/overhead.rs"]
mod overhead;
#[path = "../bench/src/peers.rs"]
mod peers;
#[path = "../bench/src/procfs.rs"]
mod procfs;
#[path = "../bench/src/recovery.rs"]
mod recovery;
#[path = "../bench/src/report.rs"]
mod report;
#[path = "../bench/src/server.rs"]
mod server;

use overhead::{Case, ReadBufKib, Who};
use report::{OverheadCase, PeerResult, Results};

// ---------------------------------------------------------------- counting allocator

/// Counts allocations of threads that asked for it ([`set_counting`]); optionally records
/// a backtrace for each.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static TRACING: Cell<bool> = const { Cell::new(false) };
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

static TRACES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn note_alloc(size: usize) {
    let counting = COUNTING.try_with(|c| c.get()).unwrap_or(false);
    if !counting || IN_HOOK.try_with(|c| c.get()).unwrap_or(true) {
        return;
    }
    ALLOCS.with(|c| c.set(c.get() + 1));
    BYTES.with(|c| c.set(c.get() + size as u64));
    if TRACING.with(|c| c.get()) {
        IN_HOOK.with(|c| c.set(true));
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        if let Ok(mut t) = TRACES.lock() {
            t.push(bt);
        }
        IN_HOOK.with(|c| c.set(false));
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping touches
// only const-initialised thread locals without destructors (no allocation, no re-entry),
// except backtrace capture, which is guarded by IN_HOOK against recursion.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn set_counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

fn thread_allocs() -> (u64, u64) {
    (ALLOCS.with(|c| c.get()), BYTES.with(|c| c.get()))
}

fn set_tracing(on: bool) {
    TRACING.with(|c| c.set(on));
}

/// The recorded backtraces, reduced to their frames in wsbeat/tungstenite/bytes, counted.
fn take_traces() -> Vec<(u64, String)> {
    let traces = std::mem::take(&mut *TRACES.lock().unwrap_or_else(|e| e.into_inner()));
    let mut counted: Vec<(u64, String)> = Vec::new();
    for t in traces {
        let frames: Vec<String> = t
            .lines()
            .map(str::trim)
            .filter_map(|l| l.split_once(": ").map(|(_, f)| f.to_string()))
            .filter(|f| {
                (f.contains("wsbeat") || f.contains("tungstenite") || f.contains("bytes::"))
                    && !f.contains("bench::")
            })
            .map(|f| {
                // Drop the hash suffix.
                match f.rfind("::h") {
                    Some(i) if f.len() - i == 19 => f[..i].to_string(),
                    _ => f,
                }
            })
            .take(8)
            .collect();
        let key = if frames.is_empty() {
            "(no wsbeat/tungstenite/bytes frame: the caller's own allocation, e.g. its message Vec)"
                .to_string()
        } else {
            frames.join(" ← ")
        };
        match counted.iter_mut().find(|(_, k)| *k == key) {
            Some(e) => e.0 += 1,
            None => counted.push((1, key)),
        }
    }
    counted.sort_by_key(|e| std::cmp::Reverse(e.0));
    counted
}

// ---------------------------------------------------------------- options

const SECTIONS: [&str; 8] = [
    "build", "overhead", "idle", "detect", "alloc", "peers", "memory", "echo",
];

struct Opts {
    quick: bool,
    markdown: Option<PathBuf>,
    svg: Option<PathBuf>,
    skip_build: bool,
    peers: bool,
    diagnose: bool,
    only: Vec<String>,
}

impl Opts {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn parse_opts(root: &Path, args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        quick: false,
        markdown: None,
        svg: None,
        skip_build: false,
        peers: true,
        diagnose: false,
        only: Vec::new(),
    };
    let mut svg_set = false;
    let mut no_svg = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--markdown" => o.markdown = Some(it.next().ok_or("--markdown needs a PATH")?.into()),
            "--svg" => {
                o.svg = Some(it.next().ok_or("--svg needs a PATH")?.into());
                svg_set = true;
            }
            "--no-svg" => no_svg = true,
            "--skip-build" => o.skip_build = true,
            "--no-peers" => o.peers = false,
            "--diagnose" => o.diagnose = true,
            "--only" => {
                for s in it
                    .next()
                    .ok_or("--only needs SECTION[,SECTION...]")?
                    .split(',')
                {
                    if !SECTIONS.contains(&s) {
                        return Err(format!(
                            "--only: unknown section {s:?} (one of {})",
                            SECTIONS.join(", ")
                        ));
                    }
                    o.only.push(s.to_string());
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: cargo run --release --example bench -- [--quick] [--markdown PATH]\n\
                     \x20      [--svg PATH | --no-svg] [--skip-build] [--no-peers] [--diagnose]\n\
                     \x20      [--only {}]\n\
                     \x20  or: ... -- --profile-run wsbeat|bare|bare-buffered|bare-wsbeat-config|wsbeat-poll64|wsbeat-readbuf{{8,16,24,32,64,128}}k \
                     echo32|echo64k|stream1k|stream32 SECS   (one client alone, for perf/strace)",
                    SECTIONS.join(",")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    if no_svg {
        o.svg = None;
    } else if !svg_set && !o.quick && o.only.is_empty() {
        o.svg = Some(root.join("bench/idle.svg"));
    }
    Ok(o)
}

/// `--profile-run WHO CASE SECS`: one client alone on one workload, for perf or strace.
fn profile_run(args: &[String]) -> i32 {
    let who = match args.first().map(String::as_str) {
        Some("wsbeat") => Who::Wsbeat,
        Some("bare") => Who::Bare,
        Some("bare-buffered") => Who::BareBuffered,
        Some("bare-wsbeat-config") => Who::BareWsbeatConfig,
        Some("wsbeat-poll64") => Who::WsbeatPollEvery64,
        Some(w) if w.starts_with("wsbeat-readbuf") => {
            match ReadBufKib::ALL
                .into_iter()
                .find(|k| w == format!("wsbeat-readbuf{}k", k.kib()))
            {
                Some(k) => Who::WsbeatReadBuf(k),
                None => return 2,
            }
        }
        _ => return 2,
    };
    let case = match args.get(1).map(String::as_str) {
        Some("echo32") => Case::Echo {
            size: 32,
            count: 20_000,
        },
        Some("echo64k") => Case::Echo {
            size: 64 << 10,
            count: 2_000,
        },
        Some("stream1k") => Case::Stream {
            size: 1 << 10,
            secs: 1.0,
        },
        Some("stream32") => Case::Stream {
            size: 32,
            secs: 1.0,
        },
        _ => return 2,
    };
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    match overhead::profile(who, case, secs) {
        Ok((rate, cpu, allocs)) => {
            println!(
                "{} {}: {rate:.0} msg/s, client thread {cpu:.2} µs CPU and {allocs:.2} \
                 allocations per message",
                who.label(),
                case.label()
            );
            0
        }
        Err(e) => {
            eprintln!("profile: {e}");
            1
        }
    }
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--idle-child") => std::process::exit(idle::wsbeat_child(&args[2..])),
        Some("--bare-idle-child") => std::process::exit(idle::bare_child(&args[2..])),
        Some("--profile-run") => {
            let _ = overhead::ALLOC_PROBE.set((thread_allocs, set_counting));
            std::process::exit(profile_run(&args[2..]))
        }
        _ => {}
    }
    let _ = overhead::ALLOC_PROBE.set((thread_allocs, set_counting));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let opts = match parse_opts(&root, &args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: debug build; use `cargo run --release --example bench`");
    }
    let started = Instant::now();
    let out_dir = root.join("bench/out");
    let _ = std::fs::create_dir_all(&out_dir);
    let mut r = Results {
        quick: opts.quick,
        machine: Some(procfs::machine()),
        load_start: procfs::loadavg(),
        rustc: Command::new("rustc")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        ..Default::default()
    };
    r.revision = revision(&root);
    r.commands.push(format!(
        "cargo run --release --example bench --{}",
        args.iter()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>()
    ));
    let q = opts.quick;

    // 1. Builds: the CLI for the memory figures, release-small for the sizes.
    let mut cli_bins: Vec<(&str, Result<PathBuf, String>)> = Vec::new();
    let need_cli =
        opts.wants("build") || opts.wants("memory") || opts.wants("idle") || opts.wants("echo");
    if need_cli {
        let skip = opts.skip_build || !opts.wants("build");
        step(&format!(
            "{} the wsbeat CLI (release and release-small, with and without TLS)",
            if skip { "using" } else { "building" }
        ));
        for (profile, tls, static_libc, name, mem_label) in [
            (
                "release",
                false,
                false,
                "wsbeat-release-notls",
                Some(report::MEM_RELEASE),
            ),
            (
                "release",
                true,
                false,
                "wsbeat-release-tls",
                Some(report::MEM_RELEASE_TLS),
            ),
            (
                "release-small",
                false,
                false,
                "wsbeat-small-notls",
                Some(report::MEM_SMALL),
            ),
            (
                "release-small",
                false,
                true,
                "wsbeat-small-notls-static",
                Some(report::MEM_SMALL_STATIC),
            ),
            ("release-small", true, false, "wsbeat-small-tls", None),
        ] {
            let built = if skip {
                artifacts::describe(&artifacts::target_dir(&root).join("bench").join(name))
            } else {
                artifacts::build_cli(&root, profile, tls, static_libc, name)
            };
            if let Err(e) = &built {
                eprintln!("  {name}: {e}");
            }
            if let Some(label) = mem_label {
                cli_bins.push((label, built.clone().map(|b| b.path)));
            }
            if profile == "release-small" && !static_libc {
                r.sizes
                    .push((if tls { "TLS" } else { "no TLS" }.into(), built));
            }
        }
        r.cross = artifacts::cross_sizes(&root);
        r.commands.push(
            "cargo build --release --bin wsbeat [--no-default-features --features cli]".into(),
        );
        r.commands.push(
            "cargo build --profile release-small --bin wsbeat [--no-default-features --features cli]"
                .into(),
        );
        r.commands.push(
            "RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile release-small --bin wsbeat \
             --no-default-features --features cli --target x86_64-unknown-linux-gnu"
                .into(),
        );
    }
    let cli_release = cli_bins
        .iter()
        .find(|(l, _)| *l == report::MEM_RELEASE)
        .and_then(|(_, b)| b.as_ref().ok().cloned());

    // 2. Overhead, alone on the machine (as far as this run goes).
    if opts.wants("overhead") {
        run_overhead(&opts, &mut r);
    }

    // 3. Idle window, with the light tests running meanwhile.
    let window = if q { 15 } else { 60 };
    let ping_s = 5;
    r.idle_window_s = window;
    r.idle_ping_s = ping_s;
    let (found, missing) =
        if opts.peers && (opts.wants("idle") || opts.wants("peers") || opts.wants("echo")) {
            peers::discover(&root.join("bench"))
        } else {
            (Vec::new(), vec!["all peers: not selected".to_string()])
        };
    r.peers_missing = missing;
    for p in &found {
        r.peers.push(PeerResult {
            kind: Some(p.kind),
            name: p.name.into(),
            version: p.version.clone(),
            detect_settings: peers::keepalive(p.kind, 1, true).2,
            ..Default::default()
        });
    }
    let idle_run = if opts.wants("idle") {
        let mut subjects = vec![idle::Subject::wsbeat(ping_s)];
        if let Some(cli) = &cli_release {
            subjects.push(idle::Subject::cli(cli, ping_s));
        }
        subjects.push(idle::Subject::bare(ping_s));
        subjects.extend(found.iter().map(|p| idle::Subject::peer(p, ping_s)));
        let strace = idle::have_strace();
        if !strace {
            r.notes
                .push("strace not found: no syscall counts (apt-get install -y strace)".into());
        }
        step(&format!(
            "idle: {} clients x {} instances, {window} s window, ping every {ping_s} s",
            subjects.len(),
            if strace { 2 } else { 1 }
        ));
        let connect_max = Duration::from_secs(20);
        let settle = Duration::from_secs(2);
        let lifetime = connect_max.as_secs() + settle.as_secs() + window + 120;
        let mut run = idle::start(subjects, &out_dir, lifetime, strace);
        run.wait_connected(connect_max);
        std::thread::sleep(settle);
        Some(run)
    } else {
        None
    };
    let probes = idle_run.as_ref().map(|i| i.probes()).unwrap_or_default();
    let start_snap = idle::snapshot(&probes, false);
    let window_end = Instant::now() + Duration::from_secs(window);
    let end_snap = std::thread::scope(|s| {
        let sampler = idle_run.as_ref().map(|_| {
            s.spawn(|| {
                let now = Instant::now();
                if now < window_end {
                    std::thread::sleep(window_end - now);
                }
                idle::snapshot(&probes, true)
            })
        });
        run_light_tests(&opts, &mut r, &found, &cli_bins, &root);
        let snap = sampler.map(|h| h.join().expect("sampler"));
        if snap.is_some() && Instant::now() < window_end {
            step(&format!(
                "idle: waiting for the window to end ({:.0} s)",
                (window_end - Instant::now()).as_secs_f64()
            ));
        }
        snap
    });
    drop(probes);
    if let (Some(run), Some(end)) = (idle_run, end_snap) {
        r.idle_errors = run.errors.clone();
        r.idle = run.finish(&start_snap, &end);
    }

    // 4. Echo throughput of the peers and of the CLI (CPU-heavy, after the window).
    if opts.wants("echo") {
        run_echo(&opts, &mut r, &found, cli_release.as_deref());
    }

    r.load_end = procfs::loadavg();
    r.total_secs = started.elapsed().as_secs_f64();
    println!();
    println!("{}\n", r.machine_line());
    print!("{}", r.text());
    print!("{}", r.details(false));
    if let Some(path) = &opts.markdown {
        match std::fs::write(path, r.markdown()) {
            Ok(()) => eprintln!("bench: wrote {}", path.display()),
            Err(e) => eprintln!("bench: cannot write {}: {e}", path.display()),
        }
    }
    if let Some(path) = &opts.svg {
        match std::fs::write(path, r.svg()) {
            Ok(()) => eprintln!("bench: wrote {}", path.display()),
            Err(e) => eprintln!("bench: cannot write {}: {e}", path.display()),
        }
    }
}

fn run_overhead(opts: &Opts, r: &mut Results) {
    let q = opts.quick;
    let reps = if q { 3 } else { 7 };
    r.overhead_reps = reps;
    let cases = [
        (
            Case::Echo {
                size: 32,
                count: if q { 5_000 } else { 20_000 },
            },
            // Blocks of 400 messages (a few ms): load bursts on a shared machine are longer.
            if q { 12 } else { 50 },
        ),
        (
            Case::Echo {
                size: 64 << 10,
                count: if q { 500 } else { 2_000 },
            },
            if q { 5 } else { 20 },
        ),
        (
            Case::Stream {
                size: 1 << 10,
                secs: if q { 1.0 } else { 3.0 },
            },
            if q { 2 } else { 6 },
        ),
        (
            Case::Stream {
                size: 32,
                secs: if q { 1.0 } else { 3.0 },
            },
            if q { 2 } else { 6 },
        ),
    ];
    step(&format!(
        "overhead: wsbeat vs bare tungstenite, {reps} reps, each taking turns in short blocks"
    ));
    let srv = match server::Server::start(server::Mode::Echo) {
        Ok(s) => s,
        Err(e) => {
            r.notes.push(format!("overhead: server: {e}"));
            return;
        }
    };
    // Same placement for every client: the client and the server's connection threads on one
    // CPU (procfs::CLIENT_CPU/SERVER_CPU). Left to the scheduler, a rep's result depended on
    // whether it put the server thread next to the client (a 4x difference for 32-byte echo
    // on this VM, where a cross-CPU wake-up is slow); pinned apart, round trips were bound by
    // that wake-up latency. On one CPU a round trip is CPU work only, and the other CPU takes
    // the machine's other load.
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && procfs::pin_thread(&[procfs::CLIENT_CPU]);
    if pinned {
        srv.pin_connections(procfs::SERVER_CPU);
        r.overhead_pinned = true;
    }
    for (case, blocks) in cases {
        let mut whos = vec![Who::Bare, Who::Wsbeat];
        if let Case::Stream { .. } = case {
            whos.push(Who::BareBuffered);
        }
        if opts.diagnose {
            match case {
                Case::Echo { .. } => {
                    // The read buffer trades zero-filling before each read (small messages)
                    // against reads per message (large ones): every size but the default's,
                    // which is the `Wsbeat` run.
                    whos.push(Who::BareWsbeatConfig);
                    let default = wsbeat::Config::new("ws://h/").read_buffer_size;
                    whos.extend(
                        ReadBufKib::ALL
                            .into_iter()
                            .filter(|k| k.bytes() != default)
                            .map(Who::WsbeatReadBuf),
                    );
                }
                Case::Stream { .. } => whos.push(Who::WsbeatPollEvery64),
            }
        }
        let mut oc = OverheadCase {
            case,
            runs: whos.iter().map(|w| (*w, Vec::new())).collect(),
        };
        for rep in 0..reps {
            match overhead::run_rep(&srv, &whos, case, blocks, rep) {
                Ok(runs) => {
                    for (i, run) in runs.into_iter().enumerate() {
                        oc.runs[i].1.push(run);
                    }
                }
                Err(e) => r.notes.push(format!("overhead {}: {e}", case.label())),
            }
        }
        if opts.diagnose && matches!(case, Case::Echo { size: 32, .. }) {
            let n = 5;
            let _ = take_traces();
            match overhead::traced_echo(n, 32, set_tracing) {
                Ok(()) => {
                    r.echo_alloc_traces = take_traces();
                    r.echo_alloc_count = n;
                }
                Err(e) => r.notes.push(format!("traced echo: {e}")),
            }
        }
        eprintln!(
            "  {}: wsbeat {:.0}, bare {:.0} msg/s, ratio {:.3}",
            case.label(),
            oc.median(Who::Wsbeat).unwrap_or(f64::NAN),
            oc.median(Who::Bare).unwrap_or(f64::NAN),
            oc.ratio().unwrap_or(f64::NAN)
        );
        r.overhead.push(oc);
    }
    if pinned {
        procfs::pin_thread(&[]);
    }
}

/// Detection/recovery, allocations, peer detection and CLI memory: light on CPU, so they run
/// during the idle window.
fn run_light_tests(
    opts: &Opts,
    r: &mut Results,
    found: &[peers::Peer],
    cli_bins: &[(&str, Result<PathBuf, String>)],
    root: &Path,
) {
    let q = opts.quick;
    if opts.wants("detect") {
        let cycles = if q { 2 } else { 3 };
        step(&format!(
            "detection and recovery: {cycles} freeze/return cycles"
        ));
        r.detect = Some(recovery::detect_and_recover(cycles));
        match &r.detect {
            Some(Ok(c)) => {
                for c in c {
                    eprintln!(
                        "  detect {:.1} ms (bound {} ms), Connected {:+.1} ms after Reconnecting + {} ms",
                        c.detect.as_secs_f64() * 1e3,
                        recovery::bound().as_millis(),
                        c.lateness_ms(),
                        c.delay.as_millis()
                    );
                }
            }
            Some(Err(e)) => eprintln!("  failed: {e}"),
            None => {}
        }
    }
    if opts.wants("alloc") {
        step("allocations per idle heartbeat cycle");
        let alloc = recovery::allocs_per_cycle(10, thread_allocs, set_counting);
        let need_trace = matches!(&alloc, Ok(a) if a.allocs > 0);
        if let Ok(a) = &alloc {
            eprintln!("  {} allocations in {} cycles", a.allocs, a.cycles);
        }
        r.alloc = Some(alloc);
        if need_trace || opts.diagnose {
            set_tracing(true);
            let _ = recovery::allocs_per_cycle(3, thread_allocs, set_counting);
            set_tracing(false);
            r.alloc_traces = take_traces();
        }
    }
    let cap = Duration::from_secs(if q { 6 } else { 15 });
    r.peer_detect_cap_s = cap.as_secs();
    if opts.wants("peers") && !found.is_empty() {
        step("peers: frozen-server detection (in parallel, each against its own server)");
        let detections: Vec<(usize, peers::Detect)> = std::thread::scope(|s| {
            let handles: Vec<_> = found
                .iter()
                .enumerate()
                .map(|(i, p)| s.spawn(move || (i, peers::detect(p, 1, cap))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (i, d) in detections {
            match &d {
                peers::Detect::After(t, _) => {
                    eprintln!("  {}: {:.0} ms", found[i].name, t.as_secs_f64() * 1e3)
                }
                other => eprintln!("  {}: {other:?}", found[i].name),
            }
            r.peers[i].detect = Some(d);
        }
    }
    if opts.wants("memory") {
        let echoes = if q { 20 } else { 50 };
        let idle = Duration::from_secs(if q { 2 } else { 3 });
        let cli_args = ["--ping-interval", "5s", "-q"];
        let mut runs: Vec<(&str, Result<PathBuf, String>, &[&str])> = cli_bins
            .iter()
            .map(|(l, b)| (*l, b.clone(), &cli_args[..]))
            .collect();
        match artifacts::floor_binary(root) {
            Some(f) => runs.push((report::MEM_FLOOR, Ok(f), &[])),
            None => r.notes.push(
                "no wsfloor binary (cross/build.sh x86_64 --floor): no bare-tungstenite RSS floor"
                    .into(),
            ),
        }
        for (label, bin, args) in runs {
            step(&format!("CLI peak RSS ({label})"));
            let m = match bin {
                Ok(path) => memory::cli_rss(&path, args, idle, echoes),
                Err(e) => memory::CliMem {
                    error: Some(format!("not built: {e}")),
                    ..Default::default()
                },
            };
            eprintln!(
                "  idle {} KiB, after echo {} KiB{}",
                m.idle.hwm_kib,
                m.after_echo.hwm_kib,
                m.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            r.cli_mem.push((label.to_string(), m));
        }
    }
}

/// 32-byte echo of the peers and of the CLI (stdin/stdout).
/// 32-byte echo of the peers and of the CLI (stdin/stdout). The clients take turns, in a
/// rotating order, `runs` times; each gets the median of its runs.
fn run_echo(opts: &Opts, r: &mut Results, found: &[peers::Peer], cli: Option<&Path>) {
    let echo_count = if opts.quick { 5_000 } else { 20_000 };
    r.peer_echo_count = echo_count;
    r.cli_echo_count = echo_count;
    let runs = if opts.quick { 1 } else { 3 };
    let srv = match server::Server::start(server::Mode::Echo) {
        Ok(s) => s,
        Err(e) => {
            r.notes.push(format!("echo: server: {e}"));
            return;
        }
    };
    // The overhead runs' placement (see run_overhead).
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && procfs::pin_thread(&[procfs::SERVER_CPU]);
    if pinned {
        peers::PIN.store(true, std::sync::atomic::Ordering::SeqCst);
        srv.pin_connections(procfs::SERVER_CPU);
        r.echo_pinned = true;
    }
    // Index found.len() is the wsbeat CLI.
    let n = found.len() + usize::from(cli.is_some());
    let name = |i: usize| {
        if i < found.len() {
            found[i].name
        } else {
            "wsbeat CLI"
        }
    };
    step(&format!(
        "echo 32 B x{echo_count}: {} clients taking turns, {runs} runs each",
        n
    ));
    let mut results: Vec<(Vec<f64>, Option<String>)> = vec![(Vec::new(), None); n];
    for run in 0..runs {
        for k in 0..n {
            let i = (k + run) % n;
            let res = if i < found.len() {
                peers::echo(&found[i], echo_count)
            } else {
                let mut c = Command::new(cli.expect("cli"));
                c.args([&srv.url(), "--ping-interval", "5s", "-q"]);
                peers::stdio_echo(c, echo_count, 32)
            };
            match res {
                Ok(v) => results[i].0.push(v),
                Err(e) => results[i].1 = Some(e),
            }
        }
    }
    for (i, (ok, err)) in results.into_iter().enumerate() {
        let res = if ok.is_empty() {
            Err(err.unwrap_or_default())
        } else {
            Ok(overhead::median(&ok))
        };
        match &res {
            Ok(v) => eprintln!("  {}: {v:.0} msg/s", name(i)),
            Err(e) => eprintln!("  {}: failed: {e}", name(i)),
        }
        if i < found.len() {
            if found[i].kind == peers::Kind::Websocat {
                r.cli_echo.push(("websocat".into(), res.clone()));
            }
            r.peers[i].echo = Some(res);
        } else {
            r.cli_echo.push(("wsbeat CLI (no TLS)".into(), res));
        }
    }
    if pinned {
        peers::PIN.store(false, std::sync::atomic::Ordering::SeqCst);
        procfs::pin_thread(&[]);
    }
}

/// `commit abc1234` (+ "with uncommitted changes in src/").
fn revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--", "src", "Cargo.toml"])
                .is_some_and(|s| !s.is_empty());
            format!(
                "at commit {c}{}",
                if dirty {
                    " with uncommitted changes in src/ or Cargo.toml"
                } else {
                    ""
                }
            )
        }
        None => "(no git revision)".into(),
    }
}

fn step(what: &str) {
    eprintln!("bench: {what}");
}
