//! A fleet reconnecting after a common loss (issue "Fleet scale"), simulated on a virtual clock
//! with the library's real backoff: 100,000 devices lose their link at t = 0, the server is down
//! for D ∈ {0, 10 s, 60 s}, then accepts at most R ∈ {1,000, 10,000} connections per second
//! (an attempt beyond the rate is refused at once and counts as a failure).
//!
//! ```text
//! cargo run --release --features fleet-sim --example fleet                  # ~1 minute
//! cargo run --release --features fleet-sim --example fleet -- \
//!     --markdown bench/fleet.md --svg bench/fleet.svg
//! ```
//!
//! Options: `--devices N` (default 100000), `--markdown PATH`, `--svg PATH`, `--seed N`.
//!
//! Printed: every strategy × scenario at the library's defaults (peak attempts per second in
//! any one-second window, time until 95 % and 100 % are connected, total attempts), the same
//! for every spread window W in a sweep, and a summary per strategy and W over the six
//! scenarios. The SVG shows attempts per 100 ms in the default scenario (D = 10 s,
//! R = 10,000/s) for each strategy at the default W, and without a spread (W = 0).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "../bench/src/fleet.rs"]
mod fleet;

use fleet::{Outcome, Scenario};
use wsbeat::{BackoffConfig, Jitter};

const STRATEGIES: [(Jitter, &str); 3] = [
    (Jitter::Proportional, "proportional"),
    (Jitter::Full, "full"),
    (Jitter::Decorrelated, "decorrelated"),
];
const DOWNS_S: [u64; 3] = [0, 10, 60];
const RATES: [u32; 2] = [1_000, 10_000];
const SPREADS_S: [u64; 7] = [0, 2, 5, 10, 20, 30, 60];
/// The scenario drawn in the SVG.
const PLOT_DOWN_S: u64 = 10;
const PLOT_RATE: u32 = 10_000;

struct Run {
    strategy: &'static str,
    spread_s: u64,
    down_s: u64,
    rate: u32,
    out: Outcome,
}

fn main() {
    let mut devices = 100_000usize;
    let mut markdown = None;
    let mut svg = None;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--devices" => devices = value().parse().unwrap_or_else(|_| usage("--devices")),
            "--seed" => seed = value().parse().unwrap_or_else(|_| usage("--seed")),
            "--markdown" => markdown = Some(value()),
            "--svg" => svg = Some(value()),
            _ => usage(&a),
        }
    }
    let defaults = BackoffConfig::default();
    let default_spread_s = defaults.first_spread.as_secs();
    let mut jobs = Vec::new();
    for &(strategy, name) in &STRATEGIES {
        for &spread_s in &SPREADS_S {
            for &down_s in &DOWNS_S {
                for &rate in &RATES {
                    let mut backoff = defaults.clone();
                    backoff.strategy = strategy;
                    backoff.first_spread = Duration::from_secs(spread_s);
                    let scenario = Scenario {
                        devices,
                        down: Duration::from_secs(down_s),
                        rate: Some(rate),
                        backoff,
                        seed,
                    };
                    jobs.push((name, spread_s, down_s, rate, scenario));
                }
            }
        }
    }
    let started = Instant::now();
    let runs = run_all(jobs);
    let elapsed = started.elapsed();

    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Fleet reconnection: {} devices lose their link at t = 0\n\n\
         Server down for D, then accepting at most R connections/s (token bucket, 0.1 s of \
         burst); a refused attempt fails at once and the device backs off. Library defaults \
         otherwise: initial {} s, max {} s, factor {}, jitter {} (proportional only), \
         min_uptime {} s. Peak: most attempts in any 1 s window (100 ms steps); goal \
         peak ≤ 1.2 × N / W. {} runs in {:.1} s (examples/fleet.rs, seed {seed}).\n",
        thousands(devices as f64),
        defaults.initial.as_secs_f64(),
        defaults.max.as_secs_f64(),
        defaults.factor,
        defaults.jitter,
        defaults.min_uptime.as_secs_f64(),
        runs.len(),
        elapsed.as_secs_f64(),
    );
    let _ = writeln!(
        text,
        "## Every strategy × scenario at the default spread W = {default_spread_s} s\n"
    );
    table(
        &mut text,
        devices,
        runs.iter().filter(|r| r.spread_s == default_spread_s),
    );
    let _ = writeln!(
        text,
        "\n## Summary per strategy and W over the six scenarios\n\n\
         Attempts: total over the six runs; t95: mean over them; peak/goal: the worst ratio \
         of peak to 1.2 × N / W (W = 0 has no goal).\n"
    );
    summary(&mut text, devices, &runs);
    let _ = writeln!(text, "\n## Every strategy × W × scenario\n");
    table(&mut text, devices, runs.iter());
    print!("{text}");
    if let Some(path) = markdown {
        write(&path, &text);
    }
    if let Some(path) = svg {
        let pick = |strategy: &str, spread_s: u64| {
            runs.iter()
                .find(|r| {
                    r.strategy == strategy
                        && r.spread_s == spread_s
                        && r.down_s == PLOT_DOWN_S
                        && r.rate == PLOT_RATE
                })
                .map(|r| &r.out)
        };
        let series: Vec<(String, &Outcome)> = STRATEGIES
            .iter()
            .filter_map(|&(_, name)| pick(name, default_spread_s).map(|o| (name.to_string(), o)))
            .collect();
        let herd: Vec<(String, &Outcome)> = STRATEGIES
            .iter()
            .filter_map(|&(_, name)| pick(name, 0).map(|o| (name.to_string(), o)))
            .collect();
        let defaults_name = STRATEGIES
            .iter()
            .find(|(s, _)| *s == defaults.strategy)
            .map_or("?", |(_, n)| n);
        write(
            &path,
            &plot(devices, default_spread_s, defaults_name, &series, &herd),
        );
    }
}

