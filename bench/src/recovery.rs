//! Dead-link detection and recovery of wsbeat, in process against [`Server`], and heap
//! allocations per idle heartbeat cycle (the counting allocator lives in examples/bench.rs).

use std::time::{Duration, Instant};

use wsbeat::{Client, Config, Event};

use crate::server::{Mode, Server};

/// Detection and recovery settings (stated in the report).
pub const PING: Duration = Duration::from_secs(1);
pub const PONG_TIMEOUT: Duration = Duration::from_millis(500);
pub const MAX_MISSED: u32 = 2;
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(300);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
pub const MIN_UPTIME: Duration = Duration::from_millis(500);

pub fn settings() -> String {
    format!(
        "ping_interval {} ms, pong_timeout {} ms, max_missed_pongs {MAX_MISSED} (bound {} ms); \
         backoff proportional, initial {} ms, max {} ms, factor 2, jitter 0.2, first_spread \
         = initial, min_uptime {} ms, seed 7; \
         the server freezes right after answering a ping and refuses connections until it \
         returns halfway through the second backoff delay",
        PING.as_millis(),
        PONG_TIMEOUT.as_millis(),
        bound().as_millis(),
        BACKOFF_INITIAL.as_millis(),
        BACKOFF_MAX.as_millis(),
        MIN_UPTIME.as_millis()
    )
}

pub fn bound() -> Duration {
    PING + PONG_TIMEOUT * MAX_MISSED
}

/// One freeze / recover cycle.
#[derive(Clone, Debug, Default)]
pub struct Cycle {
    /// From the server's last byte (the Pong before the freeze) to `Disconnected`.
    pub detect: Duration,
    pub reason: String,
    /// The delay in the `Reconnecting` that preceded the successful attempt.
    pub delay: Duration,
    /// From that `Reconnecting` to `Connected`.
    pub reconnect_after: Duration,
    /// From the server's return to `Connected`.
    pub since_return: Duration,
    /// The server came back this long after that `Reconnecting`.
    pub returned_after: Duration,
    /// Handshake time reported in `Connected`.
    pub handshake: Duration,
    /// Every `Reconnecting` delay of the outage, in order.
    pub delays: Vec<Duration>,
}

impl Cycle {
    /// `Connected` later than `Reconnecting + delay` by this much (negative: earlier).
    pub fn lateness_ms(&self) -> f64 {
        (self.reconnect_after.as_secs_f64() - self.delay.as_secs_f64()) * 1e3
    }
    pub fn detect_error_ms(&self) -> f64 {
        (self.detect.as_secs_f64() - bound().as_secs_f64()) * 1e3
    }
}

fn wait_for<F: FnMut(&Event) -> bool>(
    client: &mut Client,
    max: Duration,
    mut f: F,
) -> Result<(Instant, Event), String> {
    let end = Instant::now() + max;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("nothing within {} ms", max.as_millis()));
        }
        if let Some(ev) = client.poll(left) {
            let at = Instant::now();
            if f(&ev) {
                return Ok((at, ev));
            }
        }
    }
}

