//! A fleet reconnecting after a common loss, on a virtual clock: `devices` clients lose their
//! link at t = 0, the server refuses everything for `down`, then accepts at most `rate`
//! connections per second. Every device runs the library's real backoff
//! (`wsbeat::__sim::SimBackoff`); the clock is a priority queue of next-attempt instants, so
//! 100,000 devices take a fraction of a second, with no sleep.
//!
//! Shared by `examples/fleet.rs` (the strategy × scenario tables and `bench/fleet.svg`) and
//! `tests/fleet.rs` (the same histogram next to real clients').

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use wsbeat::__sim::SimBackoff;
use wsbeat::BackoffConfig;

/// Width of one histogram bin.
pub const BIN: Duration = Duration::from_millis(100);
const BIN_NS: u64 = 100_000_000;
/// Bins in a one-second window, for the peak rate.
const BINS_PER_S: usize = 10;

/// One run's setting.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Devices that lose their link at t = 0 (each had been up for `min_uptime`).
    pub devices: usize,
    /// The server refuses every attempt before this instant.
    pub down: Duration,
    /// Connections accepted per second from `down` on; `None`: no limit.
    pub rate: Option<u32>,
    /// Every device's policy.
    pub backoff: BackoffConfig,
    /// The run's seed: device `i` draws its jitter from `mix(seed) + i`, so two runs share no
    /// device sequence (a real client seeds from the OS).
    pub seed: u64,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Connect attempts started in each 100 ms bin after t = 0.
    pub attempts: Vec<u32>,
    /// Attempts the server accepted, per 100 ms bin.
    pub connects: Vec<u32>,
    /// Every attempt, accepted or refused.
    pub total_attempts: u64,
    /// When 95 % of the devices were connected again.
    pub t95: Duration,
    /// When the last device was connected again.
    pub t100: Duration,
    /// Devices that gave up (only with `max_retries`).
    pub gave_up: usize,
}

impl Outcome {
    /// The most attempts in any one-second window (ten consecutive 100 ms bins).
    pub fn peak_per_s(&self) -> u32 {
        let mut best = 0;
        let mut window = 0u32;
        for (i, &n) in self.attempts.iter().enumerate() {
            window += n;
            if i >= BINS_PER_S {
                window -= self.attempts[i - BINS_PER_S];
            }
            best = best.max(window);
        }
        best
    }

    /// The most attempts in one 100 ms bin.
    pub fn peak_per_bin(&self) -> u32 {
        self.attempts.iter().copied().max().unwrap_or(0)
    }
}

/// A token bucket: `rate` per second, at most a tenth of a second's worth stored, so no
/// 100 ms window admits more than `rate / 5` and no second more than `1.1 × rate` (a server's
/// accept capacity is a rate, not a per-second allowance it can spend in one burst).
struct Bucket {
    per_ns: f64,
    cap: f64,
    tokens: f64,
    last_ns: u64,
}

impl Bucket {
    fn new(rate: u32, start_ns: u64) -> Bucket {
        let cap = (f64::from(rate) / 10.0).max(1.0);
        Bucket {
            per_ns: f64::from(rate) / 1e9,
            cap,
            tokens: cap,
            last_ns: start_ns,
        }
    }

    fn take(&mut self, now_ns: u64) -> bool {
        if now_ns > self.last_ns {
            let refill = (now_ns - self.last_ns) as f64 * self.per_ns;
            self.tokens = (self.tokens + refill).min(self.cap);
            self.last_ns = now_ns;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn bump(bins: &mut Vec<u32>, at_ns: u64) {
    let i = (at_ns / BIN_NS) as usize;
    if bins.len() <= i {
        bins.resize(i + 1, 0);
    }
    bins[i] += 1;
}

/// SplitMix64's output function: nearby inputs give unrelated outputs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `s` to the end: every device connected again (or given up).
pub fn run(s: &Scenario) -> Outcome {
    // The virtual clock: `zero` is t = 0 (the drop); only offsets from it are ever added.
    let connected_at = Instant::now();
    let zero = connected_at + s.backoff.min_uptime;
    let at = |t_ns: u64| zero + Duration::from_nanos(t_ns);
    let down_ns = ns(s.down);
    let mut bucket = s.rate.map(|r| Bucket::new(r, down_ns));
    let mut out = Outcome::default();
    let mut devices = Vec::with_capacity(s.devices);
    let mut queue = BinaryHeap::with_capacity(s.devices);
    let first_seed = mix(s.seed);
    for i in 0..s.devices {
        let mut b = SimBackoff::new(s.backoff.clone(), first_seed.wrapping_add(i as u64));
        b.on_attempt();
        b.on_connected(connected_at);
        match b.on_link_lost(zero) {
            Some(d) => queue.push(Reverse((ns(d), i))),
            None => out.gave_up += 1,
        }
        devices.push(b);
    }
    let need95 = (s.devices * 95).div_ceil(100);
    let mut connected = 0usize;
    while let Some(Reverse((t, i))) = queue.pop() {
        let b = &mut devices[i];
        b.on_attempt();
        out.total_attempts += 1;
        bump(&mut out.attempts, t);
        let accepted = t >= down_ns && bucket.as_mut().is_none_or(|k| k.take(t));
        if accepted {
            b.on_connected(at(t));
            bump(&mut out.connects, t);
            connected += 1;
            if connected == need95 {
                out.t95 = Duration::from_nanos(t);
            }
            out.t100 = Duration::from_nanos(t);
            continue;
        }
        match b.on_attempt_failed(None) {
            Some(d) => queue.push(Reverse((t.saturating_add(ns(d)), i))),
            None => out.gave_up += 1,
        }
    }
    out
}