fn usage(what: &str) -> ! {
    eprintln!(
        "fleet: bad argument {what:?}\n\
         usage: fleet [--devices N] [--seed N] [--markdown PATH] [--svg PATH]"
    );
    std::process::exit(2)
}

fn write(path: &str, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("fleet: cannot write {path}: {e}");
        std::process::exit(1);
    }
    eprintln!("wrote {path}");
}

/// Runs every job, one thread per CPU, results in job order.
fn run_all(jobs: Vec<(&'static str, u64, u64, u32, Scenario)>) -> Vec<Run> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((strategy, spread_s, down_s, rate, scenario)) = jobs.get(i) else {
                    return;
                };
                let out = fleet::run(scenario);
                let run = Run {
                    strategy,
                    spread_s: *spread_s,
                    down_s: *down_s,
                    rate: *rate,
                    out,
                };
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, run));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn goal(devices: usize, spread_s: u64) -> Option<f64> {
    (spread_s > 0).then(|| 1.2 * devices as f64 / spread_s as f64)
}

fn table<'a>(text: &mut String, devices: usize, runs: impl Iterator<Item = &'a Run>) {
    let _ = writeln!(
        text,
        "| strategy | W | D | R/s | peak/s | ≤ 1.2 N/W | t95 | t100 | attempts | per device |\n\
         |---|--:|--:|--:|--:|:-:|--:|--:|--:|--:|"
    );
    for r in runs {
        let peak = r.out.peak_per_s();
        let ok = match goal(devices, r.spread_s) {
            Some(g) if f64::from(peak) <= g => "yes",
            Some(_) => "**no**",
            None => "-",
        };
        let _ = writeln!(
            text,
            "| {} | {} s | {} s | {} | {} | {ok} | {:.1} s | {:.1} s | {} | {:.2} |",
            r.strategy,
            r.spread_s,
            r.down_s,
            thousands(f64::from(r.rate)),
            thousands(f64::from(peak)),
            r.out.t95.as_secs_f64(),
            r.out.t100.as_secs_f64(),
            thousands(r.out.total_attempts as f64),
            r.out.total_attempts as f64 / devices as f64,
        );
    }
}