/// Runs `cycles` freeze/recover cycles.
pub fn detect_and_recover(cycles: usize) -> Result<Vec<Cycle>, String> {
    let server = Server::start(Mode::Echo).map_err(|e| e.to_string())?;
    let mut config = Config::new(server.url())
        .ping_interval(PING)
        .pong_timeout(PONG_TIMEOUT)
        .max_missed_pongs(MAX_MISSED)
        .backoff(BACKOFF_INITIAL, BACKOFF_MAX)
        .min_uptime(MIN_UPTIME)
        .connect_timeout(Duration::from_secs(1))
        .seed(7);
    config.backoff.jitter = 0.2;
    // The cycle's timing (the server returns halfway through the second delay) is measured
    // against the proportional policy; the spread after each lost link is kept as short as
    // the first delay rather than the default 10 s.
    config.backoff.strategy = wsbeat::Jitter::Proportional;
    config.backoff.first_spread = BACKOFF_INITIAL;
    let mut client = Client::new(config).map_err(|e| e.to_string())?;
    wait_for(&mut client, Duration::from_secs(5), |e| {
        matches!(e, Event::Connected { .. })
    })?;
    let mut out = Vec::new();
    for _ in 0..cycles {
        // One full heartbeat round on the fresh link, then freeze after the next pong.
        wait_for(&mut client, Duration::from_secs(5), |e| {
            matches!(e, Event::Pong { .. })
        })?;
        server.arm_freeze(true);
        let (t_disc, ev) = wait_for(&mut client, bound() * 3, |e| {
            matches!(e, Event::Disconnected { .. })
        })?;
        let frozen = server.frozen_at().ok_or("server did not freeze")?;
        let reason = match ev {
            Event::Disconnected { reason, .. } => reason.to_string(),
            _ => String::new(),
        };
        let mut cycle = Cycle {
            detect: t_disc.saturating_duration_since(frozen),
            reason,
            ..Default::default()
        };
        // The outage: the first attempt is refused, the server returns halfway through the
        // second delay.
        let mut last_reconnecting: Option<(Instant, Duration)> = None;
        let mut returned: Option<Instant> = None;
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let now = Instant::now();
            if now > end {
                return Err("no reconnect within 15 s".into());
            }
            let mut wait = end - now;
            if let (None, Some((at, d))) = (returned, last_reconnecting) {
                if cycle.delays.len() >= 2 {
                    let back_at = at + d / 2;
                    if now >= back_at {
                        server.come_up().map_err(|e| format!("come_up: {e}"))?;
                        returned = Some(Instant::now());
                        cycle.returned_after = returned.unwrap_or(now) - at;
                        continue;
                    }
                    wait = wait.min(back_at - now);
                }
            }
            match client.poll(wait) {
                Some(Event::Reconnecting { delay, .. }) => {
                    last_reconnecting = Some((Instant::now(), delay));
                    cycle.delays.push(delay);
                }
                Some(Event::Connected { handshake, .. }) => {
                    let at = Instant::now();
                    let (r_at, d) = last_reconnecting.ok_or("Connected without Reconnecting")?;
                    cycle.delay = d;
                    cycle.reconnect_after = at - r_at;
                    cycle.handshake = handshake;
                    cycle.since_return = returned.map(|r| at - r).unwrap_or_default();
                    if returned.is_none() {
                        // Reconnected before the server returned (cannot happen while it
                        // refuses); bring it back for the next cycle anyway.
                        server.come_up().map_err(|e| e.to_string())?;
                    }
                    break;
                }
                Some(Event::GaveUp { .. }) => return Err("gave up".into()),
                _ => {}
            }
        }
        out.push(cycle);
    }
    Ok(out)
}

/// Allocations on the client's thread per idle heartbeat cycle (Ping out, Pong in), counted
/// between two Pongs once connected. `counter` reads the thread's allocation count.
pub struct AllocResult {
    pub cycles: u64,
    pub allocs: u64,
    pub bytes: u64,
    pub ping_ms: u64,
}

pub fn allocs_per_cycle(
    cycles: u64,
    counter: fn() -> (u64, u64),
    set_counting: fn(bool),
) -> Result<AllocResult, String> {
    let server = Server::start(Mode::Echo).map_err(|e| e.to_string())?;
    let ping = Duration::from_millis(50);
    let config = Config::new(server.url())
        .ping_interval(ping)
        .pong_timeout(Duration::from_secs(1));
    let mut client = Client::new(config).map_err(|e| e.to_string())?;
    wait_for(&mut client, Duration::from_secs(5), |e| {
        matches!(e, Event::Connected { .. })
    })?;
    // Warm up: a few cycles so that buffers reach their working size.
    for _ in 0..3 {
        wait_for(&mut client, Duration::from_secs(2), |e| {
            matches!(e, Event::Pong { .. })
        })?;
    }
    set_counting(true);
    let (a0, b0) = counter();
    let mut pongs = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while pongs < cycles {
        if Instant::now() > end {
            set_counting(false);
            return Err("pongs stopped coming".into());
        }
        match client.poll(Duration::from_secs(1)) {
            Some(Event::Pong { .. }) => pongs += 1,
            Some(Event::Disconnected { .. }) => {
                set_counting(false);
                return Err("disconnected".into());
            }
            _ => {}
        }
    }
    let (a1, b1) = counter();
    set_counting(false);
    Ok(AllocResult {
        cycles,
        allocs: a1 - a0,
        bytes: b1 - b0,
        ping_ms: ping.as_millis() as u64,
    })
}
