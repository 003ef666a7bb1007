//! Everything measured, as one table (plain text and Markdown) plus notes, raw numbers, and a
//! small hand-written SVG of idle wake-ups and peak RSS per client.

use std::fmt::Write as _;

use crate::artifacts::{Built, CrossBin};
use crate::idle::IdleResult;
use crate::memory::CliMem;
use crate::overhead::{median, Case, Run, Who};
use crate::peers::{Detect, Kind};
use crate::procfs::Machine;
use crate::recovery::{self, AllocResult, Cycle};

/// Peers in column order.
pub const PEER_COLUMNS: [(Kind, &str); 4] = [
    (Kind::WebsocketClient, "websocket-client"),
    (Kind::Websockets, "websockets"),
    (Kind::NodeWs, "Node ws"),
    (Kind::Websocat, "websocat"),
];

pub struct OverheadCase {
    pub case: Case,
    pub runs: Vec<(Who, Vec<Run>)>,
}

impl OverheadCase {
    pub fn median(&self, who: Who) -> Option<f64> {
        self.runs
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, r)| median(&r.iter().map(|r| r.msgs_per_s).collect::<Vec<_>>()))
    }
    fn runs_of(&self, who: Who) -> Option<&Vec<Run>> {
        self.runs.iter().find(|(w, _)| *w == who).map(|(_, r)| r)
    }

    /// `who` / bare within each rep (the two ran interleaved, under the same load).
    pub fn rep_ratios(&self, who: Who) -> Vec<f64> {
        self.rep_ratios_to(who, Who::Bare)
    }

    /// `who` / `reference` within each rep.
    pub fn rep_ratios_to(&self, who: Who, reference: Who) -> Vec<f64> {
        match (self.runs_of(who), self.runs_of(reference)) {
            (Some(a), Some(b)) => a
                .iter()
                .zip(b)
                .map(|(a, b)| a.msgs_per_s / b.msgs_per_s)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Median client CPU time per message, microseconds.
    pub fn cpu_us(&self, who: Who) -> Option<f64> {
        self.runs_of(who)
            .map(|r| median(&r.iter().map(|r| r.client_cpu_us).collect::<Vec<_>>()))
    }

    /// The median of the per-rep ratios wsbeat / bare.
    pub fn ratio(&self) -> Option<f64> {
        self.ratio_to(Who::Bare)
    }

    /// The median of the per-rep ratios wsbeat / `reference`.
    pub fn ratio_to(&self, reference: Who) -> Option<f64> {
        let r = self.rep_ratios_to(Who::Wsbeat, reference);
        (!r.is_empty()).then(|| median(&r))
    }

    /// Median socket write calls per message sent.
    pub fn writes_per_msg(&self, who: Who) -> Option<f64> {
        self.runs_of(who)
            .map(|r| median(&r.iter().map(|r| r.writes_per_msg).collect::<Vec<_>>()))
    }
}

#[derive(Default)]
pub struct PeerResult {
    pub kind: Option<Kind>,
    pub name: String,
    pub version: String,
    pub detect_settings: String,
    pub detect: Option<Detect>,
    pub echo: Option<Result<f64, String>>,
}

#[derive(Default)]
pub struct Results {
    pub quick: bool,
    pub machine: Option<Machine>,
    pub load_start: String,
    pub load_end: String,
    pub rustc: String,
    /// The wsbeat source measured: git commit, and whether src/ had uncommitted changes.
    pub revision: String,
    pub total_secs: f64,
    pub commands: Vec<String>,
    pub overhead: Vec<OverheadCase>,
    pub overhead_reps: usize,
    /// Client thread pinned to CPU 0, server connection threads to CPU 1.
    pub overhead_pinned: bool,
    /// The peers' and the CLI's echo ran with the same placement.
    pub echo_pinned: bool,
    pub idle: Vec<IdleResult>,
    pub idle_window_s: u64,
    pub idle_ping_s: u64,
    pub idle_errors: Vec<String>,
    pub cli_mem: Vec<(String, CliMem)>,
    pub cli_echo_count: u64,
    pub alloc: Option<Result<AllocResult, String>>,
    pub alloc_traces: Vec<(u64, String)>,
    /// With --diagnose: where the allocations of wsbeat echo round trips come from.
    pub echo_alloc_traces: Vec<(u64, String)>,
    pub echo_alloc_count: u64,
    pub detect: Option<Result<Vec<Cycle>, String>>,
    pub peers: Vec<PeerResult>,
    pub peers_missing: Vec<String>,
    pub peer_echo_count: u64,
    pub peer_detect_cap_s: u64,
    pub cli_echo: Vec<(String, Result<f64, String>)>,
    pub sizes: Vec<(String, Result<Built, String>)>,
    pub cross: Vec<CrossBin>,
    pub notes: Vec<String>,
}

fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISS"
    }
}

const DASH: &str = "–";

/// Labels of the CLI memory runs.
pub const MEM_RELEASE: &str = "release, no TLS";
pub const MEM_RELEASE_TLS: &str = "release, TLS";
pub const MEM_SMALL: &str = "release-small, no TLS";
pub const MEM_SMALL_STATIC: &str = "release-small, no TLS, static libc";
pub const MEM_FLOOR: &str = "wsfloor (bare tungstenite), release-small";