fn summary(text: &mut String, devices: usize, runs: &[Run]) {
    let _ = writeln!(
        text,
        "| strategy | W | attempts (6 runs) | mean t95 | mean t100 | worst peak/goal |\n\
         |---|--:|--:|--:|--:|--:|"
    );
    for &(_, name) in &STRATEGIES {
        for &spread_s in &SPREADS_S {
            let rs: Vec<&Run> = runs
                .iter()
                .filter(|r| r.strategy == name && r.spread_s == spread_s)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let n = rs.len() as f64;
            let attempts: u64 = rs.iter().map(|r| r.out.total_attempts).sum();
            let t95 = rs.iter().map(|r| r.out.t95.as_secs_f64()).sum::<f64>() / n;
            let t100 = rs.iter().map(|r| r.out.t100.as_secs_f64()).sum::<f64>() / n;
            let worst = match goal(devices, spread_s) {
                Some(g) => format!(
                    "{:.2}",
                    rs.iter()
                        .map(|r| f64::from(r.out.peak_per_s()) / g)
                        .fold(0.0, f64::max)
                ),
                None => "-".into(),
            };
            let _ = writeln!(
                text,
                "| {name} | {spread_s} s | {} | {t95:.1} s | {t100:.1} s | {worst} |",
                thousands(attempts as f64)
            );
        }
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const COLORS: [&str; 3] = ["#b5523b", "#2b7a3d", "#3b5bb5"];

/// Two panels of attempts per 100 ms against time: the strategies at the default spread, and
/// without a spread (each on its own scale).
fn plot(
    devices: usize,
    spread_s: u64,
    default_name: &str,
    series: &[(String, &Outcome)],
    herd: &[(String, &Outcome)],
) -> String {
    // Each panel: title above, plot, axis title and a legend line per series below.
    let (left, plot_w, plot_h, panel_gap) = (70.0, 640.0, 220.0, 120.0);
    let width = left + plot_w + 30.0;
    let height = 50.0 + 2.0 * (plot_h + panel_gap) + 30.0;
    // Both panels share the time axis: to the slowest 100 % in either (whole seconds).
    let bins = series
        .iter()
        .chain(herd)
        .map(|(_, o)| o.attempts.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let t_max = (bins as f64 / 10.0).ceil().max(1.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">{} devices lose their link at t = 0; server down {PLOT_DOWN_S} s, then {} connections/s</text>"#,
        thousands(devices as f64),
        thousands(f64::from(PLOT_RATE))
    );
    let panels = [
        (
            format!(
                "connect attempts per 100 ms, first attempt spread over W = {spread_s} s (default strategy: {default_name})"
            ),
            series,
            Some(devices as f64 / spread_s.max(1) as f64 / 10.0),
        ),
        (
            "without a spread (W = 0; proportional ≈ the previous policy): all at t = 0, then in waves"
                .to_string(),
            herd,
            None,
        ),
    ];
    for (pi, (title, lines, reference)) in panels.iter().enumerate() {
        let top = 50.0 + pi as f64 * (plot_h + panel_gap);
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
            top - 12.0,
            xml(title)
        );
        let y_max_raw = lines
            .iter()
            .map(|(_, o)| o.peak_per_bin())
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let y_max = nice_ceiling(y_max_raw);
        let x = |t: f64| left + t / t_max * plot_w;
        let y = |v: f64| top + plot_h - v.min(y_max) / y_max * plot_h;
        // Axes, grid and labels.
        let _ = writeln!(
            s,
            r##"<rect x="{left:.0}" y="{top:.0}" width="{plot_w:.0}" height="{plot_h:.0}" fill="none" stroke="#999999"/>"##
        );
        for k in 0..=4 {
            let v = y_max * f64::from(k) / 4.0;
            let _ = writeln!(
                s,
                r##"<line x1="{left:.0}" y1="{yy:.1}" x2="{:.0}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.0}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"##,
                left + plot_w,
                left - 5.0,
                y(v) + 3.0,
                thousands(v),
                yy = y(v),
            );
        }
        let step = if t_max > 60.0 { 10.0 } else { 5.0 };
        let mut t = 0.0;
        while t <= t_max + 1e-9 {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.0}" text-anchor="middle" font-size="10">{t:.0}</text>"#,
                x(t),
                top + plot_h + 14.0
            );
            t += step;
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="middle" font-size="10">seconds after the drop</text>"#,
            left + plot_w / 2.0,
            top + plot_h + 28.0
        );
        if let Some(r) = reference {
            let _ = writeln!(
                s,
                r##"<line x1="{left:.0}" y1="{yy:.1}" x2="{:.0}" y2="{yy:.1}" stroke="#555555" stroke-dasharray="4 3"/><text x="{:.0}" y="{:.1}" text-anchor="end" font-size="10" fill="#555555">N / W per 100 ms</text>"##,
                left + plot_w,
                left + plot_w - 4.0,
                y(*r) - 4.0,
                yy = y(*r),
            );
        }
        for (li, (name, o)) in lines.iter().enumerate() {
            let mut pts = String::new();
            for (i, &n) in o.attempts.iter().enumerate() {
                let bin = fleet::BIN.as_secs_f64();
                let _ = write!(
                    pts,
                    "{:.1},{:.1} ",
                    x((i as f64 + 0.5) * bin),
                    y(f64::from(n))
                );
            }
            let color = COLORS[li % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.2"/>"#,
                pts.trim_end()
            );
            let ly = top + plot_h + 46.0 + li as f64 * 15.0;
            let _ = writeln!(
                s,
                r#"<line x1="{:.0}" y1="{ly:.0}" x2="{:.0}" y2="{ly:.0}" stroke="{color}" stroke-width="2"/><text x="{:.0}" y="{:.0}" font-size="11">{}: peak {} attempts/s, 95 % back at {:.1} s, {} attempts</text>"#,
                left,
                left + 20.0,
                left + 25.0,
                ly + 4.0,
                xml(name),
                thousands(f64::from(o.peak_per_s())),
                o.t95.as_secs_f64(),
                thousands(o.total_attempts as f64),
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.0}" font-size="10" fill="#555555">Virtual clock, the library's real backoff per device (initial 1 s, max 60 s). Made by examples/fleet.rs.</text>"##,
        height - 10.0
    );
    s.push_str("</svg>\n");
    s
}

/// The least of 1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6 or 8 times a power of ten that is at least `v`
/// (each divides into four grid steps that read well).
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.6, 2.0, 2.4, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
