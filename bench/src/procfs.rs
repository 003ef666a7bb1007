//! What the kernel says about a process: context switches and CPU time of all its threads,
//! memory high-water mark, and the machine description.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The calling thread's kernel id.
pub fn gettid() -> i32 {
    // SAFETY: gettid(2) has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Placement of throughput runs: the client (thread or process) on this CPU ...
pub const CLIENT_CPU: usize = 0;
/// ... and the server's connection threads (and the driver of stdin/stdout clients) on this:
/// the same one, so that a round trip is CPU work, not cross-CPU wake-up latency.
pub const SERVER_CPU: usize = 0;

/// Pins the calling thread to `cpus` (all CPUs when empty). Returns whether it worked.
pub fn pin_thread(cpus: &[usize]) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it, and
    // sched_setaffinity(0, ...) affects the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let all: Vec<usize> = (0..n).collect();
        for &c in if cpus.is_empty() { &all[..] } else { cpus } {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Summed over every thread alive at the moment of the sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    pub voluntary: u64,
    pub involuntary: u64,
    /// Time on CPU (schedstat, nanoseconds).
    pub cpu_ns: u64,
    pub threads: usize,
}

impl CpuSample {
    pub fn delta(&self, before: &CpuSample) -> CpuSample {
        CpuSample {
            voluntary: self.voluntary.saturating_sub(before.voluntary),
            involuntary: self.involuntary.saturating_sub(before.involuntary),
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            threads: self.threads.max(before.threads),
        }
    }
}

fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time of one thread in ns: `schedstat` (exact), else utime+stime from `stat` (ticks).
fn thread_cpu_ns(task_dir: &str) -> u64 {
    if let Ok(s) = fs::read_to_string(format!("{task_dir}/schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            if ns > 0 {
                return ns;
            }
        }
    }
    let Ok(stat) = fs::read_to_string(format!("{task_dir}/stat")) else {
        return 0;
    };
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the ')'.
    let hz = clock_ticks();
    (ticks(11) + ticks(12)) * 1_000_000_000 / hz
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a valid name has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// One thread of the current process.
pub fn thread_sample(tid: i32) -> CpuSample {
    task_sample(&format!("/proc/self/task/{tid}"))
}

fn task_sample(dir: &str) -> CpuSample {
    let status = fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    CpuSample {
        voluntary: status_field(&status, "voluntary_ctxt_switches").unwrap_or(0),
        involuntary: status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0),
        cpu_ns: thread_cpu_ns(dir),
        threads: 1,
    }
}

/// Every thread of process `pid`.
pub fn process_sample(pid: u32) -> Option<CpuSample> {
    let dir = format!("/proc/{pid}/task");
    let mut total = CpuSample::default();
    for entry in fs::read_dir(&dir).ok()?.flatten() {
        let s = task_sample(&format!("{dir}/{}", entry.file_name().to_string_lossy()));
        total.voluntary += s.voluntary;
        total.involuntary += s.involuntary;
        total.cpu_ns += s.cpu_ns;
        total.threads += 1;
    }
    Some(total)
}

/// Memory of a process, in KiB, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub hwm_kib: u64,
    pub rss_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    /// Proportional set size (shared pages divided among their users), from smaps_rollup.
    pub pss_kib: u64,
    /// Pages no other process maps (clean + dirty), from smaps_rollup.
    pub private_kib: u64,
}

pub fn mem(pid: u32) -> Option<Mem> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let r = |name: &str| status_field(&rollup, name).unwrap_or(0);
    Some(Mem {
        hwm_kib: status_field(&s, "VmHWM")?,
        rss_kib: status_field(&s, "VmRSS").unwrap_or(0),
        anon_kib: status_field(&s, "RssAnon").unwrap_or(0),
        file_kib: status_field(&s, "RssFile").unwrap_or(0),
        pss_kib: r("Pss"),
        private_kib: r("Private_Clean") + r("Private_Dirty"),
    })
}

/// The largest resident mappings of a process (`/proc/PID/smaps`), as (KiB, name) sorted
/// descending, mappings of the same file added up.
pub fn top_mappings(pid: u32, n: usize) -> Vec<(u64, String)> {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let mut by_name: Vec<(u64, String)> = Vec::new();
    let mut current = String::new();
    for line in s.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            current = fields.get(5).map(|s| s.to_string()).unwrap_or_default();
            if current.is_empty() {
                current = "[anon]".into();
            }
            if let Some(base) = current.rsplit('/').next() {
                current = base.to_string();
            }
        } else if let Some(rest) = line.strip_prefix("Rss:") {
            let kib: u64 = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            match by_name.iter_mut().find(|(_, n)| *n == current) {
                Some(e) => e.0 += kib,
                None => by_name.push((kib, current.clone())),
            }
        }
    }
    by_name.sort_by_key(|e| std::cmp::Reverse(e.0));
    by_name.truncate(n);
    by_name
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// nproc, CPU model, kernel, date.
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub date: String,
    pub mem_total: String,
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|r| r.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "?".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "?".into());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total = status_field(&meminfo, "MemTotal")
        .map(|k| format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu,
        kernel,
        date: utc_now(),
        mem_total,
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM UTC` (civil-from-days, no crate).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Seconds since the epoch, as strace's `-ttt` prints them.
pub fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}