/// The table: a header and rows of cells.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Results {
    fn idle_of(&self, name: &str) -> Option<&IdleResult> {
        self.idle
            .iter()
            .find(|r| r.name == name && r.error.is_none())
    }

    fn peer(&self, kind: Kind) -> Option<&PeerResult> {
        self.peers.iter().find(|p| p.kind == Some(kind))
    }

    /// wsbeat, the CLI, bare tungstenite and the four peers, for a row computed per client
    /// name (as in the idle results).
    fn client_cells(&self, f: impl Fn(&str) -> String) -> Vec<String> {
        let mut v = vec![f("wsbeat"), f("wsbeat CLI"), f("bare tungstenite")];
        for (_, name) in PEER_COLUMNS {
            v.push(f(name));
        }
        v
    }

    fn cli_mem(&self, label: &str) -> Option<&CliMem> {
        self.cli_mem
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, m)| m)
    }

    pub fn table(&self) -> Table {
        let mut header = vec![
            "measure".to_string(),
            "wsbeat".into(),
            "wsbeat CLI".into(),
            "bare tungstenite".into(),
        ];
        header.extend(PEER_COLUMNS.iter().map(|(_, n)| n.to_string()));
        header.push("goal".into());
        header.push("result".into());
        let ncols = header.len();
        let mut rows = Vec::new();
        // A row with the given leading cells, dashes up to goal and result.
        let row = |cells: Vec<String>, goal: &str, result: String| {
            let mut r = cells;
            while r.len() < ncols - 2 {
                r.push(DASH.into());
            }
            r.push(goal.into());
            r.push(result);
            r
        };
        let reps = self.overhead_reps;

        // Overhead.
        for oc in &self.overhead {
            let label = match oc.case {
                Case::Echo { size, count } => format!(
                    "echo {} request/response x{count}, msg/s (median of {reps})",
                    crate::overhead::size_label(size)
                ),
                Case::Stream { size, secs } => format!(
                    "stream {} for {secs} s, msg/s the server received (median of {reps})",
                    crate::overhead::size_label(size)
                ),
            };
            let mut cells = vec![
                label,
                oc.median(Who::Wsbeat).map(thousands).unwrap_or(DASH.into()),
                DASH.into(),
                oc.median(Who::Bare).map(thousands).unwrap_or(DASH.into()),
            ];
            let is_small_echo = matches!(oc.case, Case::Echo { size: 32, .. });
            for (kind, _) in PEER_COLUMNS {
                cells.push(
                    match (is_small_echo, self.peer(kind).and_then(|p| p.echo.as_ref())) {
                        // websocat is driven through its stdin and stdout (see the CLI row).
                        (true, Some(Ok(v))) if kind == Kind::Websocat => {
                            format!("{} (stdio)", thousands(*v))
                        }
                        (true, Some(Ok(v))) => thousands(*v),
                        (true, Some(Err(_))) => "failed".into(),
                        _ => DASH.into(),
                    },
                );
            }
            // Streaming must beat the bare per-message loop (it coalesces, the bare loop
            // flushes per message); the hand-coalesced bare loop is reported beside it.
            let streaming = matches!(oc.case, Case::Stream { .. });
            let goal = if streaming { 1.0 } else { 0.97 };
            let mut result = match oc.ratio() {
                Some(r) => format!("{r:.3} {}", verdict(r >= goal)),
                None => DASH.into(),
            };
            if let Some(r) = oc.ratio_to(Who::BareBuffered) {
                result.push_str(&format!("; {r:.3} of bare write+flush/1 ms"));
            }
            let goal = if streaming {
                "wsbeat/bare ≥ 1.0"
            } else {
                "wsbeat/bare ≥ 0.97"
            };
            rows.push(row(cells, goal, result));
        }
        if !self.overhead.is_empty() {
            let cells: Vec<String> = self
                .overhead
                .iter()
                .map(|oc| {
                    let f = |w| {
                        oc.writes_per_msg(w)
                            .map(|v| format!("{v:.3}"))
                            .unwrap_or(DASH.into())
                    };
                    let mut cell = format!("{} / {}", f(Who::Wsbeat), f(Who::Bare));
                    if oc.writes_per_msg(Who::BareBuffered).is_some() {
                        cell.push_str(&format!(" / {}", f(Who::BareBuffered)));
                    }
                    cell
                })
                .collect();
            let labels: Vec<String> = self.overhead.iter().map(|oc| oc.case.label()).collect();
            rows.push(row(
                vec![
                    format!(
                        "socket write calls per message sent, wsbeat / bare [/ bare write+flush every 1 ms]: {} (medians)",
                        labels.join("; ")
                    ),
                    cells.join("; "),
                ],
                DASH,
                DASH.into(),
            ));
        }
        if !self.overhead.is_empty() {
            let cells: Vec<String> = self
                .overhead
                .iter()
                .map(|oc| {
                    let f = |w| {
                        oc.cpu_us(w)
                            .map(|v| format!("{v:.2}"))
                            .unwrap_or(DASH.into())
                    };
                    format!("{} / {}", f(Who::Wsbeat), f(Who::Bare))
                })
                .collect();
            let ratios: Vec<String> = self
                .overhead
                .iter()
                .map(|oc| match (oc.cpu_us(Who::Bare), oc.cpu_us(Who::Wsbeat)) {
                    (Some(b), Some(w)) => format!("{:.2} {}", b / w, verdict(b / w >= 0.97)),
                    _ => DASH.into(),
                })
                .collect();
            let labels: Vec<String> = self.overhead.iter().map(|oc| oc.case.label()).collect();
            rows.push(row(
                vec![
                    format!(
                        "client thread CPU µs per message, wsbeat / bare: {} (medians)",
                        labels.join("; ")
                    ),
                    cells.join("; "),
                ],
                "bare/wsbeat CPU ≥ 0.97",
                ratios.join("; "),
            ));
        }
        if !self.cli_echo.is_empty() {
            let get = |name: &str| {
                self.cli_echo
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| match r {
                        Ok(v) => thousands(*v),
                        Err(_) => "failed".into(),
                    })
                    .unwrap_or(DASH.into())
            };
            let mut cells = vec![
                format!(
                    "CLI: echo 32 B lines through stdin/stdout x{}, msg/s",
                    self.cli_echo_count
                ),
                DASH.into(),
                get("wsbeat CLI (no TLS)"),
            ];
            for _ in 0..4 {
                cells.push(DASH.into());
            }
            cells.push(get("websocat"));
            rows.push(row(cells, DASH, DASH.into()));
        }

        // Idle.
        let p = self.idle_ping_s;
        let window = self
            .idle
            .iter()
            .find(|r| r.error.is_none())
            .map(|r| r.window_s)
            .unwrap_or(self.idle_window_s as f64);
        let mut cells = vec![format!(
            "idle {window:.0} s, ping every {p} s: voluntary context switches per ping interval (total)"
        )];
        cells.extend(self.client_cells(|n| match self.idle_of(n) {
            Some(r) => format!(
                "{:.1} ({})",
                r.cpu.voluntary as f64 * p as f64 / r.window_s,
                r.cpu.voluntary
            ),
            None => DASH.into(),
        }));
        let result = match self.idle_of("wsbeat") {
            Some(r) => {
                let per = r.cpu.voluntary as f64 * p as f64 / r.window_s;
                // One extra switch may fall in the window from its edges.
                format!("{per:.2} {}", verdict(r.cpu.voluntary <= 2 * r.pings + 1))
            }
            None => DASH.into(),
        };
        rows.push(row(cells, "≤ 2 per interval (the ping, its pong)", result));

        let mut cells = vec!["idle: involuntary context switches (total)".to_string()];
        cells.extend(self.client_cells(|n| {
            self.idle_of(n)
                .map(|r| r.cpu.involuntary.to_string())
                .unwrap_or(DASH.into())
        }));
        rows.push(row(cells, DASH, DASH.into()));

        let mut cells = vec!["idle: CPU time, ms per minute (all threads)".to_string()];
        cells.extend(self.client_cells(|n| {
            self.idle_of(n)
                .map(|r| format!("{:.2}", r.cpu_ms_per_min()))
                .unwrap_or(DASH.into())
        }));
        let result = match self.idle_of("wsbeat") {
            Some(r) => format!(
                "{:.2} {}",
                r.cpu_ms_per_min(),
                verdict(r.cpu_ms_per_min() < 5.0)
            ),
            None => DASH.into(),
        };
        rows.push(row(cells, "< 5 ms/min", result));

        let mut cells = vec!["idle: syscalls per ping interval (strace -f)".to_string()];
        cells.extend(self.client_cells(|n| {
            self.idle
                .iter()
                .find(|r| r.name == n)
                .and_then(|r| r.syscall_total().map(|t| (t, r.window_s)))
                .map(|(t, ws)| format!("{:.1}", t as f64 * p as f64 / ws))
                .unwrap_or(DASH.into())
        }));
        rows.push(row(cells, DASH, DASH.into()));

        let mut cells =
            vec!["idle: threads / pings answered by the server in the window".to_string()];
        cells.extend(self.client_cells(|n| {
            self.idle_of(n)
                .map(|r| format!("{} / {}", r.cpu.threads, r.pings))
                .unwrap_or(DASH.into())
        }));
        rows.push(row(cells, DASH, DASH.into()));

        // Memory.
        let mut cells = vec![
            "idle: peak RSS (VmHWM) of the client process, MiB [wsbeat, bare: the bench binary, which links OpenSSL]"
                .to_string(),
        ];
        cells.extend(self.client_cells(|n| {
            self.idle_of(n)
                .map(|r| mib(r.mem.hwm_kib))
                .unwrap_or(DASH.into())
        }));
        rows.push(row(cells, DASH, DASH.into()));

        let floor = self.cli_mem(MEM_FLOOR);
        for (what, idle) in [("idle", true), ("after echoing 64 KiB lines", false)] {
            let val = |m: Option<&CliMem>| match m {
                Some(m) => {
                    let k = if idle {
                        m.idle.hwm_kib
                    } else {
                        m.after_echo.hwm_kib
                    };
                    if k > 0 {
                        mib(k)
                    } else {
                        "failed".into()
                    }
                }
                None => DASH.into(),
            };
            let count = if idle {
                String::new()
            } else {
                format!(" x{}", self.cli_mem_echoed())
            };
            let cells = vec![
                format!(
                    "CLI peak RSS {what}{count}, MiB: release no TLS / release TLS / release-small no TLS / release-small no TLS static libc [bare: wsfloor, release-small]"
                ),
                DASH.into(),
                format!(
                    "{} / {} / {} / {}",
                    val(self.cli_mem(MEM_RELEASE)),
                    val(self.cli_mem(MEM_RELEASE_TLS)),
                    val(self.cli_mem(MEM_SMALL)),
                    val(self.cli_mem(MEM_SMALL_STATIC))
                ),
                val(floor),
            ];
            if idle {
                // Judged on each no-TLS build; dynamic builds carry libc's file pages (shared
                // with every other process, see Pss in the raw numbers).
                let judge = |label: &str, short: &str| match self.cli_mem(label) {
                    Some(m) if m.idle.hwm_kib > 0 => format!(
                        "{short} {} {}",
                        mib(m.idle.hwm_kib),
                        verdict(m.idle.hwm_kib <= 2048)
                    ),
                    _ => format!("{short} {DASH}"),
                };
                let result = format!(
                    "{}; {}",
                    judge(MEM_SMALL_STATIC, "static"),
                    judge(MEM_RELEASE, "dynamic")
                );
                rows.push(row(cells, "≤ 2 MiB (no TLS)", result));
            } else {
                rows.push(row(cells, DASH, DASH.into()));
            }
        }

        let (cell, result) = match &self.alloc {
            Some(Ok(a)) => {
                let per = a.allocs as f64 / a.cycles as f64;
                (
                    format!("{per:.1} ({} B)", a.bytes / a.cycles.max(1)),
                    format!("{per:.1} {}", verdict(a.allocs == 0)),
                )
            }
            Some(Err(e)) => (format!("failed: {e}"), DASH.into()),
            None => (DASH.into(), DASH.into()),
        };
        rows.push(row(
            vec![
                "heap allocations per idle heartbeat cycle, once connected".into(),
                cell,
            ],
            "0",
            result,
        ));

        // Detection and recovery.
        let (cell, result) = match &self.detect {
            Some(Ok(c)) if !c.is_empty() => {
                let v: Vec<f64> = c.iter().map(|c| c.detect.as_secs_f64() * 1e3).collect();
                let worst = c
                    .iter()
                    .map(|c| c.detect_error_ms())
                    .fold(f64::MIN, f64::max);
                let best = c
                    .iter()
                    .map(|c| c.detect_error_ms())
                    .fold(f64::MAX, f64::min);
                (
                    format!("{:.1} (median of {})", median(&v), v.len()),
                    format!(
                        "{best:+.1}..{worst:+.1} ms {}",
                        verdict(best >= 0.0 && worst <= 20.0)
                    ),
                )
            }
            Some(Err(e)) => (format!("failed: {e}"), DASH.into()),
            _ => (DASH.into(), DASH.into()),
        };
        let mut cells = vec![
            format!(
                "frozen server → link declared dead, ms after the server's last byte (ping every 1 s; wsbeat bound {} ms)",
                recovery::bound().as_millis()
            ),
            cell,
            DASH.into(),
            DASH.into(),
        ];
        for (kind, _) in PEER_COLUMNS {
            cells.push(match self.peer(kind).and_then(|p| p.detect.as_ref()) {
                Some(Detect::After(d, _)) => format!("{:.0}", d.as_secs_f64() * 1e3),
                Some(Detect::NotWithin(c)) => format!("> {:.0}", c.as_secs_f64() * 1e3),
                Some(Detect::Failed(_)) => "failed".into(),
                None => DASH.into(),
            });
        }
        rows.push(row(cells, "bound + 0..20 ms", result));

        let (cell, result) = match &self.detect {
            Some(Ok(c)) if !c.is_empty() => {
                let v: Vec<f64> = c.iter().map(|c| c.lateness_ms()).collect();
                let worst = v.iter().copied().fold(f64::MIN, f64::max);
                let best = v.iter().copied().fold(f64::MAX, f64::min);
                (
                    format!("{:+.1} (median of {})", median(&v), v.len()),
                    format!(
                        "{best:+.1}..{worst:+.1} ms {}",
                        verdict(best >= 0.0 && worst <= 20.0)
                    ),
                )
            }
            _ => (DASH.into(), DASH.into()),
        };
        rows.push(row(
            vec![
                "server back → Connected: Connected − (Reconnecting + its delay), ms".into(),
                cell,
            ],
            "0..20 ms",
            result,
        ));

        // Size.
        let size = |label: &str| {
            self.sizes
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, b)| match b {
                    Ok(b) => format!("{:.0}", b.bytes as f64 / 1024.0),
                    Err(_) => "failed".into(),
                })
                .unwrap_or(DASH.into())
        };
        let floor_size = |triple: &str| {
            self.cross
                .iter()
                .find(|c| c.target == triple && c.what == "wsfloor")
                .map(|c| format!("{:.0} (wsfloor)", c.bytes as f64 / 1024.0))
                .unwrap_or(DASH.into())
        };
        rows.push(row(
            vec![
                "binary size x86-64, release-small, stripped, KiB: no TLS / TLS (system OpenSSL, dynamic)"
                    .into(),
                DASH.into(),
                format!("{} / {}", size("no TLS"), size("TLS")),
                floor_size("x86_64-unknown-linux-gnu"),
            ],
            DASH,
            DASH.into(),
        ));
        for (triple, short) in [
            ("armv7-unknown-linux-gnueabihf", "armv7"),
            ("aarch64-unknown-linux-gnu", "aarch64"),
        ] {
            let builds: Vec<String> = self
                .cross
                .iter()
                .filter(|c| c.target == triple && c.what.starts_with("wsbeat"))
                .map(|c| {
                    format!(
                        "{:.0} ({}{})",
                        c.bytes as f64 / 1024.0,
                        c.tls,
                        if c.stripped { "" } else { ", NOT stripped" }
                    )
                })
                .collect();
            rows.push(row(
                vec![
                    format!("binary size {short}, release-small (cross/build.sh output), KiB"),
                    DASH.into(),
                    if builds.is_empty() {
                        "not built".into()
                    } else {
                        builds.join(" / ")
                    },
                    floor_size(triple),
                ],
                DASH,
                DASH.into(),
            ));
        }
        // Rows of sections that did not run (with --only) say nothing.
        let says_something = |c: &String| {
            let t = c.trim_matches(|ch: char| ch == '–' || ch == '/' || ch == ';' || ch == ' ');
            !t.is_empty() && t != "not built"
        };
        rows.retain(|r| r[1..ncols - 2].iter().any(says_something));
        Table { header, rows }
    }

    fn cli_mem_echoed(&self) -> u64 {
        self.cli_mem
            .first()
            .map(|(_, m)| m.echoed)
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        let t = self.table();
        let mut widths: Vec<usize> = t.header.iter().map(|h| h.chars().count()).collect();
        for r in &t.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut s = String::new();
        let line = |cells: &[String], s: &mut String| {
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i] - c.chars().count();
                if i == 0 {
                    let _ = write!(s, "{c}{}", " ".repeat(pad));
                } else {
                    let _ = write!(s, " | {}{c}", " ".repeat(pad));
                }
            }
            s.push('\n');
        };
        line(&t.header, &mut s);
        let total: usize = widths.iter().sum::<usize>() + 3 * (widths.len() - 1);
        s.push_str(&"-".repeat(total));
        s.push('\n');
        for r in &t.rows {
            line(r, &mut s);
        }
        s
    }

    /// nproc, CPU, kernel, date, load, toolchain, revision, duration.
    pub fn machine_line(&self) -> String {
        let Some(m) = &self.machine else {
            return String::new();
        };
        format!(
            "Machine: {} × {} (nproc {}), {} RAM, {}; {}. Load average at start {}, at end {} \
             (the machine is shared with other builds). {}. wsbeat {}. Run took {:.0} s{}.",
            m.nproc,
            m.cpu,
            m.nproc,
            m.mem_total,
            m.kernel,
            m.date,
            self.load_start,
            self.load_end,
            self.rustc,
            self.revision,
            self.total_secs,
            if self.quick { " (--quick)" } else { "" }
        )
    }

    pub fn markdown(&self) -> String {
        let t = self.table();
        let mut s = String::new();
        let _ = writeln!(s, "# wsbeat benchmark\n");
        let _ = writeln!(s, "{}\n", self.machine_line());
        let _ = writeln!(s, "| {} |", t.header.join(" | "));
        let _ = writeln!(
            s,
            "|{}",
            t.header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "--:|" })
                .collect::<String>()
        );
        for r in &t.rows {
            let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        s.push('\n');
        s.push_str(&self.details(true));
        s
    }

    /// Settings, versions, raw numbers and evidence (Markdown-ish; also printed after the
    /// text table).
    pub fn details(&self, md: bool) -> String {
        let mut s = String::new();
        let h = |s: &mut String, t: &str| {
            if md {
                let _ = writeln!(s, "\n## {t}\n");
            } else {
                let _ = writeln!(s, "\n== {t}");
            }
        };
        h(&mut s, "Setup");
        let _ = writeln!(
            s,
            "- Server: tungstenite 0.30 server side, in the benchmark process, one std thread per \
             connection, TCP_NODELAY, blocking reads; echo or sink (count only); answers Ping \
             frames at once. Its thread's CPU time is recorded per run (raw numbers) to show \
             it is not the bottleneck."
        );
        let _ = writeln!(
            s,
            "- Overhead: {} reps; in each, both clients open a fresh connection (handshake \
             untimed) and warm up, then take turns in short blocks (A B B A ...: echo blocks of \
             100-400 messages, stream blocks of 0.5 s; after a stream block the server drains \
             untimed), so the shared machine's background load hits both alike. msg/s = the \
             client's messages over its own blocks; the table shows the median over reps, the \
             ratio is the median of the per-rep ratios. wsbeat: Client with ping_interval 1 s, \
             pong_timeout 1 s; echo = send() then poll(5 s) until the Message; stream = send() \
             then poll(0) whenever next_wakeup() is due, compared with the clock reading the producer loop makes anyway (the documented pattern for a producer in a tight loop; the heartbeat needs polling). Bare: tungstenite \
             WebSocket<TcpStream>, default WebSocketConfig, TCP_NODELAY, send() + read(): it \
             flushes (one write) per message. Streaming also runs a second bare reference, \
             write() per message and flush() once per millisecond of the producer's clock \
             (tungstenite writes out by itself past its 128 KiB buffer): a hand-coalesced loop. \
             wsbeat coalesces by itself (Config::coalesce_window 1 ms, 16 KiB held at most). \
             Socket write calls per message: wsbeat's Stats::write_calls, the bare loops' \
             counted by a wrapper around their TcpStream. Binary \
             messages; each message is a fresh Vec for both. In the stream case the server sends \
             nothing back, so wsbeat pings about once per second. Client thread CPU per message \
             (schedstat of the client thread over its own blocks) is the client's own cost, \
             without the server's share that msg/s includes.{}",
            self.overhead_reps,
            if self.overhead_pinned {
                " Placement: the client thread and the server's connection threads are pinned \
                 to the same CPU (CPU 0), so a round trip is CPU work only and every client \
                 gets the same placement; left to the scheduler, results depended 4x on whether \
                 the server thread landed next to the client (cross-CPU wake-ups are slow on this \
                 VM). The msg/s ratio therefore includes the server's share of the CPU (about \
                 half); the client-CPU row shows the client's cost alone."
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "- Echo of the peers and the CLIs: {} messages of 32 bytes, one at a time, after a \
             warm-up; the clients take turns, median of the runs; scripts time themselves, \
             websocat and the wsbeat CLI are timed here through their stdin/stdout (a line out, \
             wait for the line back).{}",
            self.peer_echo_count,
            if self.echo_pinned {
                " Same placement as above: the client process, the server thread and the \
                 benchmark's driving thread all on CPU 0."
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "- Idle: each client in its own process against its own server instance, all at \
             once; a common {} s window starts 2 s after the last one connected. Context \
             switches and CPU time (schedstat) summed over all threads from \
             /proc/PID/task/*/; a second instance of each client runs under `strace -f -ttt` \
             and its syscalls inside the window are counted. wsbeat: this binary run again with \
             --idle-child (a Client::poll loop and nothing else).",
            self.idle_window_s
        );
        for r in &self.idle {
            let _ = writeln!(s, "  - {}: {}", r.name, r.settings);
        }
        let _ = writeln!(
            s,
            "- Detection and recovery (wsbeat, in process): {}.",
            recovery::settings()
        );
        let _ = writeln!(
            s,
            "- Peers' frozen-server test: ping every 1 s; the server freezes right after \
             answering a ping (so every client's last inbound byte is that pong: the worst \
             case); time until the client reports the link lost (or exits), capped at {} s.",
            self.peer_detect_cap_s
        );
        for p in &self.peers {
            let _ = writeln!(s, "  - {} {}: {}", p.name, p.version, p.detect_settings);
        }
        for m in &self.peers_missing {
            let _ = writeln!(s, "  - skipped: {m}");
        }
        let _ = writeln!(
            s,
            "- Memory: the wsbeat CLI (release, `--no-default-features --features cli` and \
             default features; release-small without TLS, dynamic and with glibc linked \
             statically, `-C target-feature=+crt-static`, whose built-in `files` and `dns` \
             resolvers need no shared library at run time) against the echo server over ws://, \
             `--ping-interval 5s -q`, \
             stdin a pipe: VmHWM after a few idle seconds, then after echoing {} lines of 64 KiB \
             one at a time. The TLS build is measured over ws:// (TLS linked, not used). Peer \
             RSS is the idle process's VmHWM. Allocations: a counting #[global_allocator] in \
             this binary counts the client thread's allocations between two Pongs once \
             connected (ping every 50 ms, after 3 warm-up cycles).",
            self.cli_mem_echoed()
        );
        let _ = writeln!(
            s,
            "- Size: `cargo build --profile release-small --bin wsbeat` (opt-level z, LTO, \
             panic=abort, strip) with and without TLS; wsfloor is the bare-tungstenite client \
             in cross/floor, built by cross/build.sh --floor."
        );

        h(&mut s, "Raw numbers");
        for oc in &self.overhead {
            let _ = writeln!(s, "- {}:", oc.case.label());
            for (who, runs) in &oc.runs {
                let v: Vec<String> = runs.iter().map(|r| thousands(r.msgs_per_s)).collect();
                let busy: Vec<String> = runs
                    .iter()
                    .map(|r| format!("{:.0}%", r.server_busy * 100.0))
                    .collect();
                let pings: u64 = runs.iter().map(|r| r.pings).sum();
                let ratios = if *who == Who::Bare {
                    String::new()
                } else {
                    let r: Vec<String> = oc
                        .rep_ratios(*who)
                        .iter()
                        .map(|r| format!("{r:.3}"))
                        .collect();
                    format!(", ratio to bare per rep [{}]", r.join(", "))
                };
                let cpu: Vec<String> = runs
                    .iter()
                    .map(|r| format!("{:.2}", r.client_cpu_us))
                    .collect();
                let allocs = median(&runs.iter().map(|r| r.allocs_per_msg).collect::<Vec<_>>());
                let preempted =
                    median(&runs.iter().map(|r| r.preempted_per_msg).collect::<Vec<_>>());
                let _ = writeln!(
                    s,
                    "  - {}: msg/s [{}]{ratios}; client thread CPU µs/msg [{}]; client \
                     allocations/msg {allocs:.2}; client preempted {preempted:.3} times per \
                     message; server thread busy [{}]; pings answered {}",
                    who.label(),
                    v.join(", "),
                    cpu.join(", "),
                    busy.join(", "),
                    pings
                );
            }
        }
        for r in &self.idle {
            match &r.error {
                Some(e) => {
                    let _ = writeln!(s, "- idle {}: {e}", r.name);
                }
                None => {
                    let _ = writeln!(
                        s,
                        "- idle {}: window {:.1} s, voluntary {}, involuntary {}, CPU {:.3} ms, \
                         threads {}, pings {}, VmHWM {} KiB (RssAnon {} KiB, RssFile {} KiB, \
                         Pss {} KiB, private {} KiB)",
                        r.name,
                        r.window_s,
                        r.cpu.voluntary,
                        r.cpu.involuntary,
                        r.cpu.cpu_ns as f64 / 1e6,
                        r.cpu.threads,
                        r.pings,
                        r.mem.hwm_kib,
                        r.mem.anon_kib,
                        r.mem.file_kib,
                        r.mem.pss_kib,
                        r.mem.private_kib
                    );
                }
            }
            if let Some(calls) = &r.syscalls {
                let mut v: Vec<(&String, &u64)> = calls.iter().collect();
                v.sort_by(|a, b| b.1.cmp(a.1));
                let list: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let _ = writeln!(
                    s,
                    "  - syscalls in the window (strace): {} total: {}",
                    r.syscall_total().unwrap_or(0),
                    list.join(", ")
                );
            }
        }
        for e in &self.idle_errors {
            let _ = writeln!(s, "- idle: {e}");
        }
        for (label, m) in &self.cli_mem {
            let _ = writeln!(
                s,
                "- CLI {label}: idle VmHWM {} KiB (VmRSS {}, RssAnon {}, RssFile {}, Pss {}, \
                 private {}); after {} x 64 KiB echoes VmHWM {} KiB (RssAnon {}, RssFile {}){}",
                m.idle.hwm_kib,
                m.idle.rss_kib,
                m.idle.anon_kib,
                m.idle.file_kib,
                m.idle.pss_kib,
                m.idle.private_kib,
                m.echoed,
                m.after_echo.hwm_kib,
                m.after_echo.anon_kib,
                m.after_echo.file_kib,
                m.error
                    .as_ref()
                    .map(|e| format!(" — error: {e}"))
                    .unwrap_or_default()
            );
            if !m.top_mappings.is_empty() {
                let top: Vec<String> = m
                    .top_mappings
                    .iter()
                    .map(|(k, n)| format!("{n} {k} KiB"))
                    .collect();
                let _ = writeln!(s, "  - resident by mapping: {}", top.join(", "));
            }
        }
        for r in &self.idle {
            if !r.top_mappings.is_empty() && r.error.is_none() {
                let top: Vec<String> = r
                    .top_mappings
                    .iter()
                    .map(|(k, n)| format!("{n} {k} KiB"))
                    .collect();
                let _ = writeln!(
                    s,
                    "- idle {} resident by mapping: {}",
                    r.name,
                    top.join(", ")
                );
            }
        }
        match &self.alloc {
            Some(Ok(a)) => {
                let _ = writeln!(
                    s,
                    "- allocations: {} in {} heartbeat cycles ({} bytes), ping every {} ms",
                    a.allocs, a.cycles, a.bytes, a.ping_ms
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(s, "- allocations: failed: {e}");
            }
            None => {}
        }
        if !self.alloc_traces.is_empty() {
            let _ = writeln!(
                s,
                "- where the idle-cycle allocations come from (distinct backtraces, count, \
                 frames outside std/alloc):"
            );
            for (n, bt) in &self.alloc_traces {
                let _ = writeln!(s, "  - {n} x: {bt}");
            }
        }
        if !self.echo_alloc_traces.is_empty() {
            let _ = writeln!(
                s,
                "- allocations of {} wsbeat 32 B echo round trips on the client thread \
                 (--diagnose; count, frames in wsbeat/tungstenite/bytes):",
                self.echo_alloc_count
            );
            for (n, bt) in &self.echo_alloc_traces {
                let _ = writeln!(s, "  - {n} x: {bt}");
            }
        }
        match &self.detect {
            Some(Ok(cycles)) => {
                for (i, c) in cycles.iter().enumerate() {
                    let delays: Vec<String> = c
                        .delays
                        .iter()
                        .map(|d| format!("{}", d.as_millis()))
                        .collect();
                    let _ = writeln!(
                        s,
                        "- cycle {}: detect {:.1} ms (bound {} ms, {:+.1} ms), \"{}\"; Reconnecting \
                         delays [{}] ms; server back {:.1} ms after the last Reconnecting; \
                         Connected {:.1} ms after it (delay {} ms, {:+.1} ms, handshake {:.2} ms), \
                         {:.1} ms after the server's return",
                        i + 1,
                        c.detect.as_secs_f64() * 1e3,
                        recovery::bound().as_millis(),
                        c.detect_error_ms(),
                        c.reason,
                        delays.join(", "),
                        c.returned_after.as_secs_f64() * 1e3,
                        c.reconnect_after.as_secs_f64() * 1e3,
                        c.delay.as_millis(),
                        c.lateness_ms(),
                        c.handshake.as_secs_f64() * 1e3,
                        c.since_return.as_secs_f64() * 1e3
                    );
                }
            }
            Some(Err(e)) => {
                let _ = writeln!(s, "- detection/recovery failed: {e}");
            }
            None => {}
        }
        for p in &self.peers {
            let det = match &p.detect {
                Some(Detect::After(d, what)) => {
                    format!("detected after {:.0} ms ({what})", d.as_secs_f64() * 1e3)
                }
                Some(Detect::NotWithin(c)) => format!("nothing within {} s", c.as_secs()),
                Some(Detect::Failed(e)) => format!("failed: {e}"),
                None => "not run".into(),
            };
            let echo = match &p.echo {
                Some(Ok(v)) => format!("{} msg/s", thousands(*v)),
                Some(Err(e)) => format!("failed: {e}"),
                None => "not run".into(),
            };
            let _ = writeln!(
                s,
                "- {} {}: frozen server {det}; echo 32 B x{}: {echo}",
                p.name, p.version, self.peer_echo_count
            );
        }
        for (label, r) in &self.cli_echo {
            let _ = writeln!(
                s,
                "- CLI echo {label}: {}",
                match r {
                    Ok(v) => format!("{} msg/s", thousands(*v)),
                    Err(e) => format!("failed: {e}"),
                }
            );
        }
        for (label, b) in &self.sizes {
            let _ = writeln!(
                s,
                "- size {label}: {}",
                match b {
                    Ok(b) => format!(
                        "{} bytes ({}), {}",
                        b.bytes,
                        if b.stripped {
                            "stripped"
                        } else {
                            "NOT stripped"
                        },
                        b.path.display()
                    ),
                    Err(e) => format!("failed: {e}"),
                }
            );
        }
        for c in &self.cross {
            let _ = writeln!(
                s,
                "- cross {} {}: {} bytes, {}, {}",
                c.target, c.what, c.bytes, c.tls, c.age
            );
        }
        if !self.notes.is_empty() {
            h(&mut s, "Notes");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        if !self.commands.is_empty() {
            h(&mut s, "Commands");
            if md {
                s.push_str("```sh\n");
            }
            for c in &self.commands {
                let _ = writeln!(s, "{c}");
            }
            if md {
                s.push_str("```\n");
            }
        }
        s
    }

    /// Two panels of horizontal bars: voluntary context switches per minute while idle, and
    /// peak RSS of the idle client process.
    pub fn svg(&self) -> String {
        let rows: Vec<&IdleResult> = self.idle.iter().filter(|r| r.error.is_none()).collect();
        let bar_h = 18.0;
        let gap = 8.0;
        let label_w = 150.0;
        let bar_w = 300.0;
        let panel_h = 30.0 + rows.len() as f64 * (bar_h + gap);
        let width = label_w + bar_w + 150.0;
        let height = 40.0 + 2.0 * panel_h + 36.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="10" y="20" font-size="14" font-weight="bold">Idle WebSocket clients on loopback, ping every {} s ({} s window)</text>"#,
            self.idle_ping_s, self.idle_window_s
        );
        type Value = Box<dyn Fn(&IdleResult) -> f64>;
        let panels: [(&str, Value, &str); 2] = [
            (
                "wake-ups: voluntary context switches per minute (all threads)",
                Box::new(|r: &IdleResult| r.vcsw_per_min()),
                "",
            ),
            (
                "peak RSS (VmHWM) of the idle client process",
                Box::new(|r: &IdleResult| r.mem.hwm_kib as f64 / 1024.0),
                " MiB",
            ),
        ];
        for (pi, (title, value, unit)) in panels.iter().enumerate() {
            let top = 40.0 + pi as f64 * panel_h;
            let _ = writeln!(
                s,
                r#"<text x="10" y="{:.0}" font-weight="bold">{title}</text>"#,
                top + 14.0
            );
            let max = rows
                .iter()
                .map(|r| value(r))
                .fold(0.0f64, f64::max)
                .max(1e-9);
            for (i, r) in rows.iter().enumerate() {
                let y = top + 24.0 + i as f64 * (bar_h + gap);
                let v = value(r);
                let w = (v / max * bar_w).max(1.0);
                let color = if r.name.starts_with("wsbeat") {
                    "#2b7a3d"
                } else if r.name == "bare tungstenite" {
                    "#7a9a84"
                } else {
                    "#8a8fa3"
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
                    label_w - 8.0,
                    y + bar_h - 5.0,
                    xml(&r.name)
                );
                let _ = writeln!(
                    s,
                    r#"<rect x="{label_w:.0}" y="{y:.0}" width="{w:.1}" height="{bar_h:.0}" fill="{color}"/>"#
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.0}">{}{unit}</text>"#,
                    label_w + w + 5.0,
                    y + bar_h - 5.0,
                    if v >= 10.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.1}")
                    }
                );
            }
        }
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.0}" font-size="10" fill="#555555">wsbeat and bare tungstenite run as the benchmark binary (links OpenSSL); wsbeat CLI: release build, no TLS.</text>"##,
            height - 22.0
        );
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.0}" font-size="10" fill="#555555">Summed over all threads; each client against its own loopback server. Made by examples/bench.rs.</text>"##,
            height - 8.0
        );
        s.push_str("</svg>\n");
        s
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
